/**
 * A deep queue and a long history, written fast: INSERT … SELECT generate_series straight into events,
 * deliveries and delivery_attempts, the rows postbox.ingest and the recorder would have left (two
 * deliveries per event, to two different webhooks), with every constraint and trigger in force.
 * About 15,000 deliveries/s with their events on the 2-core machine.
 */
import type pg from 'pg';

export interface FillTarget {
  tenantId: string;
  /** The tenant's webhooks; event e goes to webhooks[(2e) % n] and webhooks[(2e + 1) % n]. */
  webhookIds: string[];
  /** JSON size of each event's payload, about. */
  payloadBytes: number;
}

/** Events per fill transaction (two deliveries each). */
const CHUNK_EVENTS = 100_000;

// Ids shaped like UUIDv7 (the time in the first 48 bits, as postbox.uuidv7 makes them, so the indexes on
// id fill in time order as in production), the row's number in the last 12 hex digits, and `kind`
// (3 hex digits) keeping events and deliveries apart.
const idSql = (kind: string, n: string, t: string) =>
  `(overlay(lpad(to_hex((extract(epoch FROM ${t}) * 1000)::bigint), 12, '0') PLACING '-' FROM 9 FOR 0)
    || '-7${kind}-8000-' || lpad(to_hex(${n}), 12, '0'))::uuid`;

// $1 tenant, $2 webhook ids, $3 first event of the class, $4 first event of the chunk, $5 events in the
// chunk, $6 time of the class's first event, $7 ms between events, $8 md5 repeats in the payload's note.
// `args` names every parameter's type, used or not, so the three statements share one list.
const EVENTS_CTE = `WITH args AS (SELECT $1::uuid, $2::uuid[], $8::int), ev AS MATERIALIZED (
  SELECT e, $6::timestamptz + (e - $3) * $7::float8 * interval '1 millisecond' AS t
    FROM generate_series($4::bigint, $4::bigint + $5 - 1) e)`;

const INSERT_EVENTS = `${EVENTS_CTE}
INSERT INTO events (id, tenant_id, type, payload, occurred_at, received_at)
SELECT ${idSql('e00', 'e', 't')}, $1, 'bench.created',
       jsonb_build_object('order_id', e, 'customer', jsonb_build_object('id', 'cus_' || e, 'email', 'c' || e || '@example.com'),
                          'items', jsonb_build_array(jsonb_build_object('sku', 'A-1', 'qty', 1, 'price_cents', 1999)),
                          'note', repeat(md5(e::text), $8)),
       t, t
  FROM ev ORDER BY e`;

/** Deliveries 2e and 2e+1 of event e; `finished`: succeeded at the first attempt, 25 ms after the event. */
const insertDeliveries = (finished: boolean) => `${EVENTS_CTE}
INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, status, attempts, next_attempt_at, last_attempt_at,
                        last_status_code, created_at, updated_at, completed_at, cycle_started_at)
SELECT ${idSql('d00', '2 * e + k', 't')}, $1, ${idSql('e00', 'e', 't')},
       ($2::uuid[])[1 + (2 * e + k) % cardinality($2::uuid[])],
       ${
         finished
           ? `'succeeded', 1, t, t + interval '5 ms', 200, t, t + interval '25 ms', t + interval '25 ms', t`
           : `'pending', 0, t, NULL, NULL, t, t, NULL, t`
       }
  FROM ev CROSS JOIN generate_series(0, 1) k ORDER BY e, k`;

/** The one attempt of each finished delivery: 200 in 20 ms, an empty answer (as the benches' receiver). */
const INSERT_ATTEMPTS = `${EVENTS_CTE}
INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, response_excerpt)
SELECT ${idSql('d00', '2 * e + k', 't')}, 1, t + interval '5 ms', 20, 200, ''
  FROM ev CROSS JOIN generate_series(0, 1) k ORDER BY e, k`;

interface Span {
  /** Number of the first event (event numbers go on across calls: ids must not repeat). */
  first: number;
  events: number;
  from: Date;
  spanMs: number;
  finished: boolean;
}

