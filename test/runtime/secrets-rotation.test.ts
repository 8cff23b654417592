/**
 * A whole SECRETS_KEY rotation (docs/security.md) on one database, with Postbox instances (API and
 * delivery engine each) replaced one after another as a rolling deployment would, a producer posting
 * events and a real receiver checking every signature throughout:
 *
 *   1. every process learns the new key B, still sealing with A (SECRETS_KEY=A, SECRETS_KEY_PREVIOUS=B);
 *   2. every process seals with B and still opens A (SECRETS_KEY=B, SECRETS_KEY_PREVIOUS=A);
 *      retiring A now is refused at start-up, naming A's key id;
 *   3. `npm run secrets:rekey` (the real CLI, in a child process) re-seals everything with B while
 *      deliveries go on; run again, it has nothing to do;
 *   4. A is retired (SECRETS_KEY=B alone) and start-up accepts it.
 *
 * The producer never sees an error, every event reaches every webhook with a signature that verifies,
 * nothing is dead-lettered, and at the end every sealed value names key B.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { ConfigError, loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { startPostbox } from '../../src/runtime/postbox.js';
import { countSealedByKey } from '../../src/queries/sealed-secrets.js';
import { parseSecretsKey, secretsKeyId } from '../../src/security/secret-box.js';
import { ADMIN_KEY, SECRETS_KEY as KEY_A, startTestAppOn, type TestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const KEY_B = 'b7'.repeat(32);
const ID_A = secretsKeyId(parseSecretsKey(KEY_A)!);
const ID_B = secretsKeyId(parseSecretsKey(KEY_B)!);
const ENGINE = { POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '50' };

let db: TestDatabase;
let receiver: Receiver;
const running: TestApp[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  receiver = await startReceiver();
});
afterAll(async () => {
  for (const app of running.splice(0)) await app.close();
  await receiver?.close();
  await db?.drop();
});

async function deploy(env: Record<string, string>): Promise<TestApp> {
  const app = await startTestAppOn(db, { ...ENGINE, SHUTDOWN_GRACE_MS: '5000', ...env });
  running.push(app);
  return app;
}

async function retire(app: TestApp): Promise<void> {
  running.splice(running.indexOf(app), 1);
  await app.close();
}

/** Posts an event every few ms to whichever instance is current, until stopped; counts every answer. */
function producer(tenantKey: string, current: () => TestApp) {
  const acked: string[] = [];
  const refused: string[] = [];
  let stop = false;
  const done = (async () => {
    for (let n = 0; !stop; n++) {
      try {
        const res = await current().request('POST', '/events', {
          key: tenantKey,
          body: { type: 'order.created', payload: { n } },
        });
        if (res.status === 202) acked.push(res.body.event_id);
        else refused.push(`${res.status} ${JSON.stringify(res.body)}`);
      } catch (err) {
        refused.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  })();
  return {
    acked,
    refused,
    async stop() {
      stop = true;
      await done;
    },
  };
}

function rekeyCli(env: Record<string, string>): Promise<{ code: number | null; lines: any[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/secrets-rekey.ts'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: db.url, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) =>
      resolve({
        code,
        lines: out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l)),
      }),
    ),
  );
}

