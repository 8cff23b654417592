/**
 * Retry policy: exponential backoff with jitter, capped by max_delay_ms.
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
});

export const RETRY_POLICY_LIMITS = Object.freeze({
  maxAttempts: { min: 1, max: 50 },
  initialDelayMs: { min: 100, max: 86_400_000 },
  maxDelayMs: { min: 100, max: 7 * 86_400_000 },
});
