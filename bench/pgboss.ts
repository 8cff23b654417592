/**
 * What the custom claim buys: Postbox against a plain pg-boss job-per-delivery design on the same box,
 * the same receiver and the same events. Prints ONE JSON line: per design, the drain of a backlog
 * (deliveries/s, µs of worker and PostgreSQL CPU per delivery) and a steady rate (delivery lag
 * p50/p95/p99, CPU per delivery).
 *
 *   npm run bench:pgboss
 *   BENCH_DESIGNS=postbox,pgboss,postbox,pgboss npm run bench:pgboss   # alternate, to see the spread
 *   BENCH_PRELOAD=10000 BENCH_RATE=300 BENCH_DURATION=20 BENCH_WEBHOOKS=2 BENCH_EVENT_BYTES=1024
 *   BENCH_PRODUCE_EVERY_MS=0   # steady rate: one statement per event, 10 connections
 *   PGBOSS_WORKERS=4 PGBOSS_BATCH=50 PGBOSS_POLL_SECONDS=0.5   # the pg-boss worker's settings
 *
 * Both designs get their events from this process the same way, so the producer's cost is alike (and
 * counted in PostgreSQL's CPU): in statements of 1,000 for the backlog, and at a steady rate one
 * statement every BENCH_PRODUCE_EVERY_MS (default 10) with the events due by then:
 * - postbox: `SELECT postbox.emit(...)` (docs/producers.md), which stores the event and one delivery per
 *   matching webhook and wakes the workers; one Postbox worker process (POSTBOX_ROLE=worker, defaults).
 * - pgboss: `boss.insert([...])` of one job per webhook, the event's payload in each; one worker process
 *   (bench/pgboss-worker.ts) polling with `boss.work`, sending with got and Postbox's agents and signing.
 *
 * Phases per design, in a fresh database of one embedded PostgreSQL 17 (default settings, fsync on):
 * 1. drain: BENCH_PRELOAD events (× BENCH_WEBHOOKS deliveries) queued with no worker running, then the
 *    worker starts; counted from the first delivery's arrival to the last's.
 * 2. steady: BENCH_RATE events/s for BENCH_DURATION s while the worker runs, until every delivery arrived.
 * Loopback only, bounded in time, stops by itself.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { projectRoot } from '../src/paths.js';
import { generateWebhookSecret } from '../src/security/webhook-secrets.js';
import { CpuMeter, perUnit, processCpuUs, selfCpuUs, treeCpuUs } from './lib/cpu.js';
import { startReceiver, type Receiver } from './lib/receiver.js';
import { benchEvent, benchTenant, machine, startDatabase, startPostbox, type Database } from './lib/setup.js';
import { envNumber, summary } from './lib/stats.js';
import { QUEUE, type DeliveryJob } from './lib/pgboss-jobs.js';

const PRELOAD = envNumber('BENCH_PRELOAD', 10_000);
const RATE = envNumber('BENCH_RATE', 300);
const DURATION_S = envNumber('BENCH_DURATION', 20);
const WEBHOOKS = envNumber('BENCH_WEBHOOKS', 2);
const EVENT_BYTES = envNumber('BENCH_EVENT_BYTES', 1024);
const DESIGNS = (process.env.BENCH_DESIGNS ?? 'postbox,pgboss').split(',') as ('postbox' | 'pgboss')[];
const DRAIN_TIMEOUT_S = envNumber('BENCH_DRAIN_TIMEOUT_S', 180);
const PRODUCE_EVERY_MS = envNumber('BENCH_PRODUCE_EVERY_MS', 10);
const BATCH = 1000;

const log = (msg: string) => console.error(`[pgboss] ${msg}`);
const round2 = (x: number) => Math.round(x * 100) / 100;

type BenchEvent = ReturnType<typeof benchEvent>;

/** A design under test: how events reach its queue, and its worker process. */
interface Design {
  /** Queues `events` in one statement. */
  produce(events: BenchEvent[]): Promise<void>;
  /** Starts the worker process; `onSpawn` gets its pid before it is ready. */
  startWorker(onSpawn: (pid: number) => void): Promise<{ pid: number; stop(): Promise<void> }>;
  close(): Promise<void>;
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

async function postboxDesign(url: string, receiver: Receiver): Promise<Design> {
  const api = await startPostbox(url, 'api'); // migrates the database
  try {
    await benchTenant(api.base, { webhooks: WEBHOOKS, url: receiver.url });
  } finally {
    await api.stop();
  }
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM tenants');
  const tenant = rows[0]!.id;
  return {
    produce: async (events) => {
      // occurred_at is the moment the bench produced the event (as the pg-boss jobs' timestamp), so the
      // lag of both designs counts from the same point, waits for a pool connection included.
      await pool.query(
        `SELECT postbox.emit($1, e->>'type', e->'payload', NULL, $3::timestamptz)
           FROM jsonb_array_elements($2::jsonb) e`,
        [tenant, JSON.stringify(events), new Date()],
      );
    },
    startWorker: (onSpawn) => startPostbox(url, 'worker', {}, onSpawn),
    close: () => pool.end(),
  };
}

async function pgbossDesign(url: string, receiver: Receiver): Promise<Design> {
  const webhooks = Array.from({ length: WEBHOOKS }, () => ({
    url: receiver.url,
    secret: generateWebhookSecret(),
  }));
  // The producer's pg-boss: no maintenance of its own (the worker's does it), as an API process would be.
  const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false, max: 10 });
  boss.on('error', (err: Error) => log(`producer: ${err.message}`));
  await boss.start();
  await boss.createQueue(QUEUE);
  return {
    produce: async (events) => {
      const timestamp = new Date().toISOString();
      const jobs = events.flatMap((e) =>
        webhooks.map((_, webhook) => ({
          name: QUEUE,
          // A retry policy like Postbox's default: backoff from 1 s, a lease-like expiry.
          retryLimit: 8,
          retryDelay: 1,
          retryBackoff: true,
          expireInSeconds: 60,
          data: { event_id: randomUUID(), type: e.type, timestamp, webhook, payload: e.payload },
        })),
      );
      // One event id per event, shared by its jobs.
      for (let i = 0; i < events.length; i++)
        for (let k = 1; k < WEBHOOKS; k++)
          jobs[i * WEBHOOKS + k]!.data.event_id = jobs[i * WEBHOOKS]!.data.event_id;
      await boss.insert(jobs satisfies PgBoss.JobInsert<DeliveryJob>[]);
    },
    startWorker: (onSpawn) => startPgBossWorker(url, webhooks, onSpawn),
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}

