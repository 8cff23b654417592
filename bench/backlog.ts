/**
 * Backlog and memory: do a deep queue and a long history slow the claim or the drain, and does the
 * worker's memory stay put while it drains?
 *
 *   npm run bench:backlog                                                # 100,000 pending, 500,000 finished
 *   BENCH_PENDING=1000000 BENCH_FINISHED=5000000 npm run bench:backlog   # the full size (fill ~10 min)
 *
 * One embedded PostgreSQL 17 (default settings, fsync on; or BENCH_DATABASE_URL, which must allow
 * CREATE DATABASE) holding two databases, each migrated by a Postbox API process and given one tenant
 * with BENCH_WEBHOOKS webhooks (adaptive limit opened to its ceiling: the claim and the engine are
 * measured, not the limit's ramp) pointing at a receiver on 127.0.0.1:
 *
 * - empty: only what the drain rounds will take is pending, nothing finished;
 * - full: BENCH_PENDING pending and BENCH_FINISHED finished deliveries (bench/lib/fill.ts), events of
 *   BENCH_PAYLOAD_BYTES of JSON.
 *
 * Then, alternating between the two so that the machine's other load falls on both alike:
 * - the claim statement (src/queries/claim.ts, claims of 100 as CLAIM_BATCH_SIZE's default), BENCH_CLAIMS
 *   times each, inside BEGIN … ROLLBACK (nothing changes);
 * - BENCH_ROUNDS drain rounds each: a Postbox worker process (POSTBOX_ROLE=worker, default settings)
 *   starts, delivers BENCH_WARMUP, then BENCH_DRAIN / BENCH_ROUNDS deliveries are measured (rate, CPU of
 *   the worker and of PostgreSQL per delivery, WAL bytes per delivery, the worker's RSS every 500 ms),
 *   and it stops.
 *
 * Target (issue 12): the full database's claim p50 and drain time within 1.2× of the empty one's, and the
 * worker's RSS under 300 MiB and flat. Prints one JSON line; progress goes to stderr.
 */
import pg from 'pg';
import { claimDue } from '../src/queries/claim.js';
import { CpuMeter, perUnit, processCpuUs, selfCpuUs, treeCpuUs } from './lib/cpu.js';
import { fillQueue, tableSizes, type FillTarget } from './lib/fill.js';
import { RssSampler } from './lib/memory.js';
import { startReceiver, type Receiver } from './lib/receiver.js';
import { benchTenant, machine, startDatabase, startPostbox, type Database } from './lib/setup.js';
import { resetStatements, statementsWanted, topStatements } from './lib/pg-statements.js';
import { envNumber, summary } from './lib/stats.js';
import { walPosition, walSince } from './lib/wal.js';

const even = (n: number) => 2 * Math.ceil(n / 2);
const PENDING = even(envNumber('BENCH_PENDING', 100_000));
const FINISHED = even(envNumber('BENCH_FINISHED', 500_000));
const ROUNDS = envNumber('BENCH_ROUNDS', 2);
const DRAIN = envNumber('BENCH_DRAIN', 30_000);
const WARMUP = envNumber('BENCH_WARMUP', 2_000);
const WEBHOOKS = envNumber('BENCH_WEBHOOKS', 50);
/** Webhooks made through the API; the rest are copied in SQL. */
const API_WEBHOOKS = 50;
const PAYLOAD_BYTES = envNumber('BENCH_PAYLOAD_BYTES', 1024);
const CLAIMS = envNumber('BENCH_CLAIMS', 40);
const CLAIM_LIMIT = 100;
const ROUND_TIMEOUT_S = envNumber('BENCH_ROUND_TIMEOUT_S', 300);

const log = (msg: string) => console.error(`[backlog] ${msg}`);
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const perRound = Math.ceil(DRAIN / ROUNDS);

interface Side {
  name: 'empty' | 'full';
  url: string;
  pending: number;
  finished: number;
}

