/**
 * End-to-end benchmark: real Postbox processes, a real receiver on 127.0.0.1, and autocannon POSTing
 * single events for a fixed time. Prints ONE JSON line: events/s ingested, deliveries/s completed,
 * p50/p95/p99 of ingest latency and of delivery lag (event timestamp to arrival at the receiver), and
 * the CPU per unit of work from /proc (µs of Postbox CPU per event and per delivery, µs of PostgreSQL
 * CPU per delivery).
 *
 *   npm run bench:e2e                                   # 20 s, 50 connections, 1 webhook, POSTBOX_ROLE=all
 *   BENCH_DURATION=30 BENCH_CONNECTIONS=100 BENCH_WEBHOOKS=2 npm run bench:e2e
 *   BENCH_WARMUP=3 (default)  seconds of the same load before the timed run (not measured)
 *   BENCH_RATE=300 npm run bench:e2e                     # steady load: 300 events/s, paced evenly
 *                  # (open loop; ingest latency counted from when each request was due)
 *   BENCH_SPLIT=1 npm run bench:e2e                      # an API and a worker process: CPU of each
 *   BENCH_PRELOAD=20000 BENCH_DURATION=0 npm run bench:e2e  # delivery drain: an API process queues
 *                  # 20k events with /events/batch, then a worker process starts and drains them;
 *                  # its CPU is counted from the first delivery's arrival to the last's
 *   BENCH_ORDERING=fifo BENCH_PRELOAD=2000 BENCH_DURATION=0 npm run bench:e2e  # the same, FIFO webhook
 *   BENCH_EVENT_BYTES=1024 (default)                     # size of each event's JSON (type + payload)
 *   BENCH_DATABASE_URL=postgres://... npm run bench:e2e  # an existing server instead of embedded
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench:e2e   # profile Postbox
 *   BENCH_TRACING=otlp npm run bench:e2e                 # OpenTelemetry on: every Postbox process
 *                  # exports its spans to an OTLP sink here (OTEL_EXPORTER_OTLP_ENDPOINT)
 *
 * Loopback only, bounded in time, stops by itself. LOG_LEVEL is Postbox's default (info) unless set.
 */
import autocannon from 'autocannon';
import { CpuMeter, perUnit, processCpuUs, processSysUs, selfCpuUs, treeCpuUs } from './lib/cpu.js';
import { pacedPost } from './lib/paced.js';
import { startOtlpSink, type OtlpSink } from './lib/otlp-sink.js';
import { startReceiver, type Receiver } from './lib/receiver.js';
import {
  api,
  benchEvent,
  benchTenant,
  committedTransactions,
  machine,
  startDatabase,
  startPostbox,
  type Database,
  type PostboxProcess,
} from './lib/setup.js';
import { resetStatements, statementsWanted, topStatements } from './lib/pg-statements.js';
import { envNumber, summary } from './lib/stats.js';

const DURATION_S = envNumber('BENCH_DURATION', 20);
const WARMUP_S = envNumber('BENCH_WARMUP', 3); // seconds of the same load before the timed run
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 50);
const WEBHOOKS = envNumber('BENCH_WEBHOOKS', 1);
const RATE = envNumber('BENCH_RATE', 0); // events/s over all connections; 0 = as fast as it goes
const DRAIN_TIMEOUT_MS = envNumber('BENCH_DRAIN_TIMEOUT_MS', 60_000);
const PRELOAD = envNumber('BENCH_PRELOAD', 0); // events queued by /events/batch before the timed ingest
const EVENT_BYTES = envNumber('BENCH_EVENT_BYTES', 1024);
const ORDERING = process.env.BENCH_ORDERING ?? 'none'; // 'fifo': the webhooks deliver one at a time, in order
// A preload is drained by a worker process of its own, so its CPU is the delivery path's alone.
const SPLIT = process.env.BENCH_SPLIT === '1' || PRELOAD > 0;
const TRACING = process.env.BENCH_TRACING === 'otlp';

const round2 = (x: number) => Math.round(x * 100) / 100;
const until = async (done: () => boolean, deadline: number) => {
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
};

function settings() {
  return {
    duration_s: DURATION_S,
    warmup_s: WARMUP_S,
    connections: CONNECTIONS,
    webhooks: WEBHOOKS,
    rate: RATE || 'max',
    preload: PRELOAD,
    ordering: ORDERING,
    event_bytes: EVENT_BYTES,
    processes: SPLIT ? 'api + worker' : 'all',
    log_level: process.env.LOG_LEVEL ?? 'info',
    tracing: TRACING ? 'otlp (local sink)' : 'off',
  };
}

