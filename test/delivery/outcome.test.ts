/** The pure parts between an HTTP answer and the next state: outcomeOf, the envelope, the excerpt. */
import { describe, expect, it } from '@jest/globals';
import { effectivePolicy, outcomeOf } from '../../src/delivery/outcome.js';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry-policy.js';
import { deliveryBody, excerptOf, type SendResult } from '../../src/delivery/sender.js';

const policy = { max_attempts: 3, initial_delay_ms: 1000, max_delay_ms: 60_000 };
const mid = () => 0.5;
const now = Date.parse('2025-01-01T00:00:00Z');

function sent(statusCode: number | null, over: Partial<SendResult> = {}): SendResult {
  return {
    startedAt: new Date(now),
    durationMs: 5,
    statusCode,
    error: statusCode !== null && statusCode < 300 ? null : 'HTTP ' + statusCode,
    responseExcerpt: '',
    retryAfter: undefined,
    aborted: false,
    requestSent: true,
    ...over,
  };
}

const delivery = (attempt: number, retryPolicy: any = policy) => ({ id: 'd1', attempt, retryPolicy });

describe('outcomeOf', () => {
  it('any 2xx succeeds, whatever the attempt', () => {
    for (const status of [200, 201, 202, 204, 299])
      expect(outcomeOf(delivery(3), sent(status), now, mid)).toMatchObject({
        outcome: 'succeeded',
        retryDelayMs: null,
      });
  });

  it('anything else retries with the policy delay until the last attempt', () => {
    for (const status of [100, 301, 302, 400, 404, 410, 500, 502, null]) {
      expect(outcomeOf(delivery(1), sent(status), now, mid)).toMatchObject({
        outcome: 'retry',
        retryDelayMs: 1000,
      });
      expect(outcomeOf(delivery(2), sent(status), now, mid)).toMatchObject({
        outcome: 'retry',
        retryDelayMs: 2000,
      });
      expect(outcomeOf(delivery(3), sent(status), now, mid)).toMatchObject({
        outcome: 'dead',
        retryDelayMs: null,
      });
    }
  });

  it('an attempt beyond max_attempts (a rescued lease) is dead too', () => {
    expect(outcomeOf(delivery(7), sent(500), now, mid).outcome).toBe('dead');
  });

  it('Retry-After counts on 429 and 503 only', () => {
    const ra = { retryAfter: '120' };
    expect(outcomeOf(delivery(1), sent(429, ra), now, mid).retryDelayMs).toBe(120_000);
    expect(outcomeOf(delivery(1), sent(503, ra), now, mid).retryDelayMs).toBe(120_000);
    expect(outcomeOf(delivery(1), sent(500, ra), now, mid).retryDelayMs).toBe(1000);
    expect(outcomeOf(delivery(1), sent(429, { retryAfter: 'garbage' }), now, mid).retryDelayMs).toBe(1000);
  });

  it('the last attempt is final even when the receiver asks to come back later', () => {
    expect(outcomeOf(delivery(3), sent(429, { retryAfter: '5' }), now, mid).outcome).toBe('dead');
  });

  it('carries the attempt facts through', () => {
    const r = outcomeOf(delivery(2), sent(500, { durationMs: 42, responseExcerpt: 'boom' }), now, mid);
    expect(r).toMatchObject({
      deliveryId: 'd1',
      attempt: 2,
      durationMs: 42,
      statusCode: 500,
      error: 'HTTP 500',
      responseExcerpt: 'boom',
    });
  });

  describe('the retry deadline (max_age_seconds)', () => {
    const withDeadline = { ...policy, max_attempts: 50, max_age_seconds: 10 };
    const started = (secondsAgo: number) => new Date(now - secondsAgo * 1000);
    const at = (attempt: number, secondsAgo: number) => ({
      ...delivery(attempt, withDeadline),
      cycleStartedAt: started(secondsAgo),
    });

    it('retries while the next attempt falls within it', () => {
      // 8.9 s into the cycle, the next attempt in 1 s: 9.9 s, inside 10 s.
      expect(outcomeOf(at(1, 8.9), sent(500), now, mid)).toMatchObject({
        outcome: 'retry',
        retryDelayMs: 1000,
      });
      // exactly on the deadline still counts as within it
      expect(outcomeOf(at(1, 9), sent(500), now, mid).outcome).toBe('retry');
    });

    it('gives up when the next attempt would fall past it, saying why in the delivery error', () => {
      const r = outcomeOf(at(1, 9.5), sent(500), now, mid);
      expect(r).toMatchObject({ outcome: 'dead', retryDelayMs: null, error: 'HTTP 500' });
      expect(r.deliveryError).toBe(
        'HTTP 500; gave up: the next attempt would fall past the retry deadline (retry_policy.max_age_seconds = 10)',
      );
    });

    it('a Retry-After past the deadline ends it too: the receiver cannot stretch it', () => {
      expect(outcomeOf(at(1, 0), sent(503, { retryAfter: '60' }), now, mid).outcome).toBe('dead');
      expect(outcomeOf(at(1, 0), sent(503, { retryAfter: '5' }), now, mid).outcome).toBe('retry');
    });

    it('an attempt cut short by shutdown is judged as due now', () => {
      expect(outcomeOf(at(1, 9.5), sent(null, { aborted: true }), now, mid).outcome).toBe('retry');
      expect(outcomeOf(at(1, 10.5), sent(null, { aborted: true }), now, mid).outcome).toBe('dead');
    });

    it('applies to neither a policy without it nor a delivery without a cycle start', () => {
      expect(outcomeOf({ ...at(1, 3600), retryPolicy: policy }, sent(500), now, mid).outcome).toBe('retry');
      expect(outcomeOf(delivery(1, withDeadline), sent(500), now, mid).outcome).toBe('retry');
    });

    it('max_attempts still ends a cycle first when it comes first', () => {
      expect(
        outcomeOf({ ...at(3, 0), retryPolicy: { ...withDeadline, max_attempts: 3 } }, sent(500), now, mid),
      ).toMatchObject({ outcome: 'dead' });
      expect(
        outcomeOf({ ...at(3, 0), retryPolicy: { ...withDeadline, max_attempts: 3 } }, sent(500), now, mid)
          .deliveryError,
      ).toBeUndefined();
    });
  });

  it('falls back to the default policy for fields a stored policy lacks', () => {
    expect(effectivePolicy(null)).toEqual(DEFAULT_RETRY_POLICY);
    expect(effectivePolicy({ max_attempts: 2 } as any)).toEqual({ ...DEFAULT_RETRY_POLICY, max_attempts: 2 });
    expect(effectivePolicy({ max_attempts: 'x', initial_delay_ms: -1, max_delay_ms: NaN } as any)).toEqual(
      DEFAULT_RETRY_POLICY,
    );
    expect(effectivePolicy({ max_age_seconds: 60 }).max_age_seconds).toBe(60);
    for (const broken of [0, -5, 'x', 1e12, null, undefined])
      expect(effectivePolicy({ max_age_seconds: broken } as any).max_age_seconds).toBeNull();
  });
});

