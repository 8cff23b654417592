/**
 * The shipped nginx config (deploy/nginx/postbox.conf) in front of a real Postbox process: Debian's
 * nginx runs that exact file with only its ports and log folder changed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { ADMIN_KEY } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { rawRequest, type RawResponse } from '../helpers/http.js';
import { startNginx, type Nginx } from '../helpers/nginx.js';
import { killAllPostboxes, spawnPostbox, type PostboxProcess } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

let db: TestDatabase;
let receiver: Receiver;
let postbox: PostboxProcess;
let postboxPort: number;
let nginx: Nginx;
let tenantKey: string;

const LISTENING = (line: { message?: string }) => line.message === 'listening';

async function startProcess(name: string): Promise<PostboxProcess> {
  return spawnPostbox(db.url, {
    name,
    env: { POSTBOX_ROLE: 'all', PORT: String(postboxPort), SHUTDOWN_GRACE_MS: '5000' },
    readyMessage: LISTENING,
    readyTimeoutMs: 120_000, // a loaded CI machine can take a while to start tsx
  });
}

/** A JSON request through nginx. */
function viaNginx(
  method: string,
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  return rawRequest({ port: nginx.port, method, path, headers, body, localAddress: options.localAddress });
}

beforeAll(async () => {
  db = await createTestDatabase();
  receiver = await startReceiver();
  postboxPort = await freePort();
  postbox = await startProcess('postbox');
  nginx = await startNginx(postboxPort);
  const tenant = await viaNginx('POST', '/tenants', {
    key: ADMIN_KEY,
    body: { name: 'nginx', quotas: { max_events_per_sec: 100_000 } },
  });
  expect(tenant.status).toBe(201);
  tenantKey = tenant.json.api_key;
}, 240_000);

afterAll(async () => {
  await nginx?.stop();
  await killAllPostboxes();
  await receiver?.close();
  await db?.drop();
});

async function webhookFor(type: string, path: string): Promise<string> {
  const res = await viaNginx('POST', '/webhooks', {
    key: tenantKey,
    body: {
      url: receiver.url(path),
      event_types: [type],
      retry_policy: { max_attempts: 10, initial_delay_ms: 100, max_delay_ms: 500 },
    },
  });
  expect(res.status).toBe(201);
  return res.json.id;
}

