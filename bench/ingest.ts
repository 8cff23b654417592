/**
 * Ingest benchmark: one Postbox process with POSTBOX_ROLE=api (no workers), one webhook matching
 * every event (so each event queues one delivery), and autocannon POSTing for a fixed time after a
 * warm-up. Prints ONE JSON line: requests/s and events/s, latency, and the CPU each unit of work
 * cost, from /proc: µs of Postbox CPU per request and per event, µs of PostgreSQL CPU per event.
 *
 *   npm run bench:ingest                                  # single-event POST /events, 20 connections
 *   BENCH_BATCH=1000 BENCH_CONNECTIONS=4 npm run bench:ingest   # POST /events/batch, 1,000 events a call
 *   BENCH_EVENT_BYTES=1024 (default)   size of each event's JSON (type + payload)
 *   BENCH_WEBHOOKS=2                   webhooks matching every event (default 1): deliveries queued per event
 *   BENCH_RATE=500                     500 requests/s paced evenly, open loop (default: autocannon as fast as it goes)
 *   BENCH_DURATION=15 BENCH_WARMUP=3   seconds measured, seconds of load before
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench:ingest   # profile Postbox
 *   BENCH_DATABASE_URL=postgres://...  an existing server (its CPU is measured when it runs here)
 *
 * The CPU figures are the robust ones on a shared machine; requests/s is not (see docs/perf.md).
 */
import autocannon from 'autocannon';
import { pacedPost } from './lib/paced.js';
import { CpuMeter, perUnit, processCpuUs, processSysUs, selfCpuUs, treeCpuUs } from './lib/cpu.js';
import {
  benchEvent,
  benchTenant,
  committedTransactions,
  machine,
  startDatabase,
  startPostbox,
} from './lib/setup.js';
import { resetStatements, statementsWanted, topStatements } from './lib/pg-statements.js';
import { envNumber, summary } from './lib/stats.js';

const DURATION_S = envNumber('BENCH_DURATION', 15);
const WARMUP_S = envNumber('BENCH_WARMUP', 3);
const BATCH = envNumber('BENCH_BATCH', 0); // 0: single events to POST /events
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', BATCH > 0 ? 4 : 20);
const EVENT_BYTES = envNumber('BENCH_EVENT_BYTES', 1024);
const WEBHOOKS = envNumber('BENCH_WEBHOOKS', 1);
// Requests/s over all connections; 0 = as fast as it goes. A fixed rate keeps the work per request
// comparable between two builds: at saturation a slower run also groups fewer requests per statement.
const RATE = envNumber('BENCH_RATE', 0);

interface Run {
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  latenciesMs: number[];
  seconds: number;
}

function load(base: string, apiKey: string, seconds: number): Promise<Run> {
  const body =
    BATCH > 0
      ? JSON.stringify({ events: Array.from({ length: BATCH }, (_, i) => benchEvent(EVENT_BYTES, i)) })
      : JSON.stringify(benchEvent(EVENT_BYTES));
  const run: Run = { ok: 0, failed: 0, statuses: {}, latenciesMs: [], seconds: 0 };
  const started = Date.now();
  const url = `${base}${BATCH > 0 ? '/events/batch' : '/events'}`;
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  const count = (status: number, latencyMs: number) => {
    run.statuses[status] = (run.statuses[status] ?? 0) + 1;
    if (status === 202) {
      run.ok++;
      run.latenciesMs.push(latencyMs);
    } else run.failed++;
  };
  if (RATE > 0)
    return pacedPost({ url, headers, body, rate: RATE, seconds }, count).then(() => {
      run.seconds = (Date.now() - started) / 1000;
      return run;
    });
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: 'POST',
        connections: CONNECTIONS,
        duration: seconds,
        headers,
        body,
      },
      (err) => {
        run.seconds = (Date.now() - started) / 1000;
        if (err) reject(err);
        else resolve(run);
      },
    );
    instance.on('response', (_c: unknown, status: number, _bytes: number, responseTime: number) =>
      count(status, responseTime),
    );
  });
}

async function main(): Promise<void> {
  const db = await startDatabase();
  const postbox = await startPostbox(db.url, 'api', { BODY_LIMIT_BYTES: String(4 * 1024 * 1024) });
  try {
    // Deliveries are queued for this receiver but never sent (no workers): ingest alone is measured.
    const { apiKey } = await benchTenant(postbox.base, {
      webhooks: WEBHOOKS,
      url: 'http://127.0.0.1:9/hook',
    });
    if (WARMUP_S > 0) await load(postbox.base, apiKey, WARMUP_S);
    const meter = new CpuMeter({
      postbox: () => processCpuUs(postbox.pid),
      postboxSys: () => processSysUs(postbox.pid),
      postgres: () => (db.postmasterPid ? treeCpuUs(db.postmasterPid) : NaN),
      bench: selfCpuUs,
    });
    if (statementsWanted) await resetStatements(db.url);
    const xacts = await committedTransactions(db.url);
    const mark = meter.read();
    const run = await load(postbox.base, apiKey, DURATION_S);
    const cpu = meter.since(mark);
    // Counts reach pg_stat_database within a second of the backends going idle.
    await new Promise((r) => setTimeout(r, 1500));
    const transactions = (await committedTransactions(db.url)) - xacts - 2;
    const events = run.ok * Math.max(1, BATCH);
    console.log(
      JSON.stringify({
        bench: 'ingest',
        machine: machine(),
        settings: {
          mode: BATCH > 0 ? `batch of ${BATCH}` : 'single',
          connections: CONNECTIONS,
          rate: RATE || 'max',
          duration_s: DURATION_S,
          warmup_s: WARMUP_S,
          event_bytes: EVENT_BYTES,
          webhooks: WEBHOOKS,
          log_level: process.env.LOG_LEVEL ?? 'info',
        },
        requests: run.ok,
        requests_failed: run.failed,
        statuses: run.statuses,
        requests_per_sec: Math.round(run.ok / run.seconds),
        events_per_sec: Math.round(events / run.seconds),
        latency_ms: summary(run.latenciesMs),
        transactions_per_request: round2(transactions / run.ok),
        cpu_us: {
          postbox_per_request: perUnit(cpu.postbox!, run.ok),
          postbox_per_event: perUnit(cpu.postbox!, events),
          // The kernel's part of it (stime): socket writes and reads, the loopback network stack.
          postbox_kernel_per_request: perUnit(cpu.postboxSys!, run.ok),
          postgres_per_event: perUnit(cpu.postgres!, events),
          bench_per_request: perUnit(cpu.bench!, run.ok),
        },
        cpu_cores_used: {
          postbox: round2(cpu.postbox! / 1e6 / run.seconds),
          postgres: round2(cpu.postgres! / 1e6 / run.seconds),
          bench: round2(cpu.bench! / 1e6 / run.seconds),
        },
        ...(statementsWanted ? { pg_statements_per_event: await topStatements(db.url, events) } : {}),
      }),
    );
    if (run.ok === 0) process.exitCode = 1;
  } finally {
    await postbox.stop();
    await db.stop();
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