async function startPgBossWorker(
  url: string,
  webhooks: { url: string; secret: string }[],
  onSpawn: (pid: number) => void,
) {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'bench', 'pgboss-worker.js')], {
    env: { ...process.env, DATABASE_URL: url, BENCH_PGBOSS_WEBHOOKS: JSON.stringify(webhooks) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onSpawn(child.pid!);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`the pg-boss worker exited (${code})`)));
  });
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function until(done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + DRAIN_TIMEOUT_S * 1000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return done();
}

function meterFor(db: Database, workerPid: number) {
  return new CpuMeter({
    worker: () => processCpuUs(workerPid),
    postgres: () => (db.postmasterPid ? treeCpuUs(db.postmasterPid) : NaN),
    bench: selfCpuUs,
  });
}

/** Phase 1: a backlog queued with no worker, then drained; counted from the first arrival to the last. */
async function drain(db: Database, design: Design, receiver: Receiver) {
  const base = receiver.delivered;
  for (let sent = 0; sent < PRELOAD; sent += BATCH)
    await design.produce(
      Array.from({ length: Math.min(BATCH, PRELOAD - sent) }, (_, i) => benchEvent(EVENT_BYTES, sent + i)),
    );
  // The worker's start-up is not delivery work: its CPU counts from the first delivery's arrival on.
  let meter: CpuMeter | undefined;
  let mark: Record<string, number> | undefined;
  let firstAt = 0;
  receiver.onDelivery = (n) => {
    if (n !== base + 1) return;
    firstAt = Date.now();
    mark = meter!.read();
  };
  const worker = await design.startWorker((pid) => (meter = meterFor(db, pid)));
  if (!(await until(() => mark !== undefined)) || !meter || !mark) throw new Error('no delivery arrived');
  const expected = base + PRELOAD * WEBHOOKS;
  const complete = await until(() => receiver.delivered >= expected);
  receiver.onDelivery = undefined;
  const cpu = meter.since(mark);
  const deliveries = receiver.delivered - base - 1;
  const seconds = ((complete ? receiver.lastAt : Date.now()) - firstAt) / 1000;
  return {
    worker,
    result: {
      complete,
      deliveries: deliveries + 1,
      seconds: round2(seconds),
      deliveries_per_sec: Math.round(deliveries / seconds),
      cpu_us_per_delivery: {
        worker: perUnit(cpu.worker!, deliveries),
        postgres: perUnit(cpu.postgres!, deliveries),
      },
      cpu_cores_used: {
        worker: round2(cpu.worker! / 1e6 / seconds),
        postgres: round2(cpu.postgres! / 1e6 / seconds),
      },
    },
  };
}

