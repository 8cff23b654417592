/**
 * End to end through a real engine: what a receiver gets (contract section 4), retries, the DLQ,
 * Retry-After, timeouts, redirects and oversized answers. Events are queued through the ingest path.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import type { RetryPolicy } from '../../src/delivery/retry-policy.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { attemptRows, deliveryState, queueEvent, rotateSecretSql } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { metricClaimRounds } from '../helpers/claim-rounds.js';
import { waitFor } from '../helpers/wait.js';

const fast: RetryPolicy = { max_attempts: 3, initial_delay_ms: 100, max_delay_ms: 200 };

let app: TestApp;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({
    POSTBOX_ROLE: 'all',
    SSRF_ALLOW_CIDRS: '127.0.0.0/8',
    POLL_INTERVAL_MS: '50',
    LEASE_SECONDS: '5',
    SHUTDOWN_GRACE_MS: '500',
  });
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

const db = () => app.db.pool;

/** A webhook in a tenant of its own: events queued for it match no other test's webhooks. */
async function webhook(path: string, extra: Parameters<typeof sqlWebhook>[2] = {}) {
  const { id: tenantId } = await sqlTenant(db());
  const hook = await sqlWebhook(db(), tenantId, {
    url: receiver.url(path),
    retryPolicy: fast,
    timeoutMs: 2000,
    ...extra,
  });
  return { ...hook, tenantId };
}

function settled(id: string, status: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const d = await deliveryState(db(), id);
      return d.status === status ? d : undefined;
    },
    { timeoutMs, what: `delivery ${id} ${status}` },
  );
}

