/**
 * Turns what an attempt produced into the delivery's next state: succeeded (a 2xx), retry (with its
 * delay), or dead (the last allowed attempt failed: status failed plus a DLQ row). Pure.
 */
import type { AttemptResult } from '../queries/deliveries.js';
import type { SendResult } from './sender.js';
import { DEFAULT_RETRY_POLICY, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry-policy.js';

/** Statuses whose Retry-After pushes the next attempt back (contract section 4). */
const RETRY_AFTER_STATUSES = new Set([429, 503]);

/** A stored policy with a missing or broken field falls back to the default's value for it. */
export function effectivePolicy(p: Partial<RetryPolicy> | null | undefined): RetryPolicy {
  const pick = (k: keyof RetryPolicy) => {
    const v = p?.[k];
    return typeof v === 'number' && Number.isFinite(v) && v >= 1 ? v : DEFAULT_RETRY_POLICY[k];
  };
  return {
    max_attempts: pick('max_attempts'),
    initial_delay_ms: pick('initial_delay_ms'),
    max_delay_ms: pick('max_delay_ms'),
  };
}

export function outcomeOf(
  delivery: { id: string; attempt: number; retryPolicy: Partial<RetryPolicy> | null },
  sent: SendResult,
  nowMs: number = Date.now(),
  random?: () => number,
): AttemptResult {
  const base = {
    deliveryId: delivery.id,
    attempt: delivery.attempt,
    startedAt: sent.startedAt,
    durationMs: sent.durationMs,
    statusCode: sent.statusCode,
    error: sent.error,
    responseExcerpt: sent.responseExcerpt,
  };
  const ok = sent.statusCode !== null && sent.statusCode >= 200 && sent.statusCode < 300;
  if (ok) return { ...base, outcome: 'succeeded', retryDelayMs: null };
  const policy = effectivePolicy(delivery.retryPolicy);
  if (delivery.attempt >= policy.max_attempts) return { ...base, outcome: 'dead', retryDelayMs: null };
  const retryAfterMs =
    sent.statusCode !== null && RETRY_AFTER_STATUSES.has(sent.statusCode)
      ? parseRetryAfter(sent.retryAfter, nowMs)
      : undefined;
  return {
    ...base,
    outcome: 'retry',
    retryDelayMs: retryDelayMs(policy, delivery.attempt, retryAfterMs, random),
  };
}
