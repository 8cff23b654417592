/**
 * End-to-end benchmark: a real Postbox process (API + workers), a real receiver on 127.0.0.1, and
 * autocannon POSTing single events for a fixed time. Prints events/s ingested, deliveries/s completed,
 * and p50/p95/p99 of ingest latency and of delivery lag (event received to receiver answered), and the
 * CPU seconds Postbox and PostgreSQL used per delivery (Linux, embedded database only for PostgreSQL).
 *
 *   npm run bench:e2e                                   # 20 s, 50 connections, 1 webhook
 *   BENCH_DURATION=30 BENCH_CONNECTIONS=100 BENCH_WEBHOOKS=2 npm run bench:e2e
 *   BENCH_RATE=300 npm run bench:e2e                     # steady load: at most 300 events/s
 *   BENCH_ORDERING=fifo BENCH_PRELOAD=2000 BENCH_DURATION=0 npm run bench:e2e  # the same, FIFO webhook
 *   BENCH_PRELOAD=20000 BENCH_DURATION=0 npm run bench:e2e  # delivery throughput: queue 20k events
 *                                                       # with /events/batch, time until all delivered
 *   BENCH_DATABASE_URL=postgres://... npm run bench:e2e  # an existing server instead of embedded
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench:e2e   # profile Postbox
 *
 * Loopback only, bounded in time, stops by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { freePort, startEmbeddedPostgres } from '../src/db/embedded.js';
import { projectRoot } from '../src/paths.js';
import { cpuMeter } from './proc-cpu.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const DURATION_S = env('BENCH_DURATION', 20);
const CONNECTIONS = env('BENCH_CONNECTIONS', 50);
const WEBHOOKS = env('BENCH_WEBHOOKS', 1);
const RATE = env('BENCH_RATE', 0); // events/s over all connections; 0 = as fast as it goes
const DRAIN_TIMEOUT_MS = env('BENCH_DRAIN_TIMEOUT_MS', 60_000);
const PRELOAD = env('BENCH_PRELOAD', 0); // events queued by /events/batch before the timed ingest
const ORDERING = process.env.BENCH_ORDERING ?? 'none'; // 'fifo': the webhooks deliver one at a time, in order
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(samples: number[]) {
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    p50: round(percentile(arr, 50)),
    p95: round(percentile(arr, 95)),
    p99: round(percentile(arr, 99)),
    max: round(arr[arr.length - 1] ?? NaN),
  };
}

/** The receiver: answers 200 at once and records the lag of every delivery it gets. */
function startReceiver() {
  const lagsMs: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let lastAt = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200).end();
      const now = Date.now();
      lastAt = now;
      const id = String(req.headers['webhook-id']);
      if (seen.has(id)) duplicates++;
      else seen.add(id);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { timestamp: string };
      lagsMs.push(now - Date.parse(body.timestamp));
    });
  });
  server.keepAliveTimeout = 60_000;
  return {
    server,
    lagsMs,
    get delivered() {
      return seen.size;
    },
    get duplicates() {
      return duplicates;
    },
    get lastAt() {
      return lastAt;
    },
  };
}

