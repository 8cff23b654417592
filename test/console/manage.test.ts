/**
 * The console as a management tool, in a real headless Chromium against a real instance (API and
 * workers) and a real receiver: register a webhook, edit it, disable and enable it, rotate its secret
 * (shown once), send a test event and read the result, and read the attempts chart; HTML in a URL,
 * a description or a response excerpt is shown as text and never runs.
 */
import { describe, expect, it } from '@jest/globals';
import type { Page } from 'playwright-core';
import { useConsole } from '../helpers/console.js';
import { testSecretBox } from '../helpers/fixtures-sql.js';
import { waitFor } from '../helpers/wait.js';

const ui = useConsole('console-manager');

/** The console at `hash`, logged in with the tenant's key. */
async function openConsole(hash = ''): Promise<Page> {
  const page = await ui.openConsole(hash);
  await ui.logIn(page);
  return page;
}

async function secrets(webhookId: string): Promise<{ current: string; previous: string | null }> {
  const { rows } = await ui.app.db.pool.query(
    `SELECT secret_ciphertext, previous_secret_ciphertext FROM webhooks WHERE id = $1`,
    [webhookId],
  );
  const prev = rows[0].previous_secret_ciphertext as Buffer | null;
  return {
    current: testSecretBox.decrypt(rows[0].secret_ciphertext),
    previous: prev ? testSecretBox.decrypt(prev) : null,
  };
}

const webhookIdOf = (page: Page) => /#\/webhooks\/([0-9a-f-]{36})$/.exec(page.url())?.[1];

