/**
 * Every ```sql block in runbooks/*.md runs as-is against a migrated database holding fixtures for the
 * example ids the blocks use, so a renamed column or view breaks this test instead of an operator's
 * night. The two writes are also checked for what they do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sqlAttempts, sqlDeadLetter, sqlDelivery, sqlEvent, testSecretBox } from '../helpers/fixtures-sql.js';

const DIR = join(process.cwd(), 'runbooks');
const EXAMPLE_TENANT = '0190b6a4-3f1e-7c3a-9d2e-000000000001';
const EXAMPLE_WEBHOOK = '0190b6a4-3f1e-7c3a-9d2e-5a1b2c3d4e5f';

interface Block {
  file: string;
  index: number;
  sql: string;
}

/** The ```sql blocks of a markdown text, de-indented (blocks inside list items are indented). */
function sqlBlocks(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const m of markdown.matchAll(/^([ \t]*)```sql[ \t]*\n([\s\S]*?)^\1```[ \t]*$/gm)) {
    const indent = m[1]!.length;
    const sql = m[2]!
      .split('\n')
      .map((line) => line.slice(Math.min(indent, line.length - line.trimStart().length)))
      .join('\n');
    blocks.push({ file, index: blocks.length + 1, sql });
  }
  return blocks;
}

const pages = readdirSync(DIR)
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((file) => ({ file, text: readFileSync(join(DIR, file), 'utf8') }));
const blocks = pages.flatMap((p) => sqlBlocks(p.file, p.text));
const runbooks = pages.filter((p) => p.file !== 'README.md');

let app: TestApp;
let scheduledId: string;
let unqueuedEventId: string;

beforeAll(async () => {
  app = await startTestApp();
  const db = app.db.pool;
  await db.query(
    `WITH t AS (INSERT INTO tenants (id, name) VALUES ($1, 'runbook example'))
     INSERT INTO quotas (tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size)
     VALUES ($1, 10, 100, 1)`,
    [EXAMPLE_TENANT],
  );
  await db.query(
    `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, event_types, retry_policy,
                           previous_secret_ciphertext, previous_secret_expires_at)
     VALUES ($1, $2, 'https://receiver.example/hooks', $3, '{order.*}',
             '{"max_attempts":40,"initial_delay_ms":5000,"max_delay_ms":3600000}', $3, now() + interval '1 hour')`,
    [EXAMPLE_WEBHOOK, EXAMPLE_TENANT, testSecretBox.encrypt('whsec_' + 'A'.repeat(43) + '=')],
  );
  const t = EXAMPLE_TENANT;
  const w = EXAMPLE_WEBHOOK;
  const event = async (type = 'order.created') => (await sqlEvent(db, t, { type })).id;
  await sqlDelivery(db, {
    tenantId: t,
    webhookId: w,
    eventId: await event(),
    nextAttemptAt: new Date(Date.now() - 60_000),
  });
  scheduledId = await sqlDelivery(db, {
    tenantId: t,
    webhookId: w,
    eventId: await event(),
    attempts: 3,
    nextAttemptAt: new Date(Date.now() + 3_600_000),
  });
  await sqlAttempts(db, scheduledId, [
    { attempt: 1, statusCode: 500, error: 'HTTP 500', responseExcerpt: 'oops' },
    { attempt: 2, statusCode: null, error: 'timeout after 15000 ms' },
    { attempt: 3, statusCode: 401, error: 'HTTP 401' },
  ]);
  const ok = await sqlDelivery(db, {
    tenantId: t,
    webhookId: w,
    eventId: await event(),
    status: 'succeeded',
  });
  await sqlAttempts(db, ok, [{ attempt: 1, statusCode: 200 }]);
  await sqlDelivery(db, {
    tenantId: t,
    webhookId: w,
    eventId: await event(),
    status: 'in_flight',
    leaseExpiresAt: new Date(Date.now() - 1000),
  });
  for (let i = 0; i < 2; i++) {
    const dead = await sqlDelivery(db, {
      tenantId: t,
      webhookId: w,
      eventId: await event(),
      status: 'failed',
      attempts: 40,
      lastError: 'HTTP 503',
    });
    await sqlDeadLetter(db, dead);
  }
  unqueuedEventId = await event('order.paid'); // matches order.*, never queued: the webhook was disabled
  await event('invoice.sent'); // does not match
  await db.query(
    `INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, changes, at)
     VALUES ('admin', 'webhook.rotate_secret', 'webhook', $1, $2, '{}', now() - interval '10 minutes'),
            ('admin', 'quota.update', 'quota', $2, $2, '{}', now() - interval '1 day')`,
    [w, t],
  );
  await db.query(
    `INSERT INTO rate_windows (tenant_id, window_start, count)
     SELECT $1, floor(extract(epoch FROM now()))::bigint - s, 10 FROM generate_series(0, 5) s`,
    [t],
  );
});
afterAll(async () => {
  await app?.close();
});

