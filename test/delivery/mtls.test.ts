/**
 * mTLS client certificates per webhook, against a real HTTPS receiver on 127.0.0.1 that requires a
 * client certificate from its CA (certificates made with the openssl CLI): registration checks the
 * certificate and keeps its key sealed and out of every answer and audit row; the engine presents each
 * webhook's own certificate (keep-alive sockets are never shared between identities); a webhook without
 * one, or with one from another CA, is refused by the receiver; and the SSRF agent still refuses a
 * private address with a certificate configured. A test send presents the certificate too.
 *
 * The engine trusts the receiver's CA through the agent factory (production uses the system store,
 * plus NODE_EXTRA_CA_CERTS): the agents are still the real SSRF-filtering ones.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { createHttpAgents, type HttpAgentFactory } from '../../src/delivery/http-agents.js';
import { clientCertificateProblems } from '../../src/security/client-cert.js';
import { sealedKeyId } from '../../src/security/secret-box.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { killAllPostboxes, spawnPostbox } from '../helpers/processes.js';
import { testSecretBox } from '../helpers/fixtures-sql.js';
import {
  certificateAuthority,
  startMtlsReceiver,
  type CertificateAuthority,
  type MtlsReceiver,
} from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

let pki: CertificateAuthority;
let stranger: CertificateAuthority;
let receiver: MtlsReceiver;
let app: TestApp;
let engines: EngineStarter;
let tenant: { id: string; apiKey: string };
let clientA: { cert: string; key: string };
let clientB: { cert: string; key: string };

/** The real agents, trusting the receiver's CA as a deployment would through NODE_EXTRA_CA_CERTS. */
const trustingReceiverCa: HttpAgentFactory = (o) => {
  const agents = createHttpAgents(o);
  agents.https.options.ca = pki.cert;
  return agents;
};

beforeAll(async () => {
  pki = certificateAuthority('Receiver CA');
  stranger = certificateAuthority('Stranger CA');
  receiver = await startMtlsReceiver({ ca: pki.cert, ...pki.issue('127.0.0.1', 'server') });
  clientA = pki.issue('postbox-client-a', 'client');
  clientB = pki.issue('postbox-client-b', 'client');
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  engines = engineStarter(app, { agentFactory: trustingReceiverCa, pollIntervalMs: 50 });
  tenant = await app.createTenant('mtls');
});
afterEach(async () => {
  await engines.stopAll();
});
afterAll(async () => {
  await killAllPostboxes();
  await app?.close();
  await receiver?.close();
  pki?.remove();
  stranger?.remove();
});

/** The base64 body of a PEM: what must never appear in an answer, a log or an audit row. */
const pemBody = (pem: string) =>
  pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');

async function webhook(path: string, client_certificate?: { cert: string; key: string }) {
  const res = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: {
      url: receiver.url(path),
      event_types: [`mtls.${path.slice(1)}`],
      retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
      ...(client_certificate ? { client_certificate } : {}),
    },
  });
  expect(res.status).toBe(201);
  return res.body;
}

const send = (path: string, n: number) =>
  app.request('POST', '/events', {
    key: tenant.apiKey,
    body: { type: `mtls.${path.slice(1)}`, payload: { n } },
  });

async function finished(deliveryId: string) {
  return waitFor(
    async () => {
      const d = (await app.request('GET', `/deliveries/${deliveryId}`, { key: tenant.apiKey })).body;
      return d.status === 'succeeded' || d.status === 'failed' ? d : undefined;
    },
    { what: `delivery ${deliveryId} to finish`, timeoutMs: 15_000 },
  );
}

