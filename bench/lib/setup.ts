/**
 * What every bench sets up: a PostgreSQL (embedded in a temp dir unless BENCH_DATABASE_URL), real
 * Postbox processes (dist/src/main.js, one per role) and the API calls to create a tenant and webhooks.
 * Loopback only; everything started here is stopped by `stop()`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { projectRoot } from '../../src/paths.js';
import { postmasterPid } from './cpu.js';
import { statementSettings, statementsWanted } from './pg-statements.js';

export const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
/** One secrets key for every process of a run: a worker must decrypt what the API process sealed. */
const SECRETS_KEY = randomBytes(32).toString('hex');

export interface Database {
  url: string;
  /** The postmaster's pid, when the server runs on this machine (its CPU is then measured). */
  postmasterPid: number | undefined;
  stop(): Promise<void>;
}

/** BENCH_DATABASE_URL, or an embedded PostgreSQL 17 (default settings, fsync on) in a temp dir. */
export async function startDatabase(): Promise<Database> {
  let url = process.env.BENCH_DATABASE_URL;
  let stop = async () => {};
  if (!url) {
    const dir = mkdtempSync(join(tmpdir(), 'postbox-bench-pg-'));
    chmodSync(dir, 0o755); // the embedded server runs as its own user
    const server = await startEmbeddedPostgres(dir, statementsWanted ? { settings: statementSettings } : {});
    url = server.url;
    stop = async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  return { url, postmasterPid: await findPostmaster(url), stop };
}

async function findPostmaster(url: string): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ setting: string }>(
      `SELECT setting FROM pg_settings WHERE name = 'data_directory'`,
    );
    return rows[0] ? postmasterPid(rows[0].setting) : undefined;
  } catch {
    return undefined; // not a superuser, or another machine: no PostgreSQL CPU figures
  } finally {
    await client.end();
  }
}

export interface PostboxProcess {
  pid: number;
  base: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node dist/src/main.js` with POSTBOX_ROLE=`role` and waits for /ready. LOG_LEVEL defaults to
 * Postbox's own default (info), written to /dev/null by the bench: the cost of logging is part of what
 * is measured. BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles every Postbox process;
 * BENCH_POSTBOX_MAIN=/path/to/other/dist/src/main.js runs another build (A/B against a baseline).
 */
export async function startPostbox(
  databaseUrl: string,
  role: 'all' | 'api' | 'worker',
  env: Record<string, string> = {},
  onSpawn?: (pid: number) => void,
): Promise<PostboxProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postbox-bench-'));
  const port = await freePort();
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // BENCH_POSTBOX_MAIN: the main.js of another build (an A/B against a baseline checkout).
  const main = process.env.BENCH_POSTBOX_MAIN ?? join(projectRoot, 'dist', 'src', 'main.js');
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      PORT: String(port),
      ADMIN_API_KEY: ADMIN_KEY,
      SECRETS_KEY,
      SSRF_ALLOW_CIDRS: '127.0.0.0/8',
      POSTBOX_ROLE: role,
      ...env,
    },
    // BENCH_STDOUT=ignore: Postbox's log lines go to /dev/null instead of a pipe read by the bench.
    stdio: ['ignore', process.env.BENCH_STDOUT === 'ignore' ? 'ignore' : 'pipe', 'inherit'],
  });
  child.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  onSpawn?.(child.pid!);
  // Every line is read (so the pipe never blocks the process); warnings and errors are shown.
  if (child.stdout)
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.includes('"level":"error"') || line.includes('"level":"warn"'))
        console.error(`[postbox ${role}]`, line.slice(0, 300));
    });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`Postbox (${role}) did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    pid: child.pid!,
    base,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function api<T>(base: string, key: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A tenant without quota limits in the way, and `webhooks` webhooks on bench.* pointing at `url`. */
export async function benchTenant(
  base: string,
  o: { webhooks: number; url: string; ordering?: string },
): Promise<{ apiKey: string }> {
  const tenant = await api<{ api_key: string }>(base, ADMIN_KEY, '/tenants', {
    name: 'bench',
    quotas: { max_events_per_sec: 1_000_000, max_concurrent_deliveries: 100_000 },
  });
  for (let i = 0; i < o.webhooks; i++)
    await api(base, tenant.api_key, '/webhooks', {
      url: o.url,
      event_types: ['bench.*'],
      ordering: o.ordering ?? 'none',
    });
  return { apiKey: tenant.api_key };
}

/**
 * An event whose JSON (type and payload, as a producer sends it) is about `bytes` long: a few fields
 * of an order and a note that pads it.
 */
export function benchEvent(bytes: number, i = 0): { type: string; payload: unknown } {
  const payload = {
    order_id: 100_000 + i,
    customer: { id: `cus_${i}`, email: `customer${i}@example.com` },
    items: [
      { sku: 'A-1', qty: 1, price_cents: 1999 },
      { sku: 'B-2', qty: 3, price_cents: 499 },
    ],
    note: '',
  };
  const event = { type: 'bench.created', payload };
  payload.note = 'x'.repeat(Math.max(0, bytes - JSON.stringify(event).length));
  return event;
}

export function machine() {
  return {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    // The machine is shared: the load when the bench started says how much else was running.
    load: loadavg().map((x) => Math.round(x * 100) / 100),
    commit: commit(),
  };
}

/** The commit the bench ran at (dist is built from the working tree, which may differ). */
function commit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: projectRoot,
      encoding: 'utf8',
    }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Transactions committed in the database so far (pg_stat_database): statements per request is a
 * cost driver of its own (each is a round trip, and a commit).
 */
export async function committedTransactions(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Backends report their counts at most once a second while busy: force this one's out first.
    const { rows } = await client.query<{ n: string }>(
      `SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`,
    );
    return Number(rows[0]?.n ?? NaN);
  } finally {
    await client.end();
  }
}
