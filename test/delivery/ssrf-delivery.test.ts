/**
 * The connection-time SSRF filter inside the real engine: a webhook whose host now points at a
 * refused address (stored directly, as if its DNS changed after registration) gets failed attempts
 * with a clear error, and the receiver behind that address never sees a request.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { attemptRows, deliveryState, queueEvent } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  // No SSRF_ALLOW_CIDRS: loopback is refused.
  app = await startTestApp({ POSTBOX_ROLE: 'all', POLL_INTERVAL_MS: '50', SHUTDOWN_GRACE_MS: '500' });
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

async function deliverTo(url: string) {
  // A tenant per webhook: the event is queued for this webhook alone.
  const { id: tenantId } = await sqlTenant(app.db.pool);
  const hook = await sqlWebhook(app.db.pool, tenantId, {
    url,
    retryPolicy: { max_attempts: 2, initial_delay_ms: 100, max_delay_ms: 100 },
    timeoutMs: 2000,
  });
  const { deliveryIds } = await queueEvent(app.db.pool, tenantId, [hook.id]);
  const id = deliveryIds[0]!;
  const d = await waitFor(
    async () => {
      const s = await deliveryState(app.db.pool, id);
      return s.status === 'failed' ? s : undefined;
    },
    { what: `delivery ${id} failed` },
  );
  return { delivery: d, attempts: await attemptRows(app.db.pool, id) };
}

describe('a refused address at delivery time', () => {
  it('is a failed attempt naming the address, and the receiver gets nothing', async () => {
    const { delivery, attempts } = await deliverTo(receiver.url('/literal'));
    const message =
      'ERR_SSRF_BLOCKED: blocked by SSRF protection: 127.0.0.1 is a loopback address; it is not in SSRF_ALLOW_CIDRS';
    expect(attempts).toHaveLength(2);
    for (const a of attempts) expect(a).toMatchObject({ status_code: null, error: message });
    expect(delivery.last_error).toBe(message);
    expect(receiver.requests).toHaveLength(0);
  });

  it('names the host and the address it resolved to', async () => {
    const port = new URL(receiver.origin).port;
    const { attempts } = await deliverTo(`http://localhost:${port}/named`);
    expect(attempts[0]!.error).toMatch(
      /^ERR_SSRF_BLOCKED: blocked by SSRF protection: localhost \((127\.0\.0\.1|::1)\) is a loopback address/,
    );
    expect(receiver.requests).toHaveLength(0);
  });
});