/** Creates a database, migrates it through an API process, and makes its tenant and webhooks. */
async function prepare(db: Database, side: Side, receiver: Receiver): Promise<FillTarget> {
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE bench_${side.name}`);
  await admin.end();
  const api = await startPostbox(side.url, 'api');
  try {
    await benchTenant(api.base, { webhooks: Math.min(WEBHOOKS, API_WEBHOOKS), url: receiver.url });
  } finally {
    await api.stop();
  }
  return withClient(side.url, async (c) => {
    // Beyond API_WEBHOOKS, copies of the first (its sealed secret included) with ids of their own:
    // creating 100,000 webhooks through the API would take longer than the bench.
    await c.query(
      `INSERT INTO webhooks
       SELECT (jsonb_populate_record(NULL::webhooks, to_jsonb(w) || jsonb_build_object('id', postbox.uuidv7()))).*
         FROM (SELECT * FROM webhooks ORDER BY id LIMIT 1) w,
              generate_series(1, $1::int - (SELECT count(*) FROM webhooks)::int)`,
      [WEBHOOKS],
    );
    const { rows } = await c.query<{ tenant_id: string; id: string }>(
      `UPDATE webhooks SET concurrency_limit = max_concurrency RETURNING tenant_id, id`,
    );
    return {
      tenantId: rows[0]!.tenant_id,
      webhookIds: rows.map((r) => r.id).sort(),
      payloadBytes: PAYLOAD_BYTES,
    };
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The claim as the engine runs it (prepared), timed at the client, then rolled back. */
async function timeClaim(client: pg.Client): Promise<{ ms: number; rows: number }> {
  await client.query('BEGIN');
  const t0 = performance.now();
  const r = await claimDue(client, {
    workerId: 'bench',
    limit: CLAIM_LIMIT,
    leaseSeconds: 60,
    defaultMaxAttempts: 8,
  });
  const ms = performance.now() - t0;
  await client.query('ROLLBACK');
  return { ms, rows: r.deliveries.length };
}

/** CLAIMS claims on each side, alternating; the first of each (it also plans the statement) is left out. */
async function timeClaims(sides: Side[]) {
  const clients = await Promise.all(
    sides.map(async (s) => {
      const c = new pg.Client({ connectionString: s.url });
      await c.connect();
      return c;
    }),
  );
  try {
    const ms = sides.map(() => [] as number[]);
    const rows = sides.map(() => 0);
    for (let i = 0; i <= CLAIMS; i++)
      for (const [k, c] of clients.entries()) {
        const t = await timeClaim(c);
        if (i === 0) continue;
        ms[k]!.push(t.ms);
        rows[k]! += t.rows;
      }
    return sides.map((_, k) => ({
      runs: CLAIMS,
      rows_per_claim: Math.round(rows[k]! / CLAIMS),
      ms: summary(ms[k]!),
    }));
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** One drain round: a worker starts, warms up, `perRound` deliveries are measured, it stops. */
async function drainRound(db: Database, side: Side, receiver: Receiver) {
  const base = receiver.delivered;
  let reached!: () => void;
  let goal = base + WARMUP;
  receiver.onDelivery = (n) => n === goal && reached();
  const until = (n: number) => {
    goal = n;
    return Promise.race([
      new Promise<boolean>((r) => (reached = () => r(true))),
      new Promise<boolean>((r) => setTimeout(() => r(false), ROUND_TIMEOUT_S * 1000).unref()),
    ]);
  };
  const warmed = until(base + WARMUP);
  const worker = await startPostbox(side.url, 'worker');
  const meter = new CpuMeter({
    postbox: () => processCpuUs(worker.pid),
    postgres: () => (db.postmasterPid ? treeCpuUs(db.postmasterPid) : NaN),
    bench: selfCpuUs,
  });
  try {
    if (!(await warmed)) throw new Error(`${side.name}: no ${WARMUP} deliveries within ${ROUND_TIMEOUT_S} s`);
    const done = until(base + WARMUP + perRound);
    if (statementsWanted) await resetStatements(side.url);
    const cpu0 = meter.read();
    const wal0 = await walPosition(side.url);
    const t0 = performance.now();
    const from = receiver.delivered;
    const rss = new RssSampler(worker.pid);
    const complete = await done;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = meter.since(cpu0);
    const deliveries = receiver.delivered - from;
    const wal = await walSince(side.url, wal0);
    const statements = statementsWanted ? await topStatements(side.url, deliveries) : undefined;
    return { complete, deliveries, seconds, cpu, wal, rss: rss.stop(), statements };
  } finally {
    receiver.onDelivery = undefined;
    await worker.stop();
  }
}

type Round = Awaited<ReturnType<typeof drainRound>>;

function drainSummary(rounds: Round[]) {
  const sum = (f: (r: Round) => number) => rounds.reduce((a, r) => a + f(r), 0);
  const deliveries = sum((r) => r.deliveries);
  const seconds = sum((r) => r.seconds);
  return {
    complete: rounds.every((r) => r.complete),
    deliveries,
    seconds: round(seconds),
    deliveries_per_sec: Math.round(deliveries / seconds),
    rounds_per_sec: rounds.map((r) => Math.round(r.deliveries / r.seconds)),
    cpu_us_per_delivery: {
      postbox: perUnit(
        sum((r) => r.cpu.postbox!),
        deliveries,
      ),
      postgres: perUnit(
        sum((r) => r.cpu.postgres!),
        deliveries,
      ),
      bench: perUnit(
        sum((r) => r.cpu.bench!),
        deliveries,
      ),
    },
    wal_bytes_per_delivery: perUnit(
      sum((r) => r.wal),
      deliveries,
    ),
    rss_mib: rounds.map((r) => r.rss),
    ...(statementsWanted ? { pg_statements_per_delivery: rounds.map((r) => r.statements) } : {}),
  };
}

async function main(): Promise<void> {
  const db = await startDatabase();
  const receiver = await startReceiver();
  const started = machine();
  const urlOf = (name: string) => Object.assign(new URL(db.url), { pathname: `/bench_${name}` }).toString();
  const sides: Side[] = [
    // Enough for every round, and a claim's worth left at the end of the last.
    { name: 'empty', url: urlOf('empty'), pending: even(ROUNDS * (WARMUP + perRound) + 1000), finished: 0 },
    { name: 'full', url: urlOf('full'), pending: PENDING, finished: FINISHED },
  ];
  try {
    const fillSeconds: number[] = [];
    for (const side of sides) {
      log(`${side.name}: ${side.pending} pending, ${side.finished} finished`);
      const target = await prepare(db, side, receiver);
      fillSeconds.push(await withClient(side.url, (c) => fillQueue(c, target, side, log)));
    }
    const sizes = await withClient(sides[1]!.url, tableSizes);
    log('timing the claim');
    const claims = await timeClaims(sides);
    log(`claim p50: empty ${claims[0]!.ms.p50} ms, full ${claims[1]!.ms.p50} ms`);
    const rounds: Round[][] = sides.map(() => []);
    for (let r = 0; r < ROUNDS; r++)
      for (const [k, side] of sides.entries()) {
        const result = await drainRound(db, side, receiver);
        rounds[k]!.push(result);
        log(
          `${side.name} round ${r + 1}: ${Math.round(result.deliveries / result.seconds)} deliveries/s, ` +
            `RSS ${result.rss.first}-${result.rss.max} MiB`,
        );
      }
    const results = sides.map((side, k) => ({
      pending: side.pending,
      finished: side.finished,
      fill_seconds: fillSeconds[k],
      claim: claims[k]!,
      drain: drainSummary(rounds[k]!),
    }));
    const [empty, full] = results as [(typeof results)[0], (typeof results)[0]];
    const claimRatio = round(full.claim.ms.p50 / empty.claim.ms.p50);
    const drainRatio = round(empty.drain.deliveries_per_sec / full.drain.deliveries_per_sec);
    const rssMax = Math.max(...full.drain.rss_mib.map((r) => r.max));
    console.log(
      JSON.stringify({
        bench: 'backlog',
        machine: { ...started, load_at_end: machine().load },
        settings: {
          rounds: ROUNDS,
          drain: DRAIN,
          warmup: WARMUP,
          webhooks: WEBHOOKS,
          payload_bytes: PAYLOAD_BYTES,
        },
        empty,
        full: { ...full, sizes },
        full_vs_empty: {
          claim_p50: claimRatio,
          drain_time: drainRatio,
          within_1_2x: claimRatio <= 1.2 && drainRatio <= 1.2,
          rss_max_mib: rssMax,
          rss_under_300_mib: rssMax < 300,
        },
        duplicates: receiver.duplicates,
      }),
    );
    if (!empty.drain.complete || !full.drain.complete) process.exitCode = 1;
  } finally {
    await receiver.close();
    await db.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