/**
 * Phase 2: RATE events/s for DURATION_S while the worker runs. Every PRODUCE_EVERY_MS the events due so
 * far go in one statement (as Postbox's API groups concurrent requests into one transaction); with
 * BENCH_PRODUCE_EVERY_MS=0 each event is its own statement, sent at once over a pool of 10 connections.
 */
async function steady(db: Database, design: Design, receiver: Receiver, workerPid: number) {
  const base = { delivered: receiver.delivered, lags: receiver.lagsMs.length };
  const meter = meterFor(db, workerPid);
  const mark = meter.read();
  const started = Date.now();
  const pending = new Set<Promise<void>>();
  let produced = 0;
  let failed = 0;
  const produceMs: number[] = [];
  while (Date.now() - started < DURATION_S * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE) - produced;
    const groups = PRODUCE_EVERY_MS > 0 ? (due > 0 ? [due] : []) : Array.from({ length: due }, () => 1);
    for (const n of groups) {
      const t0 = performance.now();
      const events = Array.from({ length: n }, (_, i) => benchEvent(EVENT_BYTES, produced + i));
      const p = design
        .produce(events)
        .then(() => void produceMs.push(performance.now() - t0))
        .catch(() => void (failed += n))
        .finally(() => pending.delete(p));
      pending.add(p);
      produced += n;
    }
    await new Promise((r) => setTimeout(r, PRODUCE_EVERY_MS || 5));
  }
  const producedSeconds = (Date.now() - started) / 1000;
  await Promise.all(pending);
  const expected = base.delivered + (produced - failed) * WEBHOOKS;
  const complete = await until(() => receiver.delivered >= expected);
  const cpu = meter.since(mark);
  const deliveries = receiver.delivered - base.delivered;
  return {
    complete,
    events: produced,
    events_failed: failed,
    events_per_sec: Math.round(produced / producedSeconds),
    produce_ms: summary(produceMs),
    deliveries,
    delivery_lag_ms: summary(receiver.lagsMs.slice(base.lags)),
    cpu_us_per_delivery: {
      worker: perUnit(cpu.worker!, deliveries),
      postgres: perUnit(cpu.postgres!, deliveries),
    },
  };
}

async function run(db: Database, receiver: Receiver, name: 'postbox' | 'pgboss', index: number) {
  const url = await createDatabase(db, `${name}_${index}`);
  const design = await (name === 'postbox' ? postboxDesign : pgbossDesign)(url, receiver);
  try {
    log(`${name}: queueing ${PRELOAD} events × ${WEBHOOKS} webhooks, then draining`);
    const drained = await drain(db, design, receiver);
    try {
      log(`${name}: drained at ${drained.result.deliveries_per_sec}/s; ${RATE} events/s for ${DURATION_S} s`);
      const rate = await steady(db, design, receiver, drained.worker.pid);
      log(`${name}: lag p99 ${rate.delivery_lag_ms.p99} ms`);
      return { design: name, drain: drained.result, steady: rate };
    } finally {
      await drained.worker.stop();
    }
  } finally {
    await design.close();
  }
}

async function main(): Promise<void> {
  const db = await startDatabase();
  const receiver = await startReceiver();
  const started = machine();
  try {
    const runs = [];
    for (const [i, name] of DESIGNS.entries()) runs.push(await run(db, receiver, name, i));
    console.log(
      JSON.stringify({
        bench: 'pgboss',
        machine: { ...started, load_at_end: machine().load },
        settings: {
          preload_events: PRELOAD,
          rate: RATE,
          produce_every_ms: PRODUCE_EVERY_MS,
          duration_s: DURATION_S,
          webhooks: WEBHOOKS,
          event_bytes: EVENT_BYTES,
          pgboss: {
            workers: envNumber('PGBOSS_WORKERS', 4),
            batch: envNumber('PGBOSS_BATCH', 50),
            poll_seconds: envNumber('PGBOSS_POLL_SECONDS', 0.5),
          },
        },
        runs,
        duplicates: receiver.duplicates,
      }),
    );
    if (runs.some((r) => !r.drain.complete || !r.steady.complete)) process.exitCode = 1;
  } finally {
    await receiver.close();
    await db.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