describe('what a receiver gets', () => {
  it('a signed envelope that the standardwebhooks library verifies', async () => {
    const hook = await webhook('/signed');
    const occurredAt = new Date('2025-03-04T05:06:07.089Z');
    const payload = { order: 42, items: [{ sku: 'a', qty: 2 }], note: 'ünïcode "quoted"' };
    const { eventId, deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id], {
      type: 'order.created',
      payload,
      occurredAt,
    });
    const [req] = await receiver.waitForRequests(1, '/signed');

    expect(req!.method).toBe('POST');
    expect(JSON.parse(req!.body)).toEqual({
      id: eventId,
      type: 'order.created',
      timestamp: '2025-03-04T05:06:07.089Z',
      data: payload,
    });
    expect(Object.keys(JSON.parse(req!.body))).toEqual(['id', 'type', 'timestamp', 'data']);
    expect(() =>
      new Webhook(hook.secret).verify(req!.body, req!.headers as Record<string, string>),
    ).not.toThrow();

    const d = await settled(deliveryIds[0]!, 'succeeded');
    expect(d).toMatchObject({
      attempts: 1,
      last_status_code: 200,
      lease_owner: null,
      lease_expires_at: null,
    });
    expect(d.completed_at).toBeInstanceOf(Date);
    const attempts = await attemptRows(db(), deliveryIds[0]!);
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, status_code: 200, error: null })]);
  });

  it('every header of contract section 4, and nothing unexpected', async () => {
    const hook = await webhook('/headers');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id], {
      type: 'invoice.paid',
      traceparent,
    });
    const [req] = await receiver.waitForRequests(1, '/headers');
    const h = req!.headers;
    const now = Math.floor(Date.now() / 1000);

    expect(h['content-type']).toBe('application/json');
    expect(h['webhook-id']).toBe(deliveryIds[0]);
    expect(Number(h['webhook-timestamp'])).toBeGreaterThan(now - 10);
    expect(Number(h['webhook-timestamp'])).toBeLessThanOrEqual(now);
    expect(h['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+={0,2}$/);
    const key = Buffer.from(hook.secret.slice('whsec_'.length), 'base64');
    const mac = createHmac('sha256', key).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${req!.body}`);
    const digest = mac.digest();
    expect(h['webhook-signature']).toBe(`v1,${digest.toString('base64')}`);
    expect(h['x-webhook-signature']).toBe(`sha256=${digest.toString('hex')}`);
    expect(h['x-webhook-event']).toBe('invoice.paid');
    expect(h['x-webhook-attempt']).toBe('1');
    expect(h['user-agent']).toBe('Postbox/0.1.0');
    expect(h.traceparent).toBe(traceparent);
    const expected = [
      'content-type',
      'webhook-id',
      'webhook-timestamp',
      'webhook-signature',
      'x-webhook-signature',
      'x-webhook-event',
      'x-webhook-attempt',
      'user-agent',
      'traceparent',
      // transport
      'host',
      'content-length',
      'connection',
    ];
    expect(Object.keys(h).sort()).toEqual(expected.sort());
  });

  it('no traceparent when the event carried none', async () => {
    const hook = await webhook('/no-trace');
    await queueEvent(db(), hook.tenantId, [hook.id]);
    const [req] = await receiver.waitForRequests(1, '/no-trace');
    expect(req!.headers.traceparent).toBeUndefined();
  });

  it('a plain (non-whsec) secret signs with its UTF-8 bytes', async () => {
    const secret = 'plain-secret-with-ünïcode-123';
    const hook = await webhook('/plain', { secret });
    await queueEvent(db(), hook.tenantId, [hook.id]);
    const [req] = await receiver.waitForRequests(1, '/plain');
    const wh = new Webhook(new Uint8Array(Buffer.from(secret, 'utf8')), { format: 'raw' });
    expect(() => wh.verify(req!.body, req!.headers as Record<string, string>)).not.toThrow();
  });

  it('during a secret rotation: one v1 signature per secret, X-Webhook-Signature with the newest', async () => {
    const oldSecret = 'whsec_' + Buffer.alloc(32, 1).toString('base64');
    const newSecret = 'whsec_' + Buffer.alloc(32, 2).toString('base64');
    const hook = await webhook('/rotating');
    await rotateSecretSql(db(), hook.id, newSecret, oldSecret, new Date(Date.now() + 3_600_000));
    await queueEvent(db(), hook.tenantId, [hook.id]);
    const [req] = await receiver.waitForRequests(1, '/rotating');
    const headers = req!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(() => new Webhook(newSecret).verify(req!.body, headers)).not.toThrow();
    expect(() => new Webhook(oldSecret).verify(req!.body, headers)).not.toThrow();
    const newKey = Buffer.alloc(32, 2);
    const content = `${headers['webhook-id']}.${headers['webhook-timestamp']}.${req!.body}`;
    expect(headers['x-webhook-signature']).toBe(
      'sha256=' + createHmac('sha256', newKey).update(content).digest('hex'),
    );
  });

  it('after the overlap, only the new secret signs', async () => {
    const oldSecret = 'whsec_' + Buffer.alloc(32, 3).toString('base64');
    const newSecret = 'whsec_' + Buffer.alloc(32, 4).toString('base64');
    const hook = await webhook('/rotated');
    await rotateSecretSql(db(), hook.id, newSecret, oldSecret, new Date(Date.now() - 1000));
    await queueEvent(db(), hook.tenantId, [hook.id]);
    const [req] = await receiver.waitForRequests(1, '/rotated');
    const headers = req!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(() => new Webhook(newSecret).verify(req!.body, headers)).not.toThrow();
    expect(() => new Webhook(oldSecret).verify(req!.body, headers)).toThrow();
  });
});

describe('retries and the dead letter queue', () => {
  it('a flaky receiver succeeds on a later attempt; every attempt is recorded', async () => {
    receiver.on('/flaky', (_req, n) => (n < 2 ? { status: 500, body: `fail ${n}` } : { status: 204 }));
    const hook = await webhook('/flaky', { retryPolicy: { ...fast, max_attempts: 5 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'succeeded');
    expect(d.attempts).toBe(3);
    const reqs = receiver.requestsTo('/flaky');
    expect(reqs.map((r) => r.headers['x-webhook-attempt'])).toEqual(['1', '2', '3']);
    expect(new Set(reqs.map((r) => r.headers['webhook-id']))).toEqual(new Set([deliveryIds[0]]));
    // Retries wait: at least the low edge of the jitter (80 ms) between attempts.
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(70);
    const attempts = await attemptRows(db(), deliveryIds[0]!);
    expect(attempts.map((a) => [a.attempt, a.status_code, a.error, a.response_excerpt])).toEqual([
      [1, 500, 'HTTP 500', 'fail 0'],
      [2, 500, 'HTTP 500', 'fail 1'],
      [3, 204, null, ''],
    ]);
    expect(d.last_status_code).toBe(204);
  });

  it('an always-failing receiver ends in the DLQ after exactly max_attempts', async () => {
    receiver.on('/down', { status: 500, body: 'down' });
    const hook = await webhook('/down');
    const { eventId, deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id], {
      type: 'user.deleted',
    });
    const d = await settled(deliveryIds[0]!, 'failed');
    expect(d).toMatchObject({
      attempts: 3,
      last_status_code: 500,
      last_error: 'HTTP 500',
      lease_owner: null,
    });
    expect(d.completed_at).toBeInstanceOf(Date);
    const { rows } = await db().query('SELECT * FROM dead_letter_queue WHERE delivery_id = $1', [
      deliveryIds[0],
    ]);
    expect(rows).toEqual([
      expect.objectContaining({
        tenant_id: hook.tenantId,
        webhook_id: hook.id,
        event_id: eventId,
        event_type: 'user.deleted',
        last_error: 'HTTP 500',
        attempts: 3,
      }),
    ]);
    expect(await attemptRows(db(), deliveryIds[0]!)).toHaveLength(3);
    // Nothing more is sent: the engine's next polls find nothing to claim.
    expect(await metricClaimRounds(app.postbox.metrics).claimedInNext(3)).toBe(0);
    expect(receiver.requestsTo('/down')).toHaveLength(3);
  });

  it('max_attempts 1: the first failure is final', async () => {
    receiver.on('/once', { status: 400 });
    const hook = await webhook('/once', { retryPolicy: { ...fast, max_attempts: 1 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    await settled(deliveryIds[0]!, 'failed');
    expect(receiver.requestsTo('/once')).toHaveLength(1);
  });

  it('429 with Retry-After (seconds) pushes the next attempt to at least that', async () => {
    receiver.on('/busy', { status: 429, headers: { 'retry-after': '30' } });
    const hook = await webhook('/busy');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await waitFor(async () => {
      const s = await deliveryState(db(), deliveryIds[0]!);
      return s.status === 'pending' && s.attempts === 1 ? s : undefined;
    });
    const [attempt] = await attemptRows(db(), deliveryIds[0]!);
    expect(attempt!.status_code).toBe(429);
    expect(d.next_attempt_at.getTime() - attempt!.started_at.getTime()).toBeGreaterThanOrEqual(30_000);
    expect(d.next_attempt_at.getTime() - Date.now()).toBeLessThanOrEqual(31_000);
  });

  it('503 with Retry-After as an HTTP-date is honoured too', async () => {
    const at = new Date(Date.now() + 60_000);
    receiver.on('/maintenance', { status: 503, headers: { 'retry-after': at.toUTCString() } });
    const hook = await webhook('/maintenance');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await waitFor(async () => {
      const s = await deliveryState(db(), deliveryIds[0]!);
      return s.status === 'pending' && s.attempts === 1 ? s : undefined;
    });
    // The header has whole seconds: allow for the truncated fraction.
    expect(d.next_attempt_at.getTime()).toBeGreaterThanOrEqual(at.getTime() - 1000);
  });

  it('Retry-After on a 500 is not a reason to wait', async () => {
    receiver.on('/err-ra', (_req, n) => (n === 0 ? { status: 500, headers: { 'retry-after': '3600' } } : {}));
    const hook = await webhook('/err-ra');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    await settled(deliveryIds[0]!, 'succeeded');
  });
});

describe('failed attempts', () => {
  it('a receiver slower than timeout_ms is a failed attempt with an error', async () => {
    receiver.on('/slow', { delayMs: 3000 });
    const hook = await webhook('/slow', { timeoutMs: 1000, retryPolicy: { ...fast, max_attempts: 1 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'failed');
    expect(d.last_error).toBe('timeout after 1000 ms');
    const [attempt] = await attemptRows(db(), deliveryIds[0]!);
    expect(attempt).toMatchObject({
      status_code: null,
      error: 'timeout after 1000 ms',
      response_excerpt: null,
    });
    expect(attempt!.duration_ms).toBeGreaterThanOrEqual(950);
    expect(attempt!.duration_ms).toBeLessThan(2500);
  });

  it('a redirect is not followed: the 302 is a failed attempt and the target is never hit', async () => {
    receiver.on('/moved', { redirectTo: receiver.url('/target') });
    const hook = await webhook('/moved', { retryPolicy: { ...fast, max_attempts: 1 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'failed');
    expect(d.last_status_code).toBe(302);
    expect(d.last_error).toMatch(/302.*redirects are not followed/);
    expect(receiver.requestsTo('/target')).toHaveLength(0);
  });

  it('a refused connection is a failed attempt that names the cause', async () => {
    const closed = await startReceiver();
    const url = closed.url('/gone');
    await closed.close();
    const hook = await webhook('/gone', { url, retryPolicy: { ...fast, max_attempts: 1 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'failed');
    expect(d.last_error).toMatch(/ECONNREFUSED/);
    expect(d.last_status_code).toBeNull();
  });

  it('a dropped connection is a failed attempt', async () => {
    receiver.on('/drop', { drop: true });
    const hook = await webhook('/drop', { retryPolicy: { ...fast, max_attempts: 1 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'failed');
    expect(d.last_error).toMatch(/socket hang up|ECONNRESET/);
  });

  it('an address outside SSRF_ALLOW_CIDRS is refused at connection time', async () => {
    const hook = await webhook('/private', {
      url: 'http://10.255.255.1:9/hook',
      retryPolicy: { ...fast, max_attempts: 1 },
    });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'failed');
    expect(d.last_error).toMatch(/SSRF/);
  });
});

describe('answers are read only up to 1 KiB', () => {
  it('a large answer: success on the status, excerpt capped', async () => {
    receiver.on('/big', { bodyBytes: 5 * 1024 * 1024 });
    const hook = await webhook('/big');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    await settled(deliveryIds[0]!, 'succeeded');
    const [attempt] = await attemptRows(db(), deliveryIds[0]!);
    expect(attempt!.response_excerpt).toBe('x'.repeat(1024));
  });

  it('an endless answer does not hang or fill memory: cut off at the cap', async () => {
    receiver.on('/endless', { endless: true, status: 500 });
    const before = receiver.bytesSent;
    const hook = await webhook('/endless', { timeoutMs: 10_000, retryPolicy: { ...fast, max_attempts: 1 } });
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    const d = await settled(deliveryIds[0]!, 'failed', 5000);
    const [attempt] = await attemptRows(db(), deliveryIds[0]!);
    expect(attempt!.status_code).toBe(500);
    expect(Buffer.byteLength(attempt!.response_excerpt!)).toBe(1024);
    expect(attempt!.duration_ms).toBeLessThan(5000);
    expect(d.last_error).toBe('HTTP 500');
    // The connection was dropped: the receiver's endless answer is closed, having sent little.
    await waitFor(() => receiver.openAnswers('/endless') === 0, { what: 'the endless answer to be cut off' });
    expect(receiver.bytesSent - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('binary garbage and NUL bytes become valid text of at most 1 KiB', async () => {
    receiver.on('/binary', { body: '\u0000\uFFFF'.repeat(2000) });
    const hook = await webhook('/binary');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    await settled(deliveryIds[0]!, 'succeeded');
    const [attempt] = await attemptRows(db(), deliveryIds[0]!);
    expect(attempt!.response_excerpt).not.toContain('\u0000');
    expect(Buffer.byteLength(attempt!.response_excerpt!)).toBeLessThanOrEqual(1024);
  });
});

describe('through the API (POST /webhooks, POST /events)', () => {
  it('an ingested event reaches the receiver signed with the secret the API returned', async () => {
    const tenant = await app.createTenant('api-e2e');
    const created = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url('/api-e2e'), event_types: ['order.*'], retry_policy: fast, timeout_ms: 2000 },
    });
    expect(created.status).toBe(201);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const ingested = await app.request('POST', '/events', {
      key: tenant.apiKey,
      headers: { traceparent },
      body: { type: 'order.shipped', payload: { order: 7 } },
    });
    expect(ingested.status).toBe(202);
    const [deliveryId] = ingested.body.delivery_ids;

    const [req] = await receiver.waitForRequests(1, '/api-e2e');
    const headers = req!.headers as Record<string, string>;
    expect(() => new Webhook(created.body.secret).verify(req!.body, headers)).not.toThrow();
    expect(headers['webhook-id']).toBe(deliveryId);
    expect(headers.traceparent).toBe(traceparent);
    expect(JSON.parse(req!.body)).toMatchObject({
      id: ingested.body.event_id,
      type: 'order.shipped',
      data: { order: 7 },
    });

    const shown = await waitFor(async () => {
      const res = await app.request('GET', `/deliveries/${deliveryId}`, { key: tenant.apiKey });
      return res.body.status === 'succeeded' ? res.body : undefined;
    });
    expect(shown.attempts).toEqual([expect.objectContaining({ attempt: 1, status_code: 200 })]);
  });

  it('after POST /webhooks/:id/rotate-secret both secrets verify during the overlap', async () => {
    const tenant = await app.createTenant('api-rotate');
    const created = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url('/api-rotate'), retry_policy: fast },
    });
    const rotated = await app.request('POST', `/webhooks/${created.body.id}/rotate-secret`, {
      key: tenant.apiKey,
      body: { overlap_seconds: 3600 },
    });
    expect(rotated.status).toBe(200);
    await app.request('POST', '/events', { key: tenant.apiKey, body: { type: 'x.y', payload: {} } });
    const [req] = await receiver.waitForRequests(1, '/api-rotate');
    const headers = req!.headers as Record<string, string>;
    expect(() => new Webhook(rotated.body.secret).verify(req!.body, headers)).not.toThrow();
    expect(() => new Webhook(created.body.secret).verify(req!.body, headers)).not.toThrow();
  });
});