describe('Postbox behind the shipped nginx config', () => {
  it('delivers an event ingested through nginx', async () => {
    await webhookFor('nginx.delivered', '/delivered');
    const res = await viaNginx('POST', '/events', {
      key: tenantKey,
      body: { type: 'nginx.delivered', payload: { through: 'nginx' } },
    });
    expect(res.status).toBe(202);
    const [request] = await receiver.waitForRequests(1, '/delivered', 20_000);
    expect(JSON.parse(request!.body)).toMatchObject({ id: res.json.event_id, data: { through: 'nginx' } });
  });

  it('refuses a body over the limit with the JSON error, before it reaches Postbox', async () => {
    const before = postbox.logs.filter((l) => l.message === 'request').length;
    const big = JSON.stringify({ type: 'nginx.big', payload: { blob: 'x'.repeat(1024 * 1024 + 16) } });
    const res = await rawRequest({
      port: nginx.port,
      method: 'POST',
      path: '/events',
      headers: { authorization: `Bearer ${tenantKey}`, 'content-type': 'application/json' },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
    // A body just under the limit passes nginx and is ingested.
    const ok = await viaNginx('POST', '/events', {
      key: tenantKey,
      body: { type: 'nginx.big', payload: { blob: 'x'.repeat(1000 * 1024) } },
    });
    expect(ok.status).toBe(202);
    await waitFor(() => postbox.logs.filter((l) => l.message === 'request').length > before, {
      what: 'the accepted request in the log',
    });
    // nginx refused the large one itself: Postbox logged only the accepted request.
    const posted = postbox.logs.slice(0).filter((l) => l.message === 'request' && l.route === '/events');
    expect(posted.filter((l) => l.status === 413)).toEqual([]);
  });

  it('answers /metrics through nginx with 403 from a client outside the allowed networks', async () => {
    const refused = await viaNginx('GET', '/metrics');
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('forbidden');
    expect(refused.text).not.toContain('postbox_');
    // Postbox itself serves it (to the monitoring network, which scrapes it directly or through nginx).
    const direct = await rawRequest({ port: postboxPort, path: '/metrics' });
    expect(direct.status).toBe(200);
    expect(direct.text).toContain('postbox_');
  });

  it('serves the console through nginx', async () => {
    const res = await viaNginx('GET', '/console/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
  });

  it("logs the client's forwarded address and request id, not nginx's", async () => {
    // The client connects from 127.0.0.7; nginx reaches Postbox from 127.0.0.1.
    const res = await viaNginx('GET', '/tenants/00000000-0000-4000-8000-000000000000', {
      key: ADMIN_KEY,
      headers: { 'x-request-id': 'nginx-test-rid-1' },
      localAddress: '127.0.0.7',
    });
    expect(res.status).toBe(404);
    expect(res.headers['x-request-id']).toBe('nginx-test-rid-1');
    const line = await postbox.waitForLog(
      (l) => l.message === 'request' && l.request_id === 'nginx-test-rid-1',
    );
    expect(line.client_ip).toBe('127.0.0.7');
    await waitFor(() => nginx.accessLog().includes('rid=nginx-test-rid-1'), { what: 'the access log line' });
    expect(nginx.accessLog()).toMatch(/^127\.0\.0\.7 .*rid=nginx-test-rid-1/m);

    // Without one, nginx makes the id, and Postbox logs and returns that same id.
    const made = await viaNginx('GET', '/health', { localAddress: '127.0.0.8' });
    const rid = made.headers['x-request-id'] as string;
    expect(rid).toMatch(/^[0-9a-f]{32}$/);
    const madeLine = await postbox.waitForLog((l) => l.message === 'request' && l.request_id === rid);
    expect(madeLine.client_ip).toBe('127.0.0.8');
  });

  it('loses no acked event when Postbox gets SIGTERM while requests flow through nginx', async () => {
    await webhookFor('nginx.drain', '/drain');
    const acked: string[] = [];
    const answers = new Map<number, number>();
    let stop = false;
    // Four clients post events through nginx until Postbox is gone (or a bounded count is reached).
    const client = async (n: number) => {
      for (let i = 0; i < 1500 && !stop; i++) {
        const res = await viaNginx('POST', '/events', {
          key: tenantKey,
          body: { type: 'nginx.drain', payload: { client: n, i } },
        }).catch(() => ({ status: 0, json: undefined }) as unknown as RawResponse);
        answers.set(res.status, (answers.get(res.status) ?? 0) + 1);
        if (res.status === 202) acked.push(res.json.event_id as string);
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    await waitFor(() => acked.length >= 40, { timeoutMs: 30_000, what: '40 acked events' });
    postbox.signal('SIGTERM');
    const exit = await postbox.exited;
    stop = true;
    await Promise.all(clients);
    expect(exit.code).toBe(0);
    // While it was away nginx answered with its JSON 503, never an HTML page.
    for (const status of answers.keys()) expect([202, 503]).toContain(status);

    // Every acked event is stored with its delivery ...
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(DISTINCT e.id)::int AS n FROM events e JOIN deliveries d ON d.event_id = e.id WHERE e.id = ANY($1::uuid[])',
      [acked],
    );
    expect(rows[0]!.n).toBe(acked.length);
    // ... and delivered once Postbox runs again.
    postbox = await startProcess('postbox-again');
    await waitFor(
      () => {
        const seen = new Set(receiver.requestsTo('/drain').map((r) => JSON.parse(r.body).id as string));
        return acked.every((id) => seen.has(id));
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `all ${acked.length} acked events delivered` },
    );
  }, 300_000);
});