async function startRefusal(env: Record<string, string>): Promise<ConfigError> {
  try {
    const postbox = await startPostbox(
      loadConfig({ DATABASE_URL: db.url, ADMIN_API_KEY: ADMIN_KEY, POSTBOX_ROLE: 'api', ...env }),
      silentLogger(),
    );
    await postbox.stop();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('start-up was not refused');
}

it('rotates SECRETS_KEY while deliveries go on: no refused event, no bad signature, nothing dead', async () => {
  let current = await deploy({ SECRETS_KEY: KEY_A });
  const tenant = await current.createTenant('rotation');
  const secrets = new Map<string, string>(); // receiver path → the webhook's current signing secret
  async function addWebhook(app: TestApp, path: string) {
    const res = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: {
        url: receiver.url(path),
        retry_policy: { max_attempts: 20, initial_delay_ms: 100, max_delay_ms: 500 },
      },
    });
    expect(res.status).toBe(201);
    secrets.set(path, res.body.secret);
    return res.body.id as string;
  }
  for (let i = 0; i < 4; i++) await addWebhook(current, `/a${i}`);
  // A webhook-secret rotation under way too: a previous secret, sealed like the current one.
  const rotatedId = await addWebhook(current, '/rotated');
  const rotated = await current.request('POST', `/webhooks/${rotatedId}/rotate-secret`, {
    key: tenant.apiKey,
  });
  secrets.set('/rotated', rotated.body.secret);

  const events = producer(tenant.apiKey, () => current);
  const progress = async (what: string) => {
    const target = events.acked.length + 10;
    await waitFor(() => events.acked.length >= target, { what: `events posted ${what}`, timeoutMs: 20_000 });
  };
  await progress('under key A');

  // 1. Every process learns B, still sealing with A.
  // (Producers move to the new instance before the old one is stopped, as behind a load balancer.)
  const learnt = await deploy({ SECRETS_KEY: KEY_A, SECRETS_KEY_PREVIOUS: KEY_B });
  const first = current;
  current = learnt;
  await progress('with B known');
  await retire(first);

  // 2. Every process seals with B; A still opens.
  const switched = await deploy({ SECRETS_KEY: KEY_B, SECRETS_KEY_PREVIOUS: KEY_A });
  current = switched;
  await progress('sealing with B');
  await retire(learnt);
  await addWebhook(current, '/b0'); // sealed with B
  // Retiring A before the pass: refused, naming A's key id and how to go on.
  const early = await startRefusal({ SECRETS_KEY: KEY_B });
  expect(early.variable).toBe('SECRETS_KEY');
  expect(early.message).toContain(`sealed with key ${ID_A}`);
  expect(early.message).toContain('SECRETS_KEY_PREVIOUS');
  expect(early.message).toContain('npm run secrets:rekey');
  expect(early.message).not.toContain(KEY_A);
  expect(early.message).not.toContain(KEY_B);

  // 3. The re-encryption pass, while events keep flowing; then again, with nothing to do.
  const pass = await rekeyCli({ SECRETS_KEY: KEY_B, SECRETS_KEY_PREVIOUS: KEY_A });
  expect(pass.code).toBe(0);
  const summary = pass.lines.at(-1);
  expect(summary).toMatchObject({ current_key_id: ID_B, remaining: 0, unopenable: 0 });
  // 5 current secrets and 1 previous one under A, and the start-up check row.
  expect(summary.resealed).toBe(7);
  await progress('after the pass');
  const again = await rekeyCli({ SECRETS_KEY: KEY_B, SECRETS_KEY_PREVIOUS: KEY_A });
  expect(again.code).toBe(0);
  expect(again.lines.at(-1)).toMatchObject({ resealed: 0, remaining: 0 });

  // 4. A retired.
  const retired = await deploy({ SECRETS_KEY: KEY_B });
  current = retired;
  await progress('with A retired');
  await retire(switched);
  await events.stop();

  expect(events.refused).toEqual([]);
  expect(await countSealedByKey(db.pool)).toEqual([{ keyId: ID_B, count: 8 }]);

  // Every acked event reached every webhook that existed when it was posted, with a good signature.
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM deliveries WHERE event_id = ANY($1::uuid[]) GROUP BY status`,
    [events.acked],
  );
  await waitFor(
    async () => {
      const { rows: open } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deliveries WHERE event_id = ANY($1::uuid[]) AND status <> 'succeeded'`,
        [events.acked],
      );
      return open[0]!.n === 0;
    },
    { what: 'every delivery to succeed', timeoutMs: 30_000 },
  );
  const total = rows.reduce((n, r) => n + r.n, 0);
  expect(total).toBeGreaterThanOrEqual(events.acked.length * 5);
  const { rows: dead } = await db.pool.query('SELECT 1 FROM dead_letter_queue');
  expect(dead).toEqual([]);

  let verified = 0;
  for (const [path, secret] of secrets) {
    for (const req of receiver.requestsTo(path)) {
      expect(() => new Webhook(secret).verify(req.body, req.headers as Record<string, string>)).not.toThrow();
      verified++;
    }
  }
  expect(verified).toBeGreaterThanOrEqual(total);
}, 120_000);