describe('runbooks', () => {
  it('there is one per situation, each with symptom, signals, diagnosis (SQL) and fix', () => {
    expect(runbooks.map((r) => r.file).sort()).toEqual([
      'client-certificate-expiry.md',
      'database-slow.md',
      'dlq-growing.md',
      'history-retention.md',
      'replay-after-outage.md',
      'rotate-leaked-secret.md',
      'slo-burn.md',
      'slow-webhook.md',
      'tenant-at-quota.md',
      'tenant-rate-limited.md',
      'workers-not-claiming.md',
    ]);
    for (const { file, text } of runbooks) {
      for (const heading of ['## Symptom', '## Signals', '## Diagnose', '## Fix'])
        expect({ file, has: text.includes(`\n${heading}\n`) }).toEqual({ file, has: true });
      expect({ file, sqlBlocks: sqlBlocks(file, text).length > 0 }).toEqual({ file, sqlBlocks: true });
    }
  });

  it('finds the blocks, including those indented in list items', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(20);
    expect(sqlBlocks('x', '1. step\n\n   ```sql\n   SELECT 1;\n   ```\n')).toEqual([
      { file: 'x', index: 1, sql: 'SELECT 1;\n' },
    ]);
  });

  it('placeholders are only the marked example ids, never psql variables', () => {
    for (const b of blocks) {
      const withoutCasts = b.sql.replace(/::\w+/g, '');
      const psqlVariable = /(^|[\s(,=]):['"]?[A-Za-z_]\w*/m.test(withoutCasts) || /^\s*\\/m.test(b.sql);
      expect({ block: `${b.file}#${b.index}`, psqlVariable }).toEqual({
        block: `${b.file}#${b.index}`,
        psqlVariable: false,
      });
    }
  });
});

describe.each(blocks.map((b) => [`${b.file} #${b.index}`, b] as const))('%s', (_name, block) => {
  it('runs as-is against a migrated database', async () => {
    await expect(app.db.pool.query(block.sql)).resolves.toBeDefined();
  });
});

describe('the writes do what they say', () => {
  const blockWith = (marker: string) => {
    const found = blocks.filter((b) => b.sql.includes(marker));
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it('retry-now makes the waiting retries due and audits it', async () => {
    // The describe.each above already ran every block once; run it again on a fresh waiting retry.
    await app.db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() + interval '1 hour' WHERE id = $1`,
      [scheduledId],
    );
    await app.db.pool.query(blockWith("'delivery.retry_now_bulk'").sql);
    const { rows } = await app.db.pool.query(
      `SELECT next_attempt_at <= now() AS due FROM deliveries WHERE id = $1`,
      [scheduledId],
    );
    expect(rows[0].due).toBe(true);
    const audit = await app.db.pool.query(
      `SELECT changes FROM audit_log WHERE action = 'delivery.retry_now_bulk' ORDER BY id DESC LIMIT 1`,
    );
    expect(audit.rows[0].changes).toMatchObject({ deliveries: 1 });
  });

  it('backfill queued the matching event that was never queued, once, with a UUIDv7 id', async () => {
    await app.db.pool.query(blockWith("'delivery.backfill'").sql); // a second run queues nothing more
    const { rows } = await app.db.pool.query(
      `SELECT d.id, d.status FROM deliveries d WHERE d.event_id = $1 AND d.webhook_id = $2`,
      [unqueuedEventId, EXAMPLE_WEBHOOK],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe('pending');
    expect(rows[0].id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const notMatching = await app.db.pool.query(
      `SELECT count(*)::int AS n FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.type = 'invoice.sent'`,
    );
    expect(notMatching.rows[0].n).toBe(0);
  });
});
