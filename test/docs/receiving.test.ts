/**
 * docs/receiving.md's verification snippets, run as they are written against real Postbox
 * deliveries: before and during a secret rotation (both secrets verify), a wrong secret, a tampered
 * body, and a delivery replayed ten minutes later (too old) must be rejected. The Node snippets run in
 * node, the Python one in python3 (standard library only); each process gets every case at once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver, type ReceivedRequest } from '../helpers/receiver.js';

interface Case {
  name: string;
  secret: string;
  headers: Record<string, string>;
  body: string;
  /** Unix seconds the verifier's clock reads; absent: the real clock. */
  now?: number;
}

const doc = readFileSync(join(projectRoot, 'docs', 'receiving.md'), 'utf8');
const snippets = Object.fromEntries(
  [...doc.matchAll(/```\w+ (receiver-[\w-]+)\n([\s\S]*?)```/g)].map((m) => [m[1]!, m[2]!]),
);

const NODE_DRIVER = `
import { readFileSync } from 'node:fs';
const { verifyDelivery } = await import(process.argv[2]);
const realNow = Date.now;
const out = [];
for (const c of JSON.parse(readFileSync(0, 'utf8'))) {
  Date.now = c.now ? () => c.now * 1000 : realNow;
  try {
    out.push({ name: c.name, ok: true, type: verifyDelivery(c.secret, c.headers, c.body).type });
  } catch (err) {
    out.push({ name: c.name, ok: false, error: String(err.message) });
  }
}
console.log(JSON.stringify(out));
`;

const PYTHON_DRIVER = `
import json, sys, time
_real_time = time.time
_out = []
for c in json.load(sys.stdin):
    time.time = (lambda n=c["now"]: float(n)) if c.get("now") else _real_time
    try:
        _out.append({"name": c["name"], "ok": True, "type": verify_delivery(c["secret"], c["headers"], c["body"].encode())["type"]})
    except Exception as err:
        _out.append({"name": c["name"], "ok": False, "error": str(err)})
print(json.dumps(_out))
`;

let app: TestApp;
let receiver: Receiver;
// Under node_modules so the snippet's `import 'standardwebhooks'` resolves like in a project.
const dir = mkdtempSync(join(projectRoot, 'node_modules', '.receiving-snippets-'));

beforeAll(async () => {
  [app, receiver] = await Promise.all([
    startTestApp({ POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8' }),
    startReceiver(),
  ]);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await receiver.close();
  await app.close();
});

function run(snippet: string, cases: Case[]): { name: string; ok: boolean; type?: string; error?: string }[] {
  const code = snippets[snippet];
  if (!code) throw new Error(`docs/receiving.md has no \`${snippet}\` block`);
  let output: string;
  if (snippet === 'receiver-python') {
    const file = join(dir, 'verify.py');
    writeFileSync(file, code + PYTHON_DRIVER);
    output = execFileSync('python3', [file], { input: JSON.stringify(cases), timeout: 60_000 }).toString();
  } else {
    const file = join(dir, `${snippet}.mjs`);
    writeFileSync(file, code);
    writeFileSync(join(dir, 'driver.mjs'), NODE_DRIVER);
    output = execFileSync(process.execPath, [join(dir, 'driver.mjs'), file], {
      input: JSON.stringify(cases),
      timeout: 60_000,
    }).toString();
  }
  return JSON.parse(output);
}

const signedHeaders = (r: ReceivedRequest) =>
  Object.fromEntries(
    ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(r.headers[h])]),
  );

test.each(['receiver-node-standardwebhooks', 'receiver-node-crypto', 'receiver-python'])(
  '%s accepts real deliveries (also during a rotation) and rejects forgeries and replays',
  async (snippet) => {
    const tenant = await app.createTenant(snippet);
    const path = `/${snippet}`;
    receiver.on(path, { status: 200 });
    const hook = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url(path) },
    });
    const oldSecret: string = hook.body.secret;
    const send = (type: string) =>
      app.request('POST', '/events', { key: tenant.apiKey, body: { type, payload: { snippet } } });

    await send('order.created');
    const [before] = await receiver.waitForRequests(1, path, 20_000);
    const rotated = await app.request('POST', `/webhooks/${hook.body.id}/rotate-secret`, {
      key: tenant.apiKey,
      body: { overlap_seconds: 3600 },
    });
    const newSecret: string = rotated.body.secret;
    await send('order.paid');
    const during = (await receiver.waitForRequests(2, path, 20_000))[1]!;
    expect(during.headers['webhook-signature']!.toString().split(' ')).toHaveLength(2);

    const real = (r: ReceivedRequest, secret: string, name: string): Case => ({
      name,
      secret,
      headers: signedHeaders(r),
      body: r.body,
    });
    const sentAt = Number(during.headers['webhook-timestamp']);
    const results = run(snippet, [
      real(before!, oldSecret, 'before rotation'),
      real(during, newSecret, 'rotation, new secret'),
      real(during, oldSecret, 'rotation, old secret'),
      real(during, 'whsec_' + Buffer.alloc(32, 7).toString('base64'), 'wrong secret'),
      { ...real(during, newSecret, 'tampered body'), body: during.body.replace('order.paid', 'order.free') },
      { ...real(during, newSecret, 'replayed 10 minutes later'), now: sentAt + 600 },
    ]);
    expect(results).toEqual([
      { name: 'before rotation', ok: true, type: 'order.created' },
      { name: 'rotation, new secret', ok: true, type: 'order.paid' },
      { name: 'rotation, old secret', ok: true, type: 'order.paid' },
      { name: 'wrong secret', ok: false, error: expect.any(String) },
      { name: 'tampered body', ok: false, error: expect.any(String) },
      { name: 'replayed 10 minutes later', ok: false, error: expect.stringMatching(/timestamp too old/i) },
    ]);
  },
);