async function startPostbox(databaseUrl: string, port: number): Promise<ChildProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postbox-bench-'));
  // BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the Postbox process.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(projectRoot, 'dist', 'src', 'main.js')], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      PORT: String(port),
      ADMIN_API_KEY: ADMIN_KEY,
      SSRF_ALLOW_CIDRS: '127.0.0.0/8',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (/"level":"(error|warn)"/.test(line)) console.error('[postbox]', line.slice(0, 300));
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/ready`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('Postbox did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The embedded server's postmaster, from its pid file (first line); undefined for BENCH_DATABASE_URL. */
function postmasterPid(pgDir: string | undefined): number | undefined {
  if (!pgDir) return undefined;
  return Number(readFileSync(join(pgDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

async function api<T>(base: string, key: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function machine() {
  const os = await import('node:os');
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version };
}

/** The processes whose CPU is measured: Postbox, and the embedded PostgreSQL's postmaster (with its backends). */
interface Measured {
  postbox: number | undefined;
  postgres: number | undefined;
}

/** CPU seconds used since `meter` started, and per delivery in milliseconds. */
function cpuReport(meter: ReturnType<typeof cpuMeter>, deliveries: number) {
  const used = meter.read();
  const perDelivery = (s: number | undefined) =>
    s === undefined || deliveries === 0 ? null : Math.round((s * 1000 * 1000) / deliveries) / 1000;
  const total =
    used.postbox === undefined || used.postgres === undefined ? undefined : used.postbox + used.postgres;
  return {
    seconds: { postbox: used.postbox ?? null, postgres: used.postgres ?? null },
    ms_per_delivery: {
      postbox: perDelivery(used.postbox),
      postgres: perDelivery(used.postgres),
      total: perDelivery(total),
    },
  };
}

function settings() {
  return {
    duration_s: DURATION_S,
    connections: CONNECTIONS,
    webhooks: WEBHOOKS,
    rate: RATE || 'max',
    preload: PRELOAD,
    ordering: ORDERING,
  };
}

/** Queues PRELOAD events with /events/batch (1000 a call), then waits until every delivery arrived. */
async function preloadAndDrain(
  base: string,
  key: string,
  receiver: ReturnType<typeof startReceiver>,
  measured: Measured,
) {
  const started = Date.now();
  const meter = cpuMeter({ ...measured });
  const expected = receiver.delivered + PRELOAD * WEBHOOKS;
  const lagsFrom = receiver.lagsMs.length;
  for (let sent = 0; sent < PRELOAD; sent += 1000) {
    const n = Math.min(1000, PRELOAD - sent);
    const events = Array.from({ length: n }, (_, i) => ({ type: 'bench.created', payload: { i: sent + i } }));
    await api(base, key, '/events/batch', { events });
  }
  const queuedMs = Date.now() - started;
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (receiver.delivered < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = ((receiver.delivered >= expected ? receiver.lastAt : Date.now()) - started) / 1000;
  const delivered = receiver.delivered - (expected - PRELOAD * WEBHOOKS);
  return {
    events: PRELOAD,
    queued_in_ms: queuedMs,
    deliveries: delivered,
    drain_seconds: Math.round(seconds * 100) / 100,
    deliveries_per_sec: Math.round(delivered / seconds),
    delivery_lag_ms: summary(receiver.lagsMs.slice(lagsFrom)),
    cpu: cpuReport(meter, delivered),
  };
}

async function main(): Promise<void> {
  let stopDatabase = async () => {};
  let databaseUrl = process.env.BENCH_DATABASE_URL;
  let pgDir: string | undefined;
  if (!databaseUrl) {
    pgDir = mkdtempSync(join(tmpdir(), 'postbox-bench-pg-'));
    chmodSync(pgDir, 0o755); // the embedded server runs as its own user
    const pg = await startEmbeddedPostgres(pgDir);
    databaseUrl = pg.url;
    stopDatabase = async () => {
      await pg.stop();
      rmSync(pgDir!, { recursive: true, force: true });
    };
  }

  const receiver = startReceiver();
  await new Promise<void>((r) => receiver.server.listen(0, '127.0.0.1', r));
  const receiverAddr = receiver.server.address();
  const receiverUrl = `http://127.0.0.1:${typeof receiverAddr === 'object' && receiverAddr ? receiverAddr.port : 0}/hook`;

  const port = await freePort();
  const postbox = await startPostbox(databaseUrl, port);
  const base = `http://127.0.0.1:${port}`;
  try {
    const tenant = await api<{ api_key: string }>(base, ADMIN_KEY, '/tenants', {
      name: 'bench',
      quotas: { max_events_per_sec: 1_000_000, max_concurrent_deliveries: 100_000 },
    });
    for (let i = 0; i < WEBHOOKS; i++) {
      await api(base, tenant.api_key, '/webhooks', {
        url: receiverUrl,
        event_types: ['bench.*'],
        max_concurrency: 100,
        ordering: ORDERING,
      });
    }

    const measured: Measured = { postbox: postbox.pid, postgres: postmasterPid(pgDir) };
    const preload = PRELOAD > 0 ? await preloadAndDrain(base, tenant.api_key, receiver, measured) : undefined;
    if (DURATION_S <= 0) {
      console.log(JSON.stringify({ machine: await machine(), settings: settings(), preload }, null, 2));
      return;
    }
    const before = { delivered: receiver.delivered, lags: receiver.lagsMs.length };

    const ingestLatencies: number[] = [];
    let accepted = 0;
    let rejected = 0;
    const started = Date.now();
    const meter = cpuMeter({ ...measured });
    let done!: (err: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      done = (err) => (err ? reject(err) : resolve());
    });
    const instance = autocannon(
      {
        url: `${base}/events`,
        method: 'POST',
        connections: CONNECTIONS,
        duration: DURATION_S,
        ...(RATE > 0 ? { overallRate: RATE } : {}),
        headers: { authorization: `Bearer ${tenant.api_key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'bench.created',
          payload: { order_id: 42, items: [1, 2, 3], note: 'benchmark' },
        }),
      },
      (err) => done(err),
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
      if (status === 202) {
        accepted++;
        ingestLatencies.push(responseTime);
      } else rejected++;
    });
    await finished;
    const ingestEnded = Date.now();

    const expected = before.delivered + accepted * WEBHOOKS;
    const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (receiver.delivered < expected && Date.now() < drainDeadline)
      await new Promise((r) => setTimeout(r, 50));
    const deliveredEnd = receiver.delivered >= expected ? receiver.lastAt : Date.now();

    const ingestSeconds = (ingestEnded - started) / 1000;
    const deliverySeconds = (deliveredEnd - started) / 1000;
    const delivered = receiver.delivered - before.delivered;
    const result = {
      machine: await machine(),
      settings: settings(),
      ...(preload ? { preload } : {}),
      events_accepted: accepted,
      events_rejected: rejected,
      events_per_sec: Math.round(accepted / ingestSeconds),
      deliveries_expected: accepted * WEBHOOKS,
      deliveries_completed: delivered,
      duplicate_deliveries: receiver.duplicates,
      deliveries_per_sec: Math.round(delivered / deliverySeconds),
      ingest_latency_ms: summary(ingestLatencies),
      delivery_lag_ms: summary(receiver.lagsMs.slice(before.lags)),
      // Ingest and delivery together, over the timed run and its drain.
      cpu: cpuReport(meter, delivered),
    };
    console.log(JSON.stringify(result, null, 2));
    if (receiver.delivered < expected) process.exitCode = 1;
  } finally {
    postbox.kill('SIGTERM');
    await new Promise((r) => postbox.once('exit', r));
    receiver.server.closeAllConnections();
    receiver.server.close();
    await stopDatabase();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