describe('managing a webhook from the console', () => {
  it('registers, edits, disables, enables and rotates the secret (each secret shown once)', async () => {
    const page = await openConsole();
    await page.click('main a[href="#/webhooks/new"]');
    await page.locator('#webhook-form').waitFor();
    // A refused field comes back as the API's message, on the form.
    await page.fill('#webhook-form input[name=url]', 'ftp://example.com/x');
    await page.click('#webhook-form button[type=submit]');
    await page.locator('#form-error', { hasText: 'url' }).waitFor();

    await page.fill('#webhook-form input[name=url]', `${ui.receiver.url}/managed`);
    await page.fill('#webhook-form input[name=description]', 'managed from the console');
    await page.fill('#webhook-form input[name=event_types]', 'order.*, invoice.paid');
    await page.fill('#webhook-form input[name=max_attempts]', '3');
    await page.fill('#webhook-form input[name=initial_delay_ms]', '200');
    await page.fill('#webhook-form input[name=max_delay_ms]', '1000');
    await page.fill('#webhook-form input[name=timeout_ms]', '5000');
    await page.fill('#webhook-form input[name=max_concurrency]', '4');
    await page.click('#webhook-form button[type=submit]');

    await page.locator('#secret-once').waitFor();
    const id = webhookIdOf(page)!;
    expect(id).toBeDefined();
    const shown = await page.locator('#secret').innerText();
    expect(shown).toMatch(/^whsec_/);
    expect((await secrets(id)).current).toBe(shown);
    const stored = await ui.app.request('GET', `/webhooks/${id}`, { key: ui.tenant.apiKey });
    expect(stored.body).toMatchObject({
      url: `${ui.receiver.url}/managed`,
      description: 'managed from the console',
      event_types: ['order.*', 'invoice.paid'],
      retry_policy: { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 1000 },
      timeout_ms: 5000,
      max_concurrency: 4,
      enabled: true,
    });
    // Shown once: the same page again has no secret on it.
    await page.reload();
    await page.locator('#webhook-fields').waitFor();
    await expect(page.locator('#secret-once').count()).resolves.toBe(0);
    expect(await page.locator('main').innerText()).not.toContain(shown);

    // Edit: the form comes filled in; change two fields.
    await page.click(`main a[href="#/webhooks/${id}/edit"]`);
    await page.locator('#webhook-form').waitFor();
    await expect(page.inputValue('#webhook-form input[name=max_attempts]')).resolves.toBe('3');
    await page.fill('#webhook-form input[name=description]', 'renamed');
    await page.fill('#webhook-form input[name=event_types]', 'order.*');
    await page.click('#webhook-form button[type=submit]');
    await page.locator('#webhook-fields', { hasText: 'renamed' }).waitFor();
    const edited = await ui.app.request('GET', `/webhooks/${id}`, { key: ui.tenant.apiKey });
    expect(edited.body).toMatchObject({ description: 'renamed', event_types: ['order.*'], timeout_ms: 5000 });

    // Disable, then enable again.
    await page.click('#toggle-enabled');
    await page.locator('#toggle-enabled', { hasText: 'Enable' }).waitFor();
    expect((await ui.app.request('GET', `/webhooks/${id}`, { key: ui.tenant.apiKey })).body.enabled).toBe(
      false,
    );
    await page.click('#toggle-enabled');
    await page.locator('#toggle-enabled', { hasText: 'Disable' }).waitFor();
    expect((await ui.app.request('GET', `/webhooks/${id}`, { key: ui.tenant.apiKey })).body.enabled).toBe(
      true,
    );

    // Rotate: the new secret is shown once; the old one keeps signing beside it.
    await page.click('#rotate-secret');
    await page.locator('#secret-once').waitFor();
    const rotated = await page.locator('#secret').innerText();
    expect(rotated).not.toBe(shown);
    expect(await secrets(id)).toEqual({ current: rotated, previous: shown });
    await page.reload();
    await page.locator('#webhook-fields').waitFor();
    await expect(page.locator('#secret-once').count()).resolves.toBe(0);

    const { rows } = await ui.app.db.pool.query(
      `SELECT action FROM audit_log WHERE object_id = $1 ORDER BY id`,
      [id],
    );
    expect(rows.map((r) => r.action)).toEqual(
      expect.arrayContaining(['webhook.create', 'webhook.update', 'webhook.rotate_secret']),
    );
    await page.close();
  }, 120_000);

  it('sends a test event and shows the outcome, the response excerpt as text', async () => {
    const created = await ui.app.request('POST', '/webhooks', {
      key: ui.tenant.apiKey,
      body: { url: `${ui.receiver.url}/test-send`, event_types: ['nothing.*'] },
    });
    const page = await openConsole(`#/webhooks/${created.body.id}`);
    await page.locator('#test-form').waitFor();

    ui.receiver.status = 200;
    ui.receiver.body = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>accepted';
    const before = ui.receiver.received;
    await page.fill('#test-form input[name=type]', 'order.test');
    await page.fill('#test-form input[name=payload]', '{"hello": "world"}');
    await page.click('#test-form button[type=submit]');
    await page.locator('#test-result .status', { hasText: '200' }).waitFor();
    await expect(page.locator('#test-result pre').innerText()).resolves.toBe(ui.receiver.body);
    expect(ui.receiver.received).toBe(before + 1);

    ui.receiver.status = 503;
    ui.receiver.body = 'down for maintenance';
    await page.click('#test-form button[type=submit]');
    await page.locator('#test-result .status', { hasText: '503' }).waitFor();
    await expect(page.locator('#test-result').innerText()).resolves.toContain('failed');

    // A payload that is not JSON is caught before anything is sent.
    await page.fill('#test-form input[name=payload]', '{not json');
    await page.click('#test-form button[type=submit]');
    await page.locator('#test-result', { hasText: 'not valid JSON' }).waitFor();
    expect(ui.receiver.received).toBe(before + 2);

    expect(await page.evaluate('window.__xss')).toBeUndefined();
    expect(await page.locator('main img, main script').count()).toBe(0);
    await page.close();
  }, 120_000);

  it("draws the webhook's attempts per hour from the API's numbers, and shows HTML in its URL as text", async () => {
    ui.receiver.status = 200;
    const url = `${ui.receiver.url}/chart/<img/src=x/onerror=window.__xss=7>`;
    const created = await ui.app.request('POST', '/webhooks', {
      key: ui.tenant.apiKey,
      body: {
        url,
        description: '<script>window.__xss=9</script>',
        event_types: ['chart.*'],
        retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
      },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const send = async (n: number) => {
      const events = Array.from({ length: n }, (_, i) => ({ type: 'chart.tick', payload: { i } }));
      expect(
        (await ui.app.request('POST', '/events/batch', { key: ui.tenant.apiKey, body: { events } })).status,
      ).toBe(202);
    };
    const attempts = async () =>
      (
        await ui.app.db.pool.query(
          `SELECT count(*)::int AS n FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
            WHERE d.webhook_id = $1`,
          [id],
        )
      ).rows[0].n;
    await send(3);
    await waitFor(async () => (await attempts()) === 3, { what: '3 attempts', timeoutMs: 15_000 });
    ui.receiver.status = 500;
    await send(2);
    await waitFor(async () => (await attempts()) === 5, { what: '5 attempts', timeoutMs: 15_000 });

    const stats = await ui.app.request('GET', `/console/api/webhooks/${id}/stats?hours=24`, {
      key: ui.tenant.apiKey,
    });
    expect(stats.status).toBe(200);
    expect(stats.body.buckets).toHaveLength(24);
    const sum = (k: 'succeeded' | 'failed') => stats.body.buckets.reduce((n: number, b: any) => n + b[k], 0);
    expect([sum('succeeded'), sum('failed')]).toEqual([3, 2]);

    const page = await openConsole(`#/webhooks/${id}`);
    await page.locator('#attempts-chart').waitFor();
    const bars = await page
      .locator('#attempts-chart g.bar')
      .evaluateAll((gs) =>
        gs.map((g) => [Number(g.getAttribute('data-succeeded')), Number(g.getAttribute('data-failed'))]),
      );
    expect(bars).toHaveLength(24);
    expect(bars).toEqual(stats.body.buckets.map((b: any) => [b.succeeded, b.failed]));
    await expect(page.locator('#attempts-chart title').first().textContent()).resolves.toContain(
      '5 attempts in 24 h, 60.0 % succeeded',
    );

    await expect(page.locator('#webhook-url').innerText()).resolves.toBe(url);
    await expect(page.locator('#webhook-fields').innerText()).resolves.toContain(
      '<script>window.__xss=9</script>',
    );
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    expect(await page.locator('main img, main script').count()).toBe(0);
    await page.close();
  }, 120_000);

  it('the stats route keeps tenants apart and checks its input', async () => {
    const other = await ui.app.createTenant('not-yours');
    const created = await ui.app.request('POST', '/webhooks', {
      key: other.apiKey,
      body: { url: `${ui.receiver.url}/theirs` },
    });
    const path = `/console/api/webhooks/${created.body.id}/stats`;
    expect((await ui.app.request('GET', path, { key: ui.tenant.apiKey })).status).toBe(404);
    expect((await ui.app.request('GET', path, { key: other.apiKey })).status).toBe(200);
    expect((await ui.app.request('GET', path)).status).toBe(200);
    const bad = await ui.app.request('GET', `${path}?hours=0`, { key: other.apiKey });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('hours');
    expect((await ui.app.request('GET', `${path}?hours=169`, { key: other.apiKey })).status).toBe(400);
    expect(
      (await ui.app.request('GET', `/console/api/webhooks/nope/stats`, { key: other.apiKey })).status,
    ).toBe(400);
  }, 120_000);
});
