/**
 * Retry policy: exponential backoff with jitter, capped by max_delay_ms, ended by max_attempts or, when
 * set, by the deadline max_age_seconds after the delivery cycle began (whichever comes first).
 *
 * The default keeps trying for at least 24 hours even at the low edge of the jitter: 40 attempts,
 * 5 s doubling to a 1 h cap, is ~30.4 h of delays in total, and ~24.3 h at -20 % jitter.
 */
import type { RetryPolicy } from '../../db/schema.js';

export type { RetryPolicy };

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  max_attempts: 40,
  initial_delay_ms: 5_000,
  max_delay_ms: 3_600_000,
  max_age_seconds: null,
});

export const RETRY_POLICY_LIMITS = Object.freeze({
  maxAttempts: { min: 1, max: 50 },
  initialDelayMs: { min: 100, max: 86_400_000 },
  maxDelayMs: { min: 100, max: 7 * 86_400_000 },
  // Up to 30 days: past RETENTION_DAYS' default a longer deadline would outlive the delivery anyway.
  maxAgeSeconds: { min: 1, max: 30 * 86_400 },
});

/** ±20 %: spreads retries of many deliveries that failed together (an outage) over time. */
export const JITTER = 0.2;

/** A Retry-After beyond this is clamped: a receiver cannot park a delivery for weeks. */
export const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * Delay before the attempt after `attempt` (1-based: the attempt that just failed).
 * Exponential from initial_delay_ms, doubling, capped by max_delay_ms; jitter is applied to the
 * capped value and the result clamped to max_delay_ms again, so max_delay_ms is a true maximum and
 * the low edge is 80 % of the schedule. A Retry-After (already in ms, from a 429/503) raises the
 * delay to at least that, clamped to MAX_RETRY_AFTER_MS: the receiver asked, and it may ask for
 * more than max_delay_ms.
 *
 * `random` is injectable so tests can pin the jitter to its edges; it must return [0, 1).
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 60)); // 2^60 already dwarfs any cap
  const scheduled = Math.min(policy.initial_delay_ms * 2 ** exponent, policy.max_delay_ms);
  const jittered = scheduled * (1 - JITTER + 2 * JITTER * random());
  let delay = Math.round(Math.min(jittered, policy.max_delay_ms));
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs > 0)
    delay = Math.max(delay, Math.min(Math.ceil(retryAfterMs), MAX_RETRY_AFTER_MS));
  return delay;
}

/**
 * The time (ms since the epoch) after which a delivery cycle that began at `cycleStartedAtMs` is not
 * attempted again: its start plus max_age_seconds. Null when the policy has no deadline.
 */
export function retryDeadlineMs(
  policy: Pick<RetryPolicy, 'max_age_seconds'>,
  cycleStartedAtMs: number,
): number | null {
  const age = policy.max_age_seconds;
  return typeof age === 'number' ? cycleStartedAtMs + age * 1000 : null;
}

/**
 * Parses a Retry-After header (delta-seconds or an HTTP-date) into milliseconds from `nowMs`.
 * Undefined when absent or unparseable; 0 for a date in the past.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // Only date-shaped text: Date.parse is lenient enough to read "5" or "1.5" as a year.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}

/** Total of all delays a policy allows (at a fixed jitter), i.e. how long it keeps retrying. */
export function retryWindowMs(policy: RetryPolicy, random: () => number = () => 0.5): number {
  let total = 0;
  for (let attempt = 1; attempt < policy.max_attempts; attempt++)
    total += retryDelayMs(policy, attempt, undefined, random);
  return total;
}