/** CPU counters: each Postbox process by role, PostgreSQL's process tree, this process. */
function meterFor(db: Database, processes: Record<string, PostboxProcess>) {
  return new CpuMeter({
    ...Object.fromEntries(Object.entries(processes).map(([role, p]) => [role, () => processCpuUs(p.pid)])),
    postgres: () => (db.postmasterPid ? treeCpuUs(db.postmasterPid) : NaN),
    bench: selfCpuUs,
  });
}

/** Queues PRELOAD events with /events/batch (1,000 a call) through the API process alone. */
async function preload(base: string, apiKey: string): Promise<number> {
  const started = Date.now();
  for (let sent = 0; sent < PRELOAD; sent += 1000) {
    const n = Math.min(1000, PRELOAD - sent);
    const events = Array.from({ length: n }, (_, i) => benchEvent(EVENT_BYTES, sent + i));
    await api(base, apiKey, '/events/batch', { events });
  }
  return Date.now() - started;
}

/** Starts the worker and measures its drain of the preloaded deliveries, first arrival to last. */
async function drain(db: Database, receiver: Receiver) {
  const expected = PRELOAD * WEBHOOKS;
  let meter: CpuMeter | undefined;
  let mark: Record<string, number> | undefined;
  let firstAt = 0;
  // The worker's start-up (module loading, migrations check) is not delivery work: its CPU is counted
  // from the first delivery's arrival on, and that delivery is not counted.
  receiver.onDelivery = (n) => {
    if (n !== 1) return;
    firstAt = Date.now();
    mark = meter!.read();
  };
  if (statementsWanted) await resetStatements(db.url);
  const xacts = await committedTransactions(db.url);
  const worker = await startPostbox(db.url, 'worker', {}, (pid) => {
    meter = new CpuMeter({
      worker: () => processCpuUs(pid),
      workerSys: () => processSysUs(pid),
      postgres: () => (db.postmasterPid ? treeCpuUs(db.postmasterPid) : NaN),
      bench: selfCpuUs,
    });
  });
  await until(() => mark !== undefined, Date.now() + DRAIN_TIMEOUT_MS);
  if (!meter || !mark) throw new Error('no delivery arrived');
  await until(() => receiver.delivered >= expected, Date.now() + DRAIN_TIMEOUT_MS);
  const cpu = meter.since(mark);
  receiver.onDelivery = undefined;
  // The first delivery is where counting started.
  const delivered = receiver.delivered;
  await new Promise((r) => setTimeout(r, 1500)); // counts reach pg_stat_database within a second
  const transactions = (await committedTransactions(db.url)) - xacts;
  const seconds = ((delivered >= expected ? receiver.lastAt : Date.now()) - firstAt) / 1000;
  return {
    worker,
    result: {
      deliveries: delivered,
      drain_seconds: round2(seconds),
      deliveries_per_sec: Math.round((delivered - 1) / seconds),
      delivery_lag_ms: summary(receiver.lagsMs),
      // The worker's start-up statements included (a few dozen).
      transactions_per_delivery: round2(transactions / delivered),
      cpu_us: {
        worker_per_delivery: perUnit(cpu.worker!, delivered - 1),
        // The kernel's part of it (stime): socket writes and reads, the loopback network stack.
        worker_kernel_per_delivery: perUnit(cpu.workerSys!, delivered - 1),
        postgres_per_delivery: perUnit(cpu.postgres!, delivered - 1),
      },
      cpu_cores_used: {
        worker: round2(cpu.worker! / 1e6 / seconds),
        postgres: round2(cpu.postgres! / 1e6 / seconds),
        bench: round2(cpu.bench! / 1e6 / seconds),
      },
      ...(statementsWanted ? { pg_statements_per_delivery: await topStatements(db.url, delivered) } : {}),
    },
  };
}

/**
 * Single events for `seconds`: autocannon as fast as it goes, or at RATE paced evenly (open loop,
 * bench/lib/paced.ts says why not autocannon's rate limit).
 */