describe('registration', () => {
  it('shows the certificate by its summary; the key is stored sealed and never answered or audited', async () => {
    const hook = await webhook('/registered', clientA);
    const x509 = new X509Certificate(clientA.cert);
    expect(hook.client_certificate).toEqual({
      subject: 'CN=postbox-client-a',
      issuer: 'CN=Receiver CA',
      fingerprint_sha256: x509.fingerprint256,
      not_after: new Date(x509.validTo).toISOString(),
    });
    const read = await app.request('GET', `/webhooks/${hook.id}`, { key: tenant.apiKey });
    expect(read.body.client_certificate).toEqual(hook.client_certificate);
    const list = await app.request('GET', '/webhooks', { key: tenant.apiKey });
    const audit = await app.request('GET', `/audit?tenant_id=${tenant.id}`);
    for (const text of [hook, read.body, list.body, audit.body].map((b) => JSON.stringify(b)))
      expect(text).not.toContain(pemBody(clientA.key));

    const { rows } = await app.db.pool.query(
      'SELECT client_cert_pem, client_key_ciphertext FROM webhooks WHERE id = $1',
      [hook.id],
    );
    expect(rows[0].client_cert_pem).toBe(clientA.cert);
    expect(rows[0].client_key_ciphertext.toString('latin1')).not.toContain(pemBody(clientA.key).slice(0, 20));
    expect(sealedKeyId(rows[0].client_key_ciphertext)).toBe(testSecretBox.currentKeyId);
    expect(testSecretBox.decrypt(rows[0].client_key_ciphertext)).toBe(clientA.key);
  });

  it('refuses an expired certificate (judged at registration time)', () => {
    const tenDays = new Date(Date.now() + 10 * 86_400_000);
    expect(clientCertificateProblems(clientA)).toEqual([]);
    expect(clientCertificateProblems(clientA, tenDays)).toEqual([
      { path: 'client_certificate.cert', message: expect.stringMatching(/^expired on \d{4}-/) },
    ]);
  });

  it('refuses an unusable certificate with a 400 naming the field, never echoing it', async () => {
    const encrypted = pki.encryptedKey();
    const cases: [unknown, string, RegExp][] = [
      [{ cert: clientA.cert, key: clientB.key }, 'client_certificate.key', /does not belong/],
      [{ cert: clientA.cert, key: encrypted }, 'client_certificate.key', /unencrypted/],
      [{ cert: clientA.cert, key: 'not a key' }, 'client_certificate.key', /PEM private key/],
      [{ cert: clientA.key, key: clientA.key }, 'client_certificate.cert', /PEM certificate/],
      [
        { cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: clientA.key },
        'client_certificate.cert',
        /cannot be read|can be read/,
      ],
      [{ cert: clientA.cert }, 'client_certificate.key', /.+/],
      ['yes', 'client_certificate', /.+/],
    ];
    for (const [client_certificate, path, message] of cases) {
      const res = await app.request('POST', '/webhooks', {
        key: tenant.apiKey,
        body: { url: receiver.url('/bad'), client_certificate },
      });
      expect(res.status).toBe(400);
      const detail = res.body.error.details.find((d: any) => d.path === path);
      expect(detail?.message).toMatch(message);
      for (const secret of [clientA.key, clientB.key, encrypted])
        expect(JSON.stringify(res.body)).not.toContain(pemBody(secret));
    }

    const plain = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'http://127.0.0.1:9/plain', client_certificate: clientA },
    });
    expect(plain.status).toBe(400);
    expect(plain.body.error.details).toContainEqual({
      path: 'client_certificate.cert',
      message: 'needs an https url',
    });

    const hook = await webhook('/kept', clientA);
    const toHttp = await app.request('PATCH', `/webhooks/${hook.id}`, {
      key: tenant.apiKey,
      body: { url: 'http://127.0.0.1:9/plain' },
    });
    expect(toHttp.status).toBe(400);
    expect(toHttp.body.error.details[0].path).toBe('url');
  });
});

