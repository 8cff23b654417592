/**
 * The operator console in a real headless Chromium against a real instance (API + workers) and a
 * real receiver: log in, see a failing webhook and its dead delivery, retry it from the DLQ page and
 * watch it succeed; a wrong key is refused; HTML in data is shown as text and never runs.
 */
import { describe, expect, it } from '@jest/globals';
import type { Page } from 'playwright-core';
import { ADMIN_KEY } from '../helpers/app.js';
import { useConsole } from '../helpers/console.js';
import { sqlDeadDelivery, sqlDelivery, sqlEvent, sqlWebhook } from '../helpers/fixtures-sql.js';
import { waitFor } from '../helpers/wait.js';

const FAST_FAIL = { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 };
const SCREENSHOT = process.env.POSTBOX_CONSOLE_SCREENSHOT; // e.g. /tmp/console.png, to look at by hand

const ui = useConsole('console-tenant');

/**
 * A webhook of the tenant pointing at the receiver, failing fast into the DLQ. Each test gives its
 * own event_types, so its events reach its webhook only.
 */
async function createWebhook(body: Record<string, unknown> = {}) {
  const res = await ui.app.request('POST', '/webhooks', {
    key: ui.tenant.apiKey,
    body: { url: `${ui.receiver.url}/hook`, retry_policy: FAST_FAIL, ...body },
  });
  expect(res.status).toBe(201);
  return res.body as { id: string; url: string; description: string | null };
}

/** Ingests one event for the tenant; resolves once its one delivery is in the DLQ. */
async function deadDelivery(
  type: string,
  payload: unknown,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await ui.app.request('POST', '/events', {
    key: ui.tenant.apiKey,
    body: { type, payload, ...extra },
  });
  expect(res.status).toBe(202);
  expect(res.body.delivery_ids).toHaveLength(1);
  const id: string = res.body.delivery_ids[0];
  await waitFor(
    async () => {
      const dlq = await ui.app.request('GET', '/dlq', { key: ui.tenant.apiKey });
      return dlq.body.data?.some((row: { delivery_id: string }) => row.delivery_id === id);
    },
    { what: `delivery ${id} in the DLQ`, timeoutMs: 15_000 },
  );
  return id;
}

const mainText = (page: Page) => page.locator('main').innerText();