describe('deliveryBody', () => {
  it('is exactly {"id","type","timestamp","data"} around the stored payload text', () => {
    const body = deliveryBody({
      eventId: 'e1',
      eventType: 'a."quoted"',
      occurredAt: new Date('2025-01-02T03:04:05.006Z'),
      payloadJson: '{"a": [1, {"b": null}]}',
    });
    expect(body).toBe(
      '{"id":"e1","type":"a.\\"quoted\\"","timestamp":"2025-01-02T03:04:05.006Z","data":{"a": [1, {"b": null}]}}',
    );
    expect(JSON.parse(body)).toEqual({
      id: 'e1',
      type: 'a."quoted"',
      timestamp: '2025-01-02T03:04:05.006Z',
      data: { a: [1, { b: null }] },
    });
  });
});

describe('excerptOf', () => {
  it('keeps the first 1 KiB', () => {
    expect(excerptOf([Buffer.from('x'.repeat(600)), Buffer.from('y'.repeat(600))])).toBe(
      'x'.repeat(600) + 'y'.repeat(424),
    );
    expect(excerptOf([])).toBe('');
  });

  it('never splits a character at the cap', () => {
    const text = excerptOf([Buffer.from('a' + 'é'.repeat(600))]); // 1 + 1200 bytes
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024);
    expect(text).toBe('a' + 'é'.repeat(511));
  });

  it('drops NUL and keeps invalid bytes within the cap', () => {
    const text = excerptOf([Buffer.alloc(2000, 0xff), Buffer.from([0])]);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024);
    expect(excerptOf([Buffer.from('a\u0000b')])).toBe('ab');
  });
});
