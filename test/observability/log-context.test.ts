/**
 * Ids on log lines: the request log of a real instance carries request_id (and trace_id when a valid
 * traceparent came), and the child-logger helper puts delivery/event/webhook/tenant/trace ids on
 * every line.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import type { Logger } from '../../src/logger.js';
import {
  childLogger,
  deliveryLogFields,
  logFields,
  traceFields,
} from '../../src/observability/log-context.js';
import { ADMIN_KEY, startTestApp, type TestApp } from '../helpers/app.js';
import { queueEvent } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { startReceiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** A winston logger in the production format whose JSON lines land in `lines`. */
function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = winston.createLogger({
    level: 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { service: 'postbox' },
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}

describe('logFields and childLogger', () => {
  it('keeps the ids given, leaves out absent ones, and splits a valid traceparent', () => {
    expect(
      logFields({
        delivery_id: 'd1',
        event_id: undefined,
        webhook_id: null,
        tenant_id: 't1',
        traceparent: TRACEPARENT,
      }),
    ).toEqual({
      delivery_id: 'd1',
      tenant_id: 't1',
      traceparent: TRACEPARENT,
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      span_id: '00f067aa0ba902b7',
    });
  });

  it('leaves out a traceparent that is not valid rather than logging what a client sent', () => {
    expect(traceFields('00-not-a-trace\n{"injected":true}')).toEqual({});
    expect(traceFields('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toEqual({});
    expect(traceFields(['a', 'b'])).toEqual({});
    expect(logFields({ request_id: 'r', traceparent: 'garbage' })).toEqual({ request_id: 'r' });
  });

  it('deliveryLogFields names a claimed delivery by its ids', () => {
    expect(
      deliveryLogFields({ id: 'd', eventId: 'e', webhookId: 'w', tenantId: 't', traceparent: null }),
    ).toEqual({ delivery_id: 'd', event_id: 'e', webhook_id: 'w', tenant_id: 't' });
  });

  it('a child logger puts the ids on every line', () => {
    const { logger, lines } = captureLogger();
    const child = childLogger(logger, { delivery_id: 'd9', webhook_id: 'w9', traceparent: TRACEPARENT });
    child.info('delivery attempt', { attempt: 2 });
    child.warn('something else');
    expect(lines).toHaveLength(2);
    for (const line of lines)
      expect(line).toMatchObject({
        delivery_id: 'd9',
        webhook_id: 'w9',
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      });
    expect(lines[0]).toMatchObject({ message: 'delivery attempt', attempt: 2 });
  });
});

describe('the request log of a real instance', () => {
  let app: TestApp;
  let lines: Record<string, unknown>[];

  beforeAll(async () => {
    const capture = captureLogger();
    lines = capture.lines;
    app = await startTestApp({}, capture.logger);
  });
  afterAll(async () => {
    await app.close();
  });

  const requestLines = () => lines.filter((l) => l.message === 'request');

  it('carries the request id it answered with, the route pattern and no path ids', async () => {
    const res = await fetch(`${app.baseUrl}/tenants/0190b6a4-3f1e-7c3a-9d2e-000000000000`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(res.status).toBe(404);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const line = requestLines().find((l) => l.request_id === requestId);
    expect(line).toMatchObject({ route: '/tenants/:id', method: 'GET', status: 404 });
    expect(JSON.stringify(line)).not.toContain('0190b6a4-3f1e-7c3a-9d2e-000000000000');
    expect(line).not.toHaveProperty('trace_id');
  });

  it('keeps a well-formed X-Request-Id from the caller and adds trace_id from a valid traceparent', async () => {
    const res = await fetch(`${app.baseUrl}/health`, {
      headers: { 'x-request-id': 'caller-chosen.id:1', traceparent: TRACEPARENT },
    });
    expect(res.headers.get('x-request-id')).toBe('caller-chosen.id:1');
    expect(requestLines().find((l) => l.request_id === 'caller-chosen.id:1')).toMatchObject({
      route: '/health',
      status: 200,
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
  });

  it('replaces a malformed X-Request-Id instead of logging it', async () => {
    const res = await fetch(`${app.baseUrl}/health`, { headers: { 'x-request-id': 'bad id with spaces' } });
    const requestId = res.headers.get('x-request-id')!;
    expect(requestId).not.toBe('bad id with spaces');
    expect(requestLines().find((l) => l.request_id === requestId)).toBeDefined();
    expect(JSON.stringify(lines)).not.toContain('bad id with spaces');
  });
});

describe('the delivery attempt log of a real engine', () => {
  it('names the delivery, event, webhook and tenant, and the trace the event carried', async () => {
    const receiver = await startReceiver();
    const { logger, lines } = captureLogger();
    const app = await startTestApp(
      { POSTBOX_ROLE: 'worker', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '50' },
      logger,
    );
    const db = app.db.pool;
    try {
      const tenant = await sqlTenant(db);
      const hook = await sqlWebhook(db, tenant.id, { url: receiver.url('/traced') });
      const queued = await queueEvent(db, tenant.id, [hook.id], { traceparent: TRACEPARENT });
      const line = await waitFor(() => lines.find((l) => l.message === 'delivery attempt'), {
        what: 'the attempt log line',
      });
      expect(line).toMatchObject({
        delivery_id: queued.deliveryIds[0],
        event_id: queued.eventId,
        webhook_id: hook.id,
        tenant_id: tenant.id,
        traceparent: TRACEPARENT,
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
        attempt: 1,
        outcome: 'succeeded',
      });
      expect(JSON.stringify(line)).not.toContain(hook.secret);
    } finally {
      await app.close();
      await receiver.close();
    }
  });
});