async function fillSpan(
  client: pg.Client,
  f: FillTarget,
  o: Span,
  log: (msg: string) => void,
): Promise<void> {
  const stepMs = o.events > 0 ? o.spanMs / o.events : 0;
  // The payload without its note is about 190 bytes of JSON; each md5 adds 32.
  const repeats = Math.max(0, Math.round((f.payloadBytes - 190) / 32));
  const started = performance.now();
  for (let done = 0; done < o.events; done += CHUNK_EVENTS) {
    const n = Math.min(CHUNK_EVENTS, o.events - done);
    const values = [f.tenantId, f.webhookIds, o.first, o.first + done, n, o.from, stepMs, repeats];
    await client.query('BEGIN');
    await client.query(INSERT_EVENTS, values);
    await client.query(insertDeliveries(o.finished), values);
    if (o.finished) await client.query(INSERT_ATTEMPTS, values);
    await client.query('COMMIT');
    const rate = Math.round((2 * (done + n)) / ((performance.now() - started) / 1000));
    log(
      `${o.finished ? 'finished' : 'pending'}: ${2 * (done + n)} of ${2 * o.events} deliveries (${rate}/s)`,
    );
  }
}

/**
 * Writes `finished` succeeded deliveries spread over the last two days (with their attempts, in daily
 * partitions), then `pending` ones created over the last ten minutes, all due; both even. Then VACUUM
 * ANALYZE and CHECKPOINT, as autovacuum and the checkpointer would have by the time a queue got this
 * deep, so what is measured next does not pay for the fill. Returns the seconds it took.
 */
export async function fillQueue(
  client: pg.Client,
  f: FillTarget,
  o: { pending: number; finished: number },
  log: (msg: string) => void,
): Promise<number> {
  const started = performance.now();
  // The fill's commits need not wait for the disk; what is measured later runs with the defaults.
  await client.query('SET synchronous_commit = off');
  await client.query(`SELECT postbox.create_attempt_partition((now() AT TIME ZONE 'UTC')::date + g)
                        FROM generate_series(-3, 0) g`);
  const now = Date.now();
  const twoDays = 2 * 86_400_000;
  const finishedEvents = o.finished / 2;
  await fillSpan(
    client,
    f,
    {
      first: 0,
      events: finishedEvents,
      from: new Date(now - twoDays),
      spanMs: twoDays - 600_000,
      finished: true,
    },
    log,
  );
  await fillSpan(
    client,
    f,
    {
      first: finishedEvents,
      events: o.pending / 2,
      from: new Date(now - 600_000),
      spanMs: 590_000,
      finished: false,
    },
    log,
  );
  log('VACUUM ANALYZE, CHECKPOINT');
  await client.query('VACUUM ANALYZE');
  await client.query('CHECKPOINT');
  await client.query('RESET synchronous_commit');
  return Math.round((performance.now() - started) / 100) / 10;
}

/**
 * Size on disk of the tables a queue and its history fill (partitions, TOAST and indexes included),
 * per row too: what capacity planning multiplies by rows per day.
 */
export async function tableSizes(client: pg.Client) {
  const out: Record<string, unknown> = {};
  for (const table of ['events', 'deliveries', 'delivery_attempts']) {
    const { rows } = await client.query<{ rows: string; total: string; heap: string; indexes: string }>(
      // pg_partition_tree lists a partitioned table's leaves; a plain table is its own leaf.
      `WITH leaves AS (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf
                       UNION SELECT $1::regclass WHERE NOT EXISTS (SELECT FROM pg_partition_tree($1::regclass)))
       SELECT sum(c.reltuples)::bigint AS rows, sum(pg_total_relation_size(l.relid))::bigint AS total,
              sum(pg_table_size(l.relid))::bigint AS heap, sum(pg_indexes_size(l.relid))::bigint AS indexes
         FROM leaves l JOIN pg_class c ON c.oid = l.relid`,
      [table],
    );
    const { rows: tuple } = await client.query<{ avg: number }>(
      `SELECT avg(pg_column_size(t.*))::int AS avg FROM (SELECT * FROM ${table} TABLESAMPLE SYSTEM (1)) t`,
    );
    const r = rows[0]!;
    const n = Number(r.rows);
    const mib = (b: string) => Math.round((10 * Number(b)) / 2 ** 20) / 10;
    out[table] = {
      rows: n,
      total_mib: mib(r.total),
      heap_mib: mib(r.heap),
      indexes_mib: mib(r.indexes),
      bytes_per_row: n > 0 ? Math.round(Number(r.total) / n) : null,
      tuple_bytes: tuple[0]?.avg ?? null,
    };
  }
  return out;
}