describe('console', () => {
  it('a tenant sees its failing webhook, retries the dead delivery and watches it succeed', async () => {
    ui.receiver.status = 500;
    const webhook = await createWebhook({ description: 'orders endpoint', event_types: ['order.*'] });
    const catalogued = await ui.app.request('POST', '/event-types', {
      key: ui.tenant.apiKey,
      body: { name: 'order.created', description: 'An order was placed' },
    });
    expect(catalogued.status).toBe(201);
    const deliveryId = await deadDelivery(
      'order.created',
      { order: 42 },
      {
        source: 'checkout',
        metadata: { region: 'eu' },
      },
    );

    const page = await ui.openConsole();
    await ui.logIn(page);

    // Webhooks page: the webhook with its health (one failed attempt, none succeeded).
    const row = page.locator('main tbody tr', { hasText: webhook.id });
    await row.waitFor();
    await expect(row.innerText()).resolves.toContain('orders endpoint');
    const rowText = await row.innerText();
    expect(rowText).toContain(webhook.url);
    expect(rowText).toMatch(/0\.0 %/);
    expect(rowText).toContain('0 ok / 1 failed');
    expect(rowText).toContain('DLQ (1)');
    await expect(page.locator('#who').innerText()).resolves.toContain(ui.tenant.id);

    // Deliveries page, filtered on the webhook and on failed: the dead delivery is listed.
    await page.click('nav a[href="#/deliveries"]');
    await page.locator('#delivery-filters').waitFor();
    await page.selectOption('#delivery-filters select[name=webhook_id]', webhook.id);
    await page.selectOption('#delivery-filters select[name=status]', 'failed');
    await page.click('#delivery-filters button[type=submit]');
    await page.waitForURL(/status=failed/);
    const deliveryRow = page.locator('main tbody tr', { hasText: 'order.created' });
    await deliveryRow.waitFor();
    await expect(deliveryRow.innerText()).resolves.toContain('failed');

    // The delivery page shows the failed attempt.
    await deliveryRow.locator('a').first().click();
    await page.locator('#attempts').waitFor();
    await expect(page.locator('#attempts tbody tr').count()).resolves.toBe(1);
    await expect(page.locator('#attempts').innerText()).resolves.toContain('500');
    await expect(page.locator('#payload').innerText()).resolves.toContain('"order": 42');
    // The event's version (the catalog's latest), source and metadata.
    const eventFields = await page.locator('#event-fields').innerText();
    expect(eventFields).toMatch(/Version\s+1\b/);
    expect(eventFields).toContain('checkout');
    await expect(page.locator('#event-metadata').innerText()).resolves.toMatch(/region\s+eu/);

    // The receiver recovers; retry from the DLQ page, follow the link, watch it succeed.
    ui.receiver.status = 200;
    ui.receiver.body = 'thanks';
    await page.click('nav a[href="#/dlq"]');
    const retry = page.locator(`button.retry[data-delivery="${deliveryId}"]`);
    await retry.click();
    const queued = page.locator('main .queued a');
    await queued.waitFor();
    await queued.click();
    await page.locator('h2 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 15_000 });
    await expect(page.locator('#attempts tbody tr').count()).resolves.toBe(2);
    await expect(page.locator('#attempts').innerText()).resolves.toContain('thanks');

    // It left the DLQ listing.
    await page.click('nav a[href="#/dlq"]');
    await page.locator('main h2', { hasText: 'Dead-letter queue' }).waitFor();
    await expect(page.locator(`button.retry[data-delivery="${deliveryId}"]`).count()).resolves.toBe(0);

    if (SCREENSHOT) {
      await page.click('nav a[href="#/webhooks"]');
      await page.locator('main tbody tr', { hasText: webhook.id }).waitFor();
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
    await page.close();
  });

  it("retries a whole webhook's DLQ at once, and replays a delivery", async () => {
    ui.receiver.status = 500;
    const webhook = await createWebhook({ description: 'bulk endpoint', event_types: ['bulk.*'] });
    const first = await deadDelivery('bulk.one', { n: 1 });
    const second = await deadDelivery('bulk.two', { n: 2 });
    ui.receiver.status = 200;
    ui.receiver.body = 'ok';

    const page = await ui.openConsole();
    await ui.logIn(page);
    await page.locator('main h2', { hasText: 'Webhooks' }).waitFor();
    await page.goto(`${ui.app.baseUrl}/console/#/dlq?webhook_id=${webhook.id}`);
    await page.locator(`button.retry[data-delivery="${second}"]`).waitFor();
    await expect(page.locator('main').innerText()).resolves.toContain('Webhook bulk endpoint');
    await page.click('#retry-all');
    await page.locator('#flash', { hasText: 'Queued 2 dead deliveries again.' }).waitFor();
    await page.locator('main .empty', { hasText: 'The dead-letter queue is empty.' }).waitFor();

    // Watch the first one settle on its page, then replay it: a third attempt, succeeded again.
    await page.goto(`${ui.app.baseUrl}/console/#/deliveries/${first}`);
    await page.locator('h2 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 15_000 });
    await page.click('#replay');
    await page.locator('#flash', { hasText: 'Replay queued' }).waitFor();
    // (waitForFunction with a string would be refused by the page's CSP: no eval.)
    await page.locator('#attempts tbody tr').nth(2).waitFor({ timeout: 15_000 });
    await page.locator('h2 .badge', { hasText: 'succeeded' }).waitFor({ timeout: 15_000 });

    const other = await ui.app.request('GET', `/deliveries/${second}`, { key: ui.tenant.apiKey });
    await waitFor(
      async () =>
        (await ui.app.request('GET', `/deliveries/${second}`, { key: ui.tenant.apiKey })).body.status ===
        'succeeded',
      { what: 'the second delivery to succeed', timeoutMs: 15_000 },
    );
    expect(other.status).toBe(200);
    await page.close();
  });

  it('shows the admin every tenant, with the tenant of each row', async () => {
    const otherTenant = await ui.app.createTenant('someone-else');
    const res = await ui.app.request('POST', '/webhooks', {
      key: otherTenant.apiKey,
      body: { url: `${ui.receiver.url}/other`, description: 'belongs to someone else' },
    });
    expect(res.status).toBe(201);

    const page = await ui.openConsole();
    await ui.logIn(page, ADMIN_KEY);
    const row = page.locator('main tbody tr', { hasText: 'belongs to someone else' });
    await row.waitFor();
    await expect(row.innerText()).resolves.toContain(otherTenant.id.slice(0, 8));
    await expect(page.locator('#who').innerText()).resolves.toBe('admin (all tenants)');
    await expect(page.locator('main th', { hasText: 'Tenant' }).count()).resolves.toBe(1);

    // A tenant key does not see it.
    await page.click('#logout');
    await ui.logIn(page);
    await page.locator('main h2', { hasText: 'Webhooks' }).waitFor();
    await page.locator('main tbody tr').first().waitFor();
    await expect(page.locator('main').innerText()).resolves.not.toContain('belongs to someone else');
    await page.close();
  });

  it('shows the tenants nearest their quotas on the Quotas page, a tenant only its own', async () => {
    const heavy = await ui.app.createTenant('<b>quota-heavy</b>', { max_dlq_size: 1 });
    const hook = await sqlWebhook(ui.app.db.pool, heavy.id);
    await sqlDeadDelivery(ui.app.db.pool, heavy.id, hook.id);
    await sqlDeadDelivery(ui.app.db.pool, heavy.id, hook.id);

    const page = await ui.openConsole();
    await ui.logIn(page, ADMIN_KEY);
    await page.click('#nav a[href="#/quotas"]');
    const first = page.locator('#quotas tbody tr').first();
    await first.waitFor();
    // Nearest its limit: 2 dead letters of 1 allowed, shown as text (the name is not HTML).
    await expect(first.innerText()).resolves.toContain('<b>quota-heavy</b>');
    await expect(first.locator('.quota-use.over', { hasText: '200.0 %' }).count()).resolves.toBe(2);
    await expect(first.innerText()).resolves.toContain('2 of 1');

    await page.click('#logout');
    await ui.logIn(page);
    await page.locator('main h2', { hasText: 'Webhooks' }).waitFor();
    await page.goto(`${ui.app.baseUrl}/console/#/quotas`);
    await page.locator('main h2', { hasText: 'Quota usage' }).waitFor();
    await expect(page.locator('#quotas tbody tr').count()).resolves.toBe(1);
    await expect(mainText(page)).resolves.toContain('console-tenant');
    await page.close();
  });

  it('refuses a wrong key with a clear message and stays on the login form', async () => {
    const page = await ui.openConsole();
    await ui.logIn(page, 'pbk_this-is-not-a-key');
    await page.locator('#login-error', { hasText: 'not accepted' }).waitFor();
    await expect(page.locator('#login-error').innerText()).resolves.toBe('That API key was not accepted.');
    await expect(page.locator('#nav').isHidden()).resolves.toBe(true);
    await expect(page.evaluate('sessionStorage.length')).resolves.toBe(0);
    await page.close();
  });

  it('logs out when the stored key stops working, saying why', async () => {
    const page = await ui.openConsole();
    await page.evaluate("sessionStorage.setItem('postbox.apiKey', 'pbk_revoked-key')");
    await page.goto(`${ui.app.baseUrl}/console/#/dlq`);
    await page.locator('#login-error', { hasText: 'refused' }).waitFor();
    await page.close();
  });

  it('says when retention removed a payload, and shows a JSON null payload as null', async () => {
    const db = ui.app.db.pool;
    const hook = await sqlWebhook(db, ui.tenant.id, { eventTypes: ['retained.*'] });
    const delivered = async (payload: unknown) => {
      const event = await sqlEvent(db, ui.tenant.id, { type: 'retained.test', payload });
      const id = await sqlDelivery(db, {
        tenantId: ui.tenant.id,
        eventId: event.id,
        webhookId: hook.id,
        status: 'succeeded',
      });
      return { eventId: event.id, deliveryId: id };
    };
    const removed = await delivered({ order: 1 });
    const jsonNull = await delivered(null);
    // What retention's payload step does (src/queries/retention.ts), under its switch.
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('postbox.retention', 'on', true)`);
      await client.query('UPDATE events SET payload = NULL WHERE id = $1', [removed.eventId]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }

    const page = await ui.openConsole();
    await ui.logIn(page);
    await page.goto(`${ui.app.baseUrl}/console/#/deliveries/${removed.deliveryId}`);
    await expect(page.locator('#payload-removed').innerText()).resolves.toContain('removed by retention');
    expect(await page.locator('#payload').count()).toBe(0);
    await page.goto(`${ui.app.baseUrl}/console/#/deliveries/${jsonNull.deliveryId}`);
    await expect(page.locator('#payload').innerText()).resolves.toBe('null');
    expect(await page.locator('#payload-removed').count()).toBe(0);
    await page.close();
  });

  it('shows HTML in descriptions, URLs, payloads and responses as text, and runs none of it', async () => {
    const evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
    ui.receiver.status = 500;
    ui.receiver.body = '<script>window.__xss=5</script><img src=x onerror="window.__xss=6">';
    const webhook = await createWebhook({
      description: evil,
      event_types: ['xss.*'],
      // No whitespace (refused in URLs): `/` separates the attributes instead.
      url: `${ui.receiver.url}/hook/<img/src=x/onerror=window.__xss=7>?q=<script>window.__xss=8</script>`,
    });
    const payload = { note: '<img src=x onerror="window.__xss=3">', html: '<script>window.__xss=4</script>' };
    const source = '<img src=x onerror="window.__xss=9">';
    const metadata = { '<b>k</b>': '<script>window.__xss=10</script>' };
    const deliveryId = await deadDelivery('xss.test', payload, { source, metadata });

    const page = await ui.openConsole();
    await ui.logIn(page);
    const row = page.locator('main tbody tr', { hasText: webhook.id });
    await row.waitFor();
    await expect(row.locator('.desc').innerText()).resolves.toBe(evil);
    await expect(row.locator('.url').innerText()).resolves.toBe(webhook.url);

    await page.goto(`${ui.app.baseUrl}/console/#/deliveries/${deliveryId}`);
    await page.locator('#attempts').waitFor();
    // jsonb keeps no key order; the text must still be exactly the JSON of the payload.
    expect(JSON.parse(await page.locator('#payload').innerText())).toEqual(payload);
    await expect(page.locator('#attempts pre').innerText()).resolves.toBe(ui.receiver.body);
    await expect(page.locator('#event-fields').innerText()).resolves.toContain(source);
    await expect(page.locator('#event-metadata th').innerText()).resolves.toBe('<b>k</b>');
    await expect(page.locator('#event-metadata td').innerText()).resolves.toBe(metadata['<b>k</b>']);

    await page.click('nav a[href="#/dlq"]');
    await page.locator(`button.retry[data-delivery="${deliveryId}"]`).waitFor();

    // Nothing ran, and no element was made from the data (escaping, not only the CSP, held).
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(await mainText(page)).toContain('xss.test');
    await page.close();
  });
});
