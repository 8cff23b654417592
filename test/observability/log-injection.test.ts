/**
 * Log injection: what producers, forwarded headers and receivers control never forges a log line.
 * Logs are JSON lines (winston's json format escapes control characters, quotes and line separators);
 * untrusted text appears only as a field value, never in a message; paths are logged as route patterns,
 * request ids only when well-formed, and a receiver's answer only as its status code.
 *
 * A real instance with its engine logs into a raw capture; every line must parse as one JSON object and
 * none may be the line the inputs try to inject.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import winston from 'winston';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const INJECTED = '{"level":"error","message":"injected","service":"postbox"}';
let raw = '';
const logger = winston.createLogger({
  level: 'info',
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  defaultMeta: { service: 'postbox' },
  transports: [
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, done) {
          raw += String(chunk);
          done();
        },
      }),
    }),
  ],
});

let app: TestApp;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp(
    { POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '50' },
    logger,
  );
});
afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

it('keeps every log line one JSON object whatever producers, proxies and receivers send', async () => {
  const tenant = await app.createTenant('log-injection');
  const key = tenant.apiKey;
  const hostile = `x\n${INJECTED}\r\n\u2028${INJECTED}`;

  // A path, a body field and a query string carrying a forged line; a forwarded-for and a request id too.
  await app.request('GET', `/webhooks/${encodeURIComponent(hostile)}`, { key });
  await app.request('POST', '/events', { key, body: { type: hostile, payload: { note: hostile } } });
  await app.request('GET', `/deliveries?status=${encodeURIComponent(hostile)}`, { key });
  await app.request('GET', '/webhooks', {
    key,
    headers: {
      'x-forwarded-for': `203.0.113.9", "level": "error", "message": "injected`,
      'x-request-id': INJECTED,
    },
  });

  // A receiver answering with a forged line in its body and a header: the attempt log keeps the status only.
  receiver.on('/hostile', { status: 500, body: `\n${INJECTED}\n`, headers: { 'x-note': INJECTED } });
  const hook = await app.request('POST', '/webhooks', {
    key,
    body: {
      url: receiver.url('/hostile'),
      description: hostile,
      retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
    },
  });
  expect(hook.status).toBe(201);
  const event = await app.request('POST', '/events', {
    key,
    body: { type: 'order.created', payload: { note: hostile } },
  });
  const deliveryId = event.body.delivery_ids[0];
  await waitFor(() => raw.includes('"delivery attempt"') && raw.includes(deliveryId), {
    what: 'the attempt log line',
  });

  const lines = raw.split('\n').filter((l) => l.length > 0);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(parsed.length).toBeGreaterThanOrEqual(6);
  for (const line of parsed) {
    expect(line.message).not.toBe('injected');
    expect(line.level).not.toBe('error');
  }
  // Untrusted text is absent, or present only inside a value.
  const requests = parsed.filter((l) => l.message === 'request');
  expect(requests.map((l) => l.route)).toContain('/webhooks/:id');
  expect(requests.some((l) => String(l.request_id).includes('injected'))).toBe(false);
  // The trusted hop's X-Forwarded-For is believed (docs/security.md): its last entry, as a plain value.
  const forwarded = requests.find((l) => String(l.client_ip).includes('injected'));
  expect(forwarded).toMatchObject({ message: 'request', level: 'info', client_ip: '"message": "injected' });
  const attempt = parsed.find((l) => l.message === 'delivery attempt' && l.delivery_id === deliveryId);
  expect(attempt).toMatchObject({ status_code: 500, error: 'HTTP 500' });
  expect(JSON.stringify(attempt)).not.toContain('injected');
});
