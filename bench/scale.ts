/**
 * Scale-out: N API processes and N worker processes (POSTBOX_ROLE=api / worker) on one database, for
 * each N in BENCH_SHAPES, loaded at saturation through every API process at once. Prints ONE JSON line:
 * per shape, events/s ingested, deliveries/s completed, ingest latency and delivery lag, and the CPU per
 * unit of work from /proc: µs of API CPU per event, of worker CPU per delivery, of PostgreSQL CPU per
 * event (with its deliveries), and the cores each role used.
 *
 *   npm run bench:scale                     # 1 API + 1 worker, then 2 API + 2 workers
 *   BENCH_SHAPES=1,2,1,2 npm run bench:scale   # alternate, to see the spread on a shared machine
 *   BENCH_DURATION=15 BENCH_WARMUP=3 BENCH_CONNECTIONS=32 BENCH_WEBHOOKS=2 BENCH_EVENT_BYTES=1024
 *   BENCH_TENANTS=8 npm run bench:scale     # the events spread over 8 tenants (each with the webhooks)
 *   BENCH_PG_STATEMENTS=1 npm run bench:scale   # adds the top statements per event (pg_stat_statements)
 *
 * One embedded PostgreSQL 17 (default settings, fsync on; or BENCH_DATABASE_URL, which must allow CREATE
 * DATABASE), a fresh database per shape, BENCH_TENANTS tenants (default 1) with BENCH_WEBHOOKS webhooks each on a receiver on
 * 127.0.0.1 (default settings: adaptive concurrency from its default). autocannon POSTs single events,
 * BENCH_CONNECTIONS in all shared out among the API processes, for BENCH_WARMUP s (not measured, drained)
 * and then BENCH_DURATION s; the window ends when the last delivery of the accepted events arrived.
 * Loopback only, bounded in time, stops by itself.
 *
 * On a 2-core machine that also runs PostgreSQL, the receiver and the load generator, a second pair of
 * processes adds no cores: the figures show what the extra processes cost, not how Postbox scales on a
 * machine with cores to spare. docs/capacity.md turns the CPU per unit into processes and cores.
 */
import pg from 'pg';
import { CpuMeter, perUnit, processCpuUs, selfCpuUs, treeCpuUs } from './lib/cpu.js';
import { postLoad } from './lib/load.js';
import { startReceiver, type Receiver } from './lib/receiver.js';
import {
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
import { walPosition, walSince } from './lib/wal.js';

const DURATION_S = envNumber('BENCH_DURATION', 15);
const WARMUP_S = envNumber('BENCH_WARMUP', 3);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 32);
const WEBHOOKS = envNumber('BENCH_WEBHOOKS', 2);
const TENANTS = envNumber('BENCH_TENANTS', 1);
const EVENT_BYTES = envNumber('BENCH_EVENT_BYTES', 1024);
const SHAPES = (process.env.BENCH_SHAPES ?? '1,2').split(',').map(Number);
const DRAIN_TIMEOUT_S = envNumber('BENCH_DRAIN_TIMEOUT_S', 120);

const log = (msg: string) => console.error(`[scale] ${msg}`);
const round2 = (x: number) => Math.round(x * 100) / 100;