describe('delivery', () => {
  it("presents each webhook's own certificate; without one, or with another CA's, the receiver refuses", async () => {
    await engines.start();
    const a = await webhook('/a', clientA);
    const b = await webhook('/b', clientB);
    const none = await webhook('/none');
    const foreign = await webhook('/foreign', stranger.issue('postbox-client-x', 'client'));

    // Interleaved on the same receiver (host:port): keep-alive sockets must not cross identities.
    const ids: Record<string, string[]> = { '/a': [], '/b': [], '/none': [], '/foreign': [] };
    for (let n = 0; n < 5; n++)
      for (const path of Object.keys(ids)) ids[path]!.push((await send(path, n)).body.delivery_ids[0]);

    for (const id of [...ids['/a']!, ...ids['/b']!]) expect((await finished(id)).status).toBe('succeeded');
    const byPath = (p: string) => receiver.requests.filter((r) => r.path === p);
    expect(byPath('/a').map((r) => r.clientCn)).toEqual(Array(5).fill('postbox-client-a'));
    expect(byPath('/b').map((r) => r.clientCn)).toEqual(Array(5).fill('postbox-client-b'));
    for (const [path, hook] of [
      ['/a', a],
      ['/b', b],
    ] as const)
      for (const r of byPath(path))
        expect(() =>
          new Webhook(hook.secret).verify(r.body, r.headers as Record<string, string>),
        ).not.toThrow();

    for (const id of [...ids['/none']!, ...ids['/foreign']!]) {
      const d = await finished(id);
      expect(d).toMatchObject({ status: 'failed', last_status_code: null });
      expect(d.last_error).toEqual(expect.any(String));
    }
    expect(byPath('/none')).toEqual([]);
    expect(byPath('/foreign')).toEqual([]);
    expect(receiver.refusedHandshakes).toBeGreaterThan(0);

    // Given a certificate by PATCH, the plain webhook gets through; its certificate removed, A no longer does.
    // (enabled: true also closes the breaker its five refusals opened.)
    await app.request('PATCH', `/webhooks/${none.id}`, {
      key: tenant.apiKey,
      body: { client_certificate: clientB, enabled: true },
    });
    await app.request('PATCH', `/webhooks/${a.id}`, {
      key: tenant.apiKey,
      body: { client_certificate: null },
    });
    expect((await finished((await send('/none', 9)).body.delivery_ids[0])).status).toBe('succeeded');
    expect(byPath('/none').map((r) => r.clientCn)).toEqual(['postbox-client-b']);
    expect((await finished((await send('/a', 9)).body.delivery_ids[0])).status).toBe('failed');
    expect(byPath('/a')).toHaveLength(5);
    expect(foreign.client_certificate.issuer).toBe('CN=Stranger CA');
  }, 60_000);

  it('keeps the SSRF protection: a certificate does not open a private address', async () => {
    const hook = await webhook('/ssrf', clientA);
    await engines.start({ ssrfAllowCidrs: [] });
    const d = await finished((await send('/ssrf', 1)).body.delivery_ids[0]);
    expect(d.status).toBe('failed');
    expect(d.last_error).toContain('blocked by SSRF protection');
    expect(receiver.requests.filter((r) => r.path === '/ssrf')).toEqual([]);
    expect(hook.client_certificate.subject).toBe('CN=postbox-client-a');
  });
});

describe('test send (POST /webhooks/:id/test)', () => {
  it("presents the webhook's certificate, from a process trusting the receiver's CA through NODE_EXTRA_CA_CERTS", async () => {
    // The route builds its own agents (test-send.ts), so the CA is trusted as a deployment trusts a
    // private one: NODE_EXTRA_CA_CERTS, read by Node at start-up, in a real API process.
    const dir = mkdtempSync(join(tmpdir(), 'postbox-ca-'));
    writeFileSync(join(dir, 'receiver-ca.pem'), pki.cert);
    const api = await spawnPostbox(app.db.url, {
      name: 'api',
      env: { POSTBOX_ROLE: 'api', NODE_EXTRA_CA_CERTS: join(dir, 'receiver-ca.pem') },
      readyMessage: 'listening',
    });
    try {
      const port = api.logs.find((l) => l.message === 'listening')!.port;
      const testSend = (id: string) =>
        fetch(`http://127.0.0.1:${port}/webhooks/${id}/test`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tenant.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'mtls.test_send', payload: { hello: 'mtls' } }),
        }).then(async (r) => ({ status: r.status, body: await r.json() }));

      const withCert = await webhook('/test-send', clientA);
      const sent = await testSend(withCert.id);
      expect(sent).toMatchObject({ status: 200, body: { status_code: 200, error: null } });
      const [got] = receiver.requests.filter((r) => r.path === '/test-send');
      expect(got).toMatchObject({
        clientCn: 'postbox-client-a',
        clientFingerprint: new X509Certificate(clientA.cert).fingerprint256,
      });
      expect(JSON.parse(got!.body)).toMatchObject({ type: 'mtls.test_send', data: { hello: 'mtls' } });
      expect(() =>
        new Webhook(withCert.secret).verify(got!.body, got!.headers as Record<string, string>),
      ).not.toThrow();

      // Without a certificate the receiver refuses the handshake: an answer with no status code.
      const refusedBefore = receiver.refusedHandshakes;
      const without = await webhook('/test-send-plain');
      const refused = await testSend(without.id);
      expect(refused).toMatchObject({ status: 200, body: { status_code: null, error: expect.any(String) } });
      expect(receiver.requests.filter((r) => r.path === '/test-send-plain')).toEqual([]);
      expect(receiver.refusedHandshakes).toBeGreaterThan(refusedBefore);
    } finally {
      api.signal('SIGTERM');
      await api.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
