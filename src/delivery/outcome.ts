/**
 * Turns what an attempt produced into the delivery's next state: succeeded (a 2xx), retry (with its
 * delay), or dead (status failed plus a DLQ row): the last allowed attempt failed, or the next one
 * would fall past the retry deadline (retry_policy.max_age_seconds after the cycle began). Pure.
 */
import type { AttemptResult } from '../queries/deliveries.js';
import type { SendResult } from './sender.js';
import {
  DEFAULT_RETRY_POLICY,
  RETRY_POLICY_LIMITS,
  parseRetryAfter,
  retryDeadlineMs,
  retryDelayMs,
  type RetryPolicy,
} from './retry-policy.js';

/** Statuses whose Retry-After pushes the next attempt back (contract section 4). */
const RETRY_AFTER_STATUSES = new Set([429, 503]);

type NumericField = 'max_attempts' | 'initial_delay_ms' | 'max_delay_ms';

/**
 * A stored policy with a missing or broken field falls back to the default's value for it; a missing
 * or broken max_age_seconds means no deadline (policies stored before it existed have none).
 */
export function effectivePolicy(p: Partial<RetryPolicy> | null | undefined): RetryPolicy {
  const pick = (k: NumericField) => {
    const v = p?.[k];
    return typeof v === 'number' && Number.isFinite(v) && v >= 1 ? v : DEFAULT_RETRY_POLICY[k];
  };
  const age = p?.max_age_seconds;
  const { min, max } = RETRY_POLICY_LIMITS.maxAgeSeconds;
  return {
    max_attempts: pick('max_attempts'),
    initial_delay_ms: pick('initial_delay_ms'),
    max_delay_ms: pick('max_delay_ms'),
    max_age_seconds: typeof age === 'number' && Number.isFinite(age) && age >= min && age <= max ? age : null,
  };
}

/** The delivery's last_error when the deadline ends it: the attempt's error, then why it stops there. */
export function deadlineError(attemptError: string | null, maxAgeSeconds: number): string {
  const reason = `gave up: the next attempt would fall past the retry deadline (retry_policy.max_age_seconds = ${maxAgeSeconds})`;
  return attemptError ? `${attemptError}; ${reason}` : reason;
}

export function outcomeOf(
  delivery: {
    id: string;
    attempt: number;
    retryPolicy: Partial<RetryPolicy> | null;
    /** Start of the delivery cycle, for the deadline (absent: no deadline applies). */
    cycleStartedAt?: Date;
  },
  sent: SendResult,
  nowMs: number = Date.now(),
  random?: () => number,
): AttemptResult {
  // One object per attempt, its outcome filled in below (no spread copies: this runs for every attempt).
  const result: AttemptResult = {
    deliveryId: delivery.id,
    attempt: delivery.attempt,
    startedAt: sent.startedAt,
    durationMs: sent.durationMs,
    statusCode: sent.statusCode,
    error: sent.error,
    responseExcerpt: sent.responseExcerpt,
    outcome: 'succeeded',
    retryDelayMs: null,
  };
  const ok = sent.statusCode !== null && sent.statusCode >= 200 && sent.statusCode < 300;
  if (ok) return result;
  const policy = effectivePolicy(delivery.retryPolicy);
  if (delivery.attempt >= policy.max_attempts) {
    result.outcome = 'dead';
    return result;
  }
  const retryAfterMs =
    sent.statusCode !== null && RETRY_AFTER_STATUSES.has(sent.statusCode)
      ? parseRetryAfter(sent.retryAfter, nowMs)
      : undefined;
  const delay = retryDelayMs(policy, delivery.attempt, retryAfterMs, random);
  const deadline = delivery.cycleStartedAt
    ? retryDeadlineMs(policy, delivery.cycleStartedAt.getTime())
    : null;
  // Also when a Retry-After asks for a time past it: the receiver cannot stretch the deadline. An
  // attempt cut short by our shutdown is due again at once (the executor's choice), so judged at now.
  if (deadline !== null && nowMs + (sent.aborted ? 0 : delay) > deadline) {
    result.outcome = 'dead';
    result.deliveryError = deadlineError(sent.error, policy.max_age_seconds!);
    return result;
  }
  result.outcome = 'retry';
  result.retryDelayMs = delay;
  return result;
}
