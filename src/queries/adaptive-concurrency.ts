/**
 * Adaptive per-webhook concurrency (AIMD), as SQL fragments of the record statement (record.ts), so the
 * limit lives in the webhook row: every worker process's claim reads it, every recorder adapts it.
 *
 * Per webhook, from each recorded batch of its attempts (those cut short by our shutdown left out):
 * - the latency floor is the recent minimum of the batch's median 2xx duration (a median, so a few
 *   outliers do not move it); when a batch is slower it drifts towards it with a time constant of
 *   floorDriftMs, so a receiver that stays slower becomes the new normal instead of being held at 1;
 * - the recent latency is a moving average of the batch medians (weight recentWeight per batch), so one
 *   slow batch does not count as congestion but a receiver that stays slow does within a few batches;
 * - congestion: a timeout, a connection error, a 5xx or a 429, or the recent latency above
 *   latencyFactor × floor + latencySlackMs. Generous on purpose: the duration includes our own event
 *   loop's delays, which on a busy machine reach tens of milliseconds without the receiver slowing;
 * - multiplicative decrease on congestion: limit × decreaseFactor, at most once per mean attempt
 *   duration (between minCutSpacingMs and maxCutSpacingMs), so one overload episode, seen by several
 *   batches, costs one cut;
 * - additive increase otherwise: + 1/limit per 2xx (about +1 per round trip of the whole window), but
 *   only while at least half the limit is in use: an idle webhook's limit does not grow unchecked;
 * - always between 1 and max_concurrency (the user's ceiling).
 *
 * The row is written only when the limit or the floor moves (the claim never locks webhooks).
 */

/** The constants of the policy, in one place; docs/perf.md shows how they behave. */
export const ADAPTIVE_CONCURRENCY = Object.freeze({
  decreaseFactor: 0.75,
  latencyFactor: 3,
  latencySlackMs: 100,
  floorDriftMs: 60_000,
  recentWeight: 0.3,
  minCutSpacingMs: 250,
  maxCutSpacingMs: 1000,
});

const P = ADAPTIVE_CONCURRENCY;

/**
 * Per-webhook aggregates for `health`'s GROUP BY; `x` has ok, overload and duration_ms per attempt.
 * Must be kept beside the other aggregates of that CTE.
 */
export const ADAPT_AGGREGATES = `count(*) FILTER (WHERE x.ok) AS oks,
          count(*) FILTER (WHERE x.overload) AS overloads,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY x.duration_ms) FILTER (WHERE x.ok) AS ok_median_ms,
          avg(x.duration_ms)::float8 AS mean_ms`;

/** Per attempt, for `x`: what counts as a sign of overload. */
export const ADAPT_OVERLOAD = `(status_code IS NULL OR status_code >= 500 OR status_code = 429) AS overload`;

/**
 * A LATERAL over the webhook row `w` (locked, newest version) and its batch aggregates `h`: the new
 * limit and floor, whether the limit was cut, whether anything changed.
 */
export const ADAPT_LATERAL = `(
      SELECT n.new_limit, s.floor_ms AS new_floor_ms, r.recent_ms AS new_recent_ms, c.cut,
             (n.new_limit IS DISTINCT FROM w.concurrency_limit OR s.floor_ms IS DISTINCT FROM w.latency_floor_ms
              OR r.recent_ms IS DISTINCT FROM w.latency_recent_ms) AS adapted
        FROM (SELECT CASE WHEN h.oks = 0 THEN w.latency_recent_ms
                          ELSE coalesce(w.latency_recent_ms + (h.ok_median_ms - w.latency_recent_ms)
                                        * ${P.recentWeight}, h.ok_median_ms) END AS recent_ms) r
       CROSS JOIN LATERAL (
              SELECT least(w.concurrency_limit, w.max_concurrency::float8) AS cur,
                     coalesce(h.overloads > 0
                              OR r.recent_ms > ${P.latencyFactor} * w.latency_floor_ms + ${P.latencySlackMs},
                              false) AS congested,
                     CASE WHEN h.oks = 0 THEN w.latency_floor_ms
                          WHEN w.latency_floor_ms IS NULL OR h.ok_median_ms <= w.latency_floor_ms THEN h.ok_median_ms
                          ELSE w.latency_floor_ms + (h.ok_median_ms - w.latency_floor_ms)
                               * least(1, extract(epoch FROM now() - coalesce(w.concurrency_updated_at, now()))
                                          * 1000 / ${P.floorDriftMs})
                     END AS floor_ms) s
       CROSS JOIN LATERAL (
             SELECT s.congested
                    AND (w.concurrency_decreased_at IS NULL
                         OR w.concurrency_decreased_at
                            <= now() - least(greatest(h.mean_ms, ${P.minCutSpacingMs}), ${P.maxCutSpacingMs}) * interval '1 millisecond') AS cut) c
       CROSS JOIN LATERAL (
             SELECT CASE
                      WHEN c.cut THEN greatest(1, s.cur * ${P.decreaseFactor})
                      WHEN s.congested OR h.oks = 0 OR s.cur >= w.max_concurrency THEN s.cur
                      -- In use: in-flight rows of this snapshot (this batch's included), counted up to half.
                      WHEN (SELECT count(*) FROM (SELECT 1 FROM deliveries f
                                                   WHERE f.status = 'in_flight' AND f.tenant_id = w.tenant_id
                                                     AND f.webhook_id = w.id
                                                   LIMIT ceil(s.cur / 2)) u) >= floor(s.cur) / 2
                        THEN least(w.max_concurrency, s.cur + h.oks / s.cur)
                      ELSE s.cur END AS new_limit) n)`;
