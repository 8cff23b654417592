/** /docs in headless Chromium: the static page renders every operation of /openapi.json. */
import { startTestApp, type TestApp } from '../helpers/app.js';
import { launchBrowser, type Browser } from '../helpers/console.js';

let app: TestApp;
let browser: Browser;

beforeAll(async () => {
  [app, browser] = await Promise.all([startTestApp(), launchBrowser()]);
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
});

test('renders one section per operation, with its method, path and answers', async () => {
  const doc = (await app.request('GET', '/openapi.json', { key: null })).body;
  const operations = Object.values<any>(doc.paths).flatMap((item) => Object.keys(item));
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${app.baseUrl}/docs/`);
  await page.waitForSelector('section.op', { timeout: 20_000 });
  expect(await page.locator('section.op').count()).toBe(operations.length);
  const test = page.locator('section#postWebhooksIdTest');
  await expect(test.locator('h3').innerText()).resolves.toBe('POST /webhooks/{id}/test');
  await expect(test.locator('details.response summary').first().innerText()).resolves.toMatch(/^200/);
  expect(await page.locator('#flash').isHidden()).toBe(true);
  expect(errors).toEqual([]);
  await page.close();
});
