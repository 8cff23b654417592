import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_RETRY_POLICY,
  JITTER,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  retryDelayMs,
  retryWindowMs,
  type RetryPolicy,
} from '../../src/delivery/retry-policy.js';

const low = () => 0;
const mid = () => 0.5;
const high = () => 0.999999999;
const HOUR = 3_600_000;

const policy: RetryPolicy = { max_attempts: 10, initial_delay_ms: 1000, max_delay_ms: 60_000 };

describe('retryDelayMs', () => {
  it('doubles from initial_delay_ms at the middle of the jitter', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelayMs(policy, a, undefined, mid))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000,
    ]);
  });

  it('is capped by max_delay_ms, also at the high edge of the jitter', () => {
    for (let attempt = 7; attempt <= 50; attempt++) {
      expect(retryDelayMs(policy, attempt, undefined, mid)).toBe(60_000);
      expect(retryDelayMs(policy, attempt, undefined, high)).toBe(60_000);
      expect(retryDelayMs(policy, attempt, undefined, low)).toBe(48_000);
    }
  });

  it('stays within ±20 % of the schedule', () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const scheduled = 1000 * 2 ** (attempt - 1);
      expect(retryDelayMs(policy, attempt, undefined, low)).toBe(Math.round(scheduled * (1 - JITTER)));
      expect(retryDelayMs(policy, attempt, undefined, high)).toBe(Math.round(scheduled * (1 + JITTER)));
    }
    for (let i = 0; i < 2000; i++) {
      const d = retryDelayMs(policy, 3, undefined);
      expect(d).toBeGreaterThanOrEqual(3200);
      expect(d).toBeLessThanOrEqual(4800);
    }
  });

  it('actually jitters', () => {
    const seen = new Set(Array.from({ length: 50 }, () => retryDelayMs(policy, 4)));
    expect(seen.size).toBeGreaterThan(10);
  });

  it('treats nonsense attempt numbers safely and never overflows', () => {
    expect(retryDelayMs(policy, 0, undefined, mid)).toBe(1000);
    expect(retryDelayMs(policy, -3, undefined, mid)).toBe(1000);
    expect(retryDelayMs(policy, 10_000, undefined, mid)).toBe(60_000);
    expect(Number.isFinite(retryDelayMs({ ...policy, max_delay_ms: 7 * 86_400_000 }, 2000))).toBe(true);
  });

  it('honours the smallest allowed policy (100 ms)', () => {
    const tiny: RetryPolicy = { max_attempts: 3, initial_delay_ms: 100, max_delay_ms: 100 };
    expect(retryDelayMs(tiny, 1, undefined, low)).toBe(80);
    expect(retryDelayMs(tiny, 5, undefined, high)).toBe(100);
  });

  it('waits at least Retry-After, even beyond max_delay_ms', () => {
    expect(retryDelayMs(policy, 1, 30_000, high)).toBe(30_000);
    expect(retryDelayMs(policy, 1, 120_000, high)).toBe(120_000);
    expect(retryDelayMs(policy, 1, 1500.2, low)).toBe(1501);
  });

  it('keeps the schedule when Retry-After asks for less', () => {
    expect(retryDelayMs(policy, 5, 10, mid)).toBe(16_000);
    expect(retryDelayMs(policy, 5, 0, mid)).toBe(16_000);
  });

  it('clamps Retry-After to 24 h and ignores garbage', () => {
    expect(retryDelayMs(policy, 1, 30 * 86_400_000, mid)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryDelayMs(policy, 1, Number.NaN, mid)).toBe(1000);
    expect(retryDelayMs(policy, 1, Number.POSITIVE_INFINITY, mid)).toBe(1000);
    expect(retryDelayMs(policy, 1, -5000, mid)).toBe(1000);
  });
});

describe('DEFAULT_RETRY_POLICY', () => {
  it('keeps retrying for at least 24 hours even at the low edge of the jitter', () => {
    expect(retryWindowMs(DEFAULT_RETRY_POLICY, low)).toBeGreaterThanOrEqual(24 * HOUR);
  });

  it('does not retry for absurdly long either (about 30 h at the middle, 31 h at most)', () => {
    expect(retryWindowMs(DEFAULT_RETRY_POLICY, mid)).toBeGreaterThan(30 * HOUR);
    expect(retryWindowMs(DEFAULT_RETRY_POLICY, high)).toBeLessThanOrEqual(31 * HOUR);
  });

  it('outlasts a one-hour outage by many attempts', () => {
    let elapsed = 0;
    let attempt = 1;
    while (elapsed < HOUR) elapsed += retryDelayMs(DEFAULT_RETRY_POLICY, attempt++, undefined, low);
    expect(attempt).toBeLessThan(DEFAULT_RETRY_POLICY.max_attempts - 20);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(DEFAULT_RETRY_POLICY)).toBe(true);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(['5', '9'], now)).toBe(5000);
  });

  it('reads an HTTP-date relative to now, and a past date as 0', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });

  it('clamps to 24 h', () => {
    expect(parseRetryAfter('999999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('ignores what it cannot read', () => {
    for (const bad of [undefined, '', '   ', '-5', '1.5', 'soon', 'tomorrow at noon', '5 seconds', []])
      expect(parseRetryAfter(bad as any, now)).toBeUndefined();
  });
});
