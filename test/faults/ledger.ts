/**
 * The fault suite's bookkeeping: a producer that keeps posting events while a fault happens, and the
 * check every case ends with: every acked event (answered 202) has all its deliveries delivered or
 * dead-lettered, nothing acked is lost, and duplicates are counted (at-least-once allows them after a
 * crash; they are reported, not hidden).
 */
import type pg from 'pg';
import type { TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';

export interface ProducerTally {
  /** delivery ids of every acked event, by event id. */
  acked: Map<string, string[]>;
  /** HTTP status -> count, plus 'network' for requests that got no answer. */
  statuses: Map<string, number>;
  /** 503 answers without a Retry-After header (must stay 0). */
  unavailableWithoutRetryAfter: number;
  /** Date.now() of each acked answer, to measure recovery. */
  ackTimes: number[];
}

export interface ProducerOptions {
  /** Loops posting at once (default 4). */
  concurrency?: number;
  /** No loop posts past this many ms after the start (default 60 s). */
  maxMs?: number;
  /** Each loop's pause after an acked post (default 0: as fast as answers come), to shape the load. */
  paceMs?: number;
  /** Event type (default 'fault.test'). */
  type?: string;
}

/** Posts events with `concurrency` loops until `stop()`; bounded by `maxMs` in any case. */
export function startProducer(app: TestApp, tenantId: string, options: ProducerOptions = {}) {
  const { concurrency = 4, maxMs = 60_000, paceMs = 0, type = 'fault.test' } = options;
  const tally: ProducerTally = {
    acked: new Map(),
    statuses: new Map(),
    unavailableWithoutRetryAfter: 0,
    ackTimes: [],
  };
  const deadline = Date.now() + maxMs;
  let stopped = false;
  let n = 0;
  const count = (key: string) => tally.statuses.set(key, (tally.statuses.get(key) ?? 0) + 1);
  const loop = async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const res = await app.request('POST', '/events', {
          body: { type, payload: { n: n++ }, tenant_id: tenantId },
        });
        count(String(res.status));
        if (res.status === 202) {
          tally.acked.set(res.body.event_id, res.body.delivery_ids);
          tally.ackTimes.push(Date.now());
        } else if (res.status === 503 && !res.headers.get('retry-after'))
          tally.unavailableWithoutRetryAfter++;
        // A producer honouring Retry-After would wait longer; a short pause keeps the load steady.
        if (res.status !== 202) await new Promise((r) => setTimeout(r, 50));
        else if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
      } catch {
        count('network');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    tally,
    /** Resolves once at least `k` more events are acked than now. */
    async acks(k: number, timeoutMs = 30_000) {
      const target = tally.acked.size + k;
      await waitFor(() => tally.acked.size >= target, { timeoutMs, what: `${k} more acked events` });
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return tally;
    },
  };
}

export interface Figures {
  acked: number;
  deliveries: number;
  delivered: number;
  deadLettered: number;
  lost: number;
  duplicates: number;
  answers: Record<string, number>;
}

/** What the receiver saw: webhook-id → requests it accepted (answered 2xx, or would have). */
export interface Seen {
  readonly counts: ReadonlyMap<string, number>;
}

/**
 * Waits until every delivery of every acked event is succeeded or failed (dead-lettered), then
 * checks the receiver saw each succeeded one; returns the figures.
 */
export async function settle(
  pool: pg.Pool,
  tally: ProducerTally,
  receiver: Seen,
  timeoutMs = 60_000,
): Promise<Figures> {
  const deliveryIds = [...tally.acked.values()].flat();
  const byStatus = async () => {
    const { rows } = await pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM deliveries WHERE id = ANY($1::uuid[]) GROUP BY status`,
      [deliveryIds],
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n])) as Record<string, number>;
  };
  let last: Record<string, number> = {};
  await waitFor(
    async () => {
      last = await byStatus();
      return (last.succeeded ?? 0) + (last.failed ?? 0) === deliveryIds.length;
    },
    {
      timeoutMs,
      intervalMs: 200,
      what: `all ${deliveryIds.length} deliveries settled (last: ${JSON.stringify(last)})`,
    },
  );
  const { rows } = await pool.query<{ id: string; status: string; dlq: boolean }>(
    `SELECT d.id, d.status, EXISTS (SELECT 1 FROM dead_letter_queue q WHERE q.delivery_id = d.id) AS dlq
       FROM deliveries d WHERE d.id = ANY($1::uuid[])`,
    [deliveryIds],
  );
  const succeeded = rows.filter((r) => r.status === 'succeeded');
  const deadLettered = rows.filter((r) => r.status === 'failed' && r.dlq).length;
  // Lost: an acked delivery that is missing, never reached the receiver although marked succeeded, or
  // failed without a DLQ row.
  const lost =
    deliveryIds.length -
    rows.length +
    succeeded.filter((r) => !receiver.counts.has(r.id)).length +
    rows.filter((r) => r.status === 'failed' && !r.dlq).length;
  const duplicates = deliveryIds.reduce(
    (sum, id) => sum + Math.max(0, (receiver.counts.get(id) ?? 0) - 1),
    0,
  );
  return {
    acked: tally.acked.size,
    deliveries: deliveryIds.length,
    delivered: succeeded.length,
    deadLettered,
    lost,
    duplicates,
    answers: Object.fromEntries(tally.statuses),
  };
}

/** Seconds from `from` to the first acked answer after it. */
export function recoverySeconds(tally: ProducerTally, from: number): number | null {
  const first = tally.ackTimes.filter((t) => t >= from).sort((a, b) => a - b)[0];
  return first === undefined ? null : Math.round((first - from) / 100) / 10;
}

/** One line per case, for docs/reliability.md. */
export function report(name: string, figures: Figures & Record<string, unknown>): void {
  process.stdout.write(`FAULT ${name} ${JSON.stringify(figures)}\n`);
}