function post(
  base: string,
  apiKey: string,
  seconds: number,
  onResponse: (status: number, ms: number) => void,
) {
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  const body = JSON.stringify(benchEvent(EVENT_BYTES));
  if (RATE > 0) return pacedPost({ url: `${base}/events`, headers, body, rate: RATE, seconds }, onResponse);
  return new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${base}/events`,
        method: 'POST',
        connections: CONNECTIONS,
        duration: seconds,
        headers,
        body,
      },
      (err) => (err ? reject(err) : resolve()),
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) =>
      onResponse(status, responseTime),
    );
  });
}

/**
 * The same load for WARMUP_S first, its deliveries awaited: what is measured is the steady state, not
 * the JIT warming up, the pools connecting and each webhook's adaptive limit rising from its start.
 */
async function warmUp(base: string, apiKey: string, receiver: Receiver) {
  let accepted = 0;
  const from = receiver.delivered;
  await post(base, apiKey, WARMUP_S, (status) => void (status === 202 && accepted++));
  await until(() => receiver.delivered >= from + accepted * WEBHOOKS, Date.now() + DRAIN_TIMEOUT_MS);
}

/** autocannon for DURATION_S, then waits until every delivery of the accepted events arrived. */
async function timedIngest(
  db: Database,
  processes: Record<string, PostboxProcess>,
  base: string,
  apiKey: string,
  receiver: Receiver,
) {
  const before = { delivered: receiver.delivered, lags: receiver.lagsMs.length };
  const ingestLatencies: number[] = [];
  let accepted = 0;
  let rejected = 0;
  const meter = meterFor(db, processes);
  if (statementsWanted) await resetStatements(db.url);
  const mark = meter.read();
  const started = Date.now();
  await post(base, apiKey, DURATION_S, (status, responseTime) => {
    if (status === 202) {
      accepted++;
      ingestLatencies.push(responseTime);
    } else rejected++;
  });
  const ingestEnded = Date.now();
  const expected = before.delivered + accepted * WEBHOOKS;
  await until(() => receiver.delivered >= expected, Date.now() + DRAIN_TIMEOUT_MS);
  const cpu = meter.since(mark);
  const deliveredEnd = receiver.delivered >= expected ? receiver.lastAt : Date.now();
  const ingestSeconds = (ingestEnded - started) / 1000;
  const seconds = (deliveredEnd - started) / 1000;
  const delivered = receiver.delivered - before.delivered;
  const postboxUs = Object.keys(processes).reduce((sum, role) => sum + cpu[role]!, 0);
  return {
    complete: receiver.delivered >= expected,
    result: {
      events_accepted: accepted,
      events_rejected: rejected,
      events_per_sec: Math.round(accepted / ingestSeconds),
      deliveries_expected: accepted * WEBHOOKS,
      deliveries_completed: delivered,
      duplicate_deliveries: receiver.duplicates,
      deliveries_per_sec: Math.round(delivered / seconds),
      ingest_latency_ms: summary(ingestLatencies),
      delivery_lag_ms: summary(receiver.lagsMs.slice(before.lags)),
      cpu_us: {
        postbox_per_event: perUnit(postboxUs, accepted),
        ...(SPLIT
          ? {
              api_per_event: perUnit(cpu.api!, accepted),
              worker_per_delivery: perUnit(cpu.worker!, delivered),
            }
          : { postbox_per_delivery: perUnit(postboxUs, delivered) }),
        postgres_per_event: perUnit(cpu.postgres!, accepted),
        postgres_per_delivery: perUnit(cpu.postgres!, delivered),
      },
      cpu_cores_used: {
        ...Object.fromEntries(
          Object.keys(processes).map((role) => [role, round2(cpu[role]! / 1e6 / seconds)]),
        ),
        postgres: round2(cpu.postgres! / 1e6 / seconds),
        bench: round2(cpu.bench! / 1e6 / seconds),
      },
      ...(statementsWanted ? { pg_statements_per_delivery: await topStatements(db.url, delivered) } : {}),
    },
  };
}

async function main(): Promise<void> {
  const db = await startDatabase();
  const receiver = await startReceiver();
  let sink: OtlpSink | undefined;
  if (TRACING) {
    sink = await startOtlpSink();
    // The Postbox processes inherit the environment.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.url;
  }
  const processes: Record<string, PostboxProcess> = {};
  try {
    const first = await startPostbox(db.url, SPLIT ? 'api' : 'all');
    processes[SPLIT ? 'api' : 'all'] = first;
    const { apiKey } = await benchTenant(first.base, {
      webhooks: WEBHOOKS,
      url: receiver.url,
      ordering: ORDERING,
    });
    const out: Record<string, unknown> = { bench: 'e2e', machine: machine(), settings: settings() };
    if (PRELOAD > 0) {
      const queuedMs = await preload(first.base, apiKey);
      const { worker, result } = await drain(db, receiver);
      processes.worker = worker;
      out.preload = { events: PRELOAD, queued_in_ms: queuedMs, ...result };
      if (receiver.delivered < PRELOAD * WEBHOOKS) process.exitCode = 1;
    } else if (SPLIT) {
      processes.worker = await startPostbox(db.url, 'worker');
    }
    if (DURATION_S > 0) {
      if (WARMUP_S > 0) await warmUp(first.base, apiKey, receiver);
      const { complete, result } = await timedIngest(db, processes, first.base, apiKey, receiver);
      Object.assign(out, result);
      if (!complete) process.exitCode = 1;
    }
    if (sink) out.otlp = sink.received;
    console.log(JSON.stringify(out));
  } finally {
    await Promise.all(Object.values(processes).map((p) => p.stop()));
    await sink?.close();
    await receiver.close();
    await db.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