/** Resolves once `receiver` has counted `n` deliveries, or false after DRAIN_TIMEOUT_S. */
async function delivered(receiver: Receiver, n: number): Promise<boolean> {
  const deadline = Date.now() + DRAIN_TIMEOUT_S * 1000;
  while (receiver.delivered < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return receiver.delivered >= n;
}

async function createDatabase(db: Database, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return Object.assign(new URL(db.url), { pathname: `/${name}` }).toString();
}

async function runShape(db: Database, receiver: Receiver, n: number, index: number) {
  const url = await createDatabase(db, `scale_${index}_${n}`);
  const apis: PostboxProcess[] = [];
  const workers: PostboxProcess[] = [];
  try {
    // The first API process migrates; the rest start after it.
    apis.push(await startPostbox(url, 'api'));
    for (let i = 1; i < n; i++) apis.push(await startPostbox(url, 'api'));
    for (let i = 0; i < n; i++) workers.push(await startPostbox(url, 'worker'));
    const apiKeys: string[] = [];
    for (let t = 0; t < TENANTS; t++)
      apiKeys.push((await benchTenant(apis[0]!.base, { webhooks: WEBHOOKS, url: receiver.url })).apiKey);
    const load = {
      apiKeys,
      path: '/events',
      body: JSON.stringify(benchEvent(EVENT_BYTES)),
      connections: CONNECTIONS,
    };
    const bases = apis.map((p) => p.base);

    log(`${n} + ${n}: warm-up ${WARMUP_S} s`);
    const warmFrom = receiver.delivered;
    const warm = await postLoad(bases, { ...load, seconds: WARMUP_S });
    if (!(await delivered(receiver, warmFrom + warm.accepted * WEBHOOKS)))
      throw new Error(`${n} + ${n}: the warm-up's deliveries did not all arrive`);

    const sumOf = (ps: PostboxProcess[]) => () => ps.reduce((a, p) => a + processCpuUs(p.pid), 0);
    const meter = new CpuMeter({
      api: sumOf(apis),
      worker: sumOf(workers),
      postgres: () => (db.postmasterPid ? treeCpuUs(db.postmasterPid) : NaN),
      bench: selfCpuUs,
    });
    const before = { delivered: receiver.delivered, lags: receiver.lagsMs.length };
    if (statementsWanted) await resetStatements(url);
    const xacts = await committedTransactions(url);
    const wal0 = await walPosition(url);
    const mark = meter.read();
    const started = Date.now();
    log(`${n} + ${n}: measuring ${DURATION_S} s`);
    const run = await postLoad(bases, { ...load, seconds: DURATION_S });
    const expected = before.delivered + run.accepted * WEBHOOKS;
    const complete = await delivered(receiver, expected);
    const cpu = meter.since(mark);
    const seconds = ((complete ? receiver.lastAt : Date.now()) - started) / 1000;
    const wal = await walSince(url, wal0);
    const deliveries = receiver.delivered - before.delivered;
    const transactions = (await committedTransactions(url)) - xacts;
    const cores = (us: number) => round2(us / 1e6 / seconds);
    const result = {
      api_processes: n,
      worker_processes: n,
      complete,
      events_accepted: run.accepted,
      events_rejected: run.rejected,
      events_per_sec: Math.round(run.accepted / run.seconds),
      deliveries,
      deliveries_per_sec: Math.round(deliveries / seconds),
      ingest_latency_ms: summary(run.latenciesMs),
      delivery_lag_ms: summary(receiver.lagsMs.slice(before.lags)),
      cpu_us: {
        api_per_event: perUnit(cpu.api!, run.accepted),
        worker_per_delivery: perUnit(cpu.worker!, deliveries),
        postgres_per_event: perUnit(cpu.postgres!, run.accepted),
        postgres_per_delivery: perUnit(cpu.postgres!, deliveries),
      },
      cpu_cores_used: {
        api: cores(cpu.api!),
        worker: cores(cpu.worker!),
        postgres: cores(cpu.postgres!),
        bench: cores(cpu.bench!),
      },
      wal_bytes_per_event: perUnit(wal, run.accepted),
      transactions_per_event: round2(transactions / run.accepted),
      ...(statementsWanted ? { pg_statements_per_event: await topStatements(url, run.accepted, 12) } : {}),
    };
    log(`${n} + ${n}: ${result.events_per_sec} events/s, ${result.deliveries_per_sec} deliveries/s`);
    return result;
  } finally {
    await Promise.all([...apis, ...workers].map((p) => p.stop()));
  }
}

async function main(): Promise<void> {
  const db = await startDatabase();
  const receiver = await startReceiver();
  const started = machine();
  try {
    const shapes = [];
    for (const [i, n] of SHAPES.entries()) shapes.push(await runShape(db, receiver, n, i));
    console.log(
      JSON.stringify({
        bench: 'scale',
        machine: { ...started, load_at_end: machine().load },
        settings: {
          duration_s: DURATION_S,
          warmup_s: WARMUP_S,
          connections: CONNECTIONS,
          tenants: TENANTS,
          webhooks: WEBHOOKS,
          event_bytes: EVENT_BYTES,
        },
        shapes,
        duplicates: receiver.duplicates,
      }),
    );
    if (shapes.some((s) => !s.complete)) process.exitCode = 1;
  } finally {
    await receiver.close();
    await db.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
