/**
 * Client certificate expiry: the gauge postbox_webhook_client_certificates_expiring counts webhooks
 * whose certificate expires within 14 days or has expired (no webhook label), and the
 * postbox-client-certificates job tells each tenant once per certificate and state
 * (postbox.endpoint.certificate_expiring / certificate_expired), stores the expiry of certificates
 * registered before it had a column, and starts over when a certificate is renewed. Certificates are
 * made with openssl; one that has since expired is written with SQL (registration refuses it).
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { checkClientCertificates } from '../../src/maintenance/client-certificates.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testSecretBox } from '../helpers/fixtures-sql.js';
import { sampleValue } from '../helpers/prom.js';
import { certificateAuthority, type CertificateAuthority } from '../helpers/tls.js';

let app: TestApp;
let pki: CertificateAuthority;
let tenant: { id: string; apiKey: string };
let ops: string;

beforeAll(async () => {
  pki = certificateAuthority('Client CA');
  app = await startTestApp();
  tenant = await app.createTenant('certificates');
  ops = await webhook('https://ops.example.com/postbox', { event_types: ['postbox.endpoint.*'] });
});
afterAll(async () => {
  await app?.close();
  pki?.remove();
});

async function webhook(url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await app.request('POST', '/webhooks', { key: tenant.apiKey, body: { url, ...extra } });
  if (res.status !== 201) throw new Error(`POST /webhooks: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

const withCertificate = (name: string, days: number) =>
  webhook(`https://${name}.example.com/hook`, {
    client_certificate: pki.issue(`postbox-${name}`, 'client', days),
  });

/** The gauge as a fresh registry reads it (no cache between calls). */
async function gauge(): Promise<{ expiring: number | undefined; expired: number | undefined }> {
  const metrics = createMetrics({
    pool: app.db.pool,
    defaultMetrics: false,
    clientCertMetrics: { ttlMs: 0 },
  });
  const text = await metrics.render();
  const name = 'postbox_webhook_client_certificates_expiring';
  return {
    expiring: sampleValue(text, name, { state: 'expiring' }),
    expired: sampleValue(text, name, { state: 'expired' }),
  };
}

/** The certificate notices stored so far: type, the webhook it is about, and who got it. */
async function notices() {
  const { rows } = await app.db.pool.query(
    `SELECT e.type, e.payload, array_agg(d.webhook_id) AS recipients
       FROM events e JOIN deliveries d ON d.event_id = e.id
      WHERE e.tenant_id = $1 AND e.type LIKE 'postbox.endpoint.certificate_%'
      GROUP BY e.id ORDER BY e.id`,
    [tenant.id],
  );
  return rows as { type: string; payload: Record<string, unknown>; recipients: string[] }[];
}

describe('client certificate expiry', () => {
  let soon: string;
  let legacy: string;
  let gone: string;

  it('counts expiring and expired certificates; the job stores missing expiries and tells the tenant once', async () => {
    await withCertificate('fine', 60);
    soon = await withCertificate('soon', 2);
    legacy = await withCertificate('legacy', 3);
    // Registered before the expiry had a column: the job reads it from the PEM.
    await app.db.pool.query('UPDATE webhooks SET client_cert_not_after = NULL WHERE id = $1', [legacy]);
    // A certificate that has since expired (the API refuses an expired one at registration).
    gone = await withCertificate('gone', 30);
    const expired = pki.issue('postbox-gone', 'client', -1);
    await app.db.pool.query(
      `UPDATE webhooks SET client_cert_pem = $2, client_key_ciphertext = $3, client_cert_not_after = $4
        WHERE id = $1`,
      [
        gone,
        expired.cert,
        testSecretBox.encrypt(expired.key),
        new Date(new X509Certificate(expired.cert).validTo),
      ],
    );
    // Deleted webhooks count for nothing.
    const deleted = await withCertificate('deleted', 2);
    expect((await app.request('DELETE', `/webhooks/${deleted}`, { key: tenant.apiKey })).status).toBe(204);

    expect(await gauge()).toEqual({ expiring: 1, expired: 1 }); // the legacy one has no expiry yet

    const first = await checkClientCertificates(app.db.pool);
    expect(first.filled).toBe(1);
    expect(first.notices.map((n) => [n.webhookId, n.notice]).sort()).toEqual(
      [
        [soon, 'expiring'],
        [legacy, 'expiring'],
        [gone, 'expired'],
      ].sort(),
    );
    expect(await gauge()).toEqual({ expiring: 2, expired: 1 });

    const stored = await notices();
    expect(stored).toHaveLength(3);
    for (const n of stored) expect(n.recipients).toEqual([ops]); // never the webhook it is about
    const about = (id: string) => stored.find((n) => n.payload.webhook_id === id)!;
    expect(about(soon)).toMatchObject({
      type: 'postbox.endpoint.certificate_expiring',
      payload: { url: 'https://soon.example.com/hook', expired: false, not_after: expect.any(String) },
    });
    expect(about(gone)).toMatchObject({
      type: 'postbox.endpoint.certificate_expired',
      payload: { url: 'https://gone.example.com/hook', expired: true },
    });
    const notAfter = new Date(String(about(legacy).payload.not_after)).getTime();
    const read = await app.request('GET', `/webhooks/${legacy}`, { key: tenant.apiKey });
    expect(notAfter).toBe(Date.parse(read.body.client_certificate.not_after));

    // Once per certificate and state: the next runs (two processes at once) send nothing more.
    const again = await Promise.all([
      checkClientCertificates(app.db.pool),
      checkClientCertificates(app.db.pool),
    ]);
    expect(again.flatMap((r) => r.notices)).toEqual([]);
    expect(await notices()).toHaveLength(3);
  });

  it('a renewed certificate leaves the count and gets notices of its own when its time comes', async () => {
    const renew = (id: string, days: number) =>
      app.request('PATCH', `/webhooks/${id}`, {
        key: tenant.apiKey,
        body: { client_certificate: pki.issue('postbox-renewed', 'client', days) },
      });
    expect((await renew(soon, 90)).status).toBe(200);
    expect(await gauge()).toEqual({ expiring: 1, expired: 1 });
    expect((await checkClientCertificates(app.db.pool)).notices).toEqual([]);

    // Renewed with one that also expires soon: that certificate is told about too.
    expect((await renew(gone, 5)).status).toBe(200);
    expect(await gauge()).toEqual({ expiring: 2, expired: 0 });
    const next = await checkClientCertificates(app.db.pool);
    expect(next.notices).toEqual([
      expect.objectContaining({ webhookId: gone, notice: 'expiring', eventId: expect.any(String) }),
    ]);

    // Removing a certificate removes it from the count.
    const removed = await app.request('PATCH', `/webhooks/${legacy}`, {
      key: tenant.apiKey,
      body: { client_certificate: null },
    });
    expect(removed.status).toBe(200);
    expect(await gauge()).toEqual({ expiring: 1, expired: 0 });
  });
});
