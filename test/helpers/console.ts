/**
 * What the console tests share: Debian's Chromium driven by playwright-core, a tiny receiver whose
 * answer the test can switch (500 until told otherwise), and `useConsole`, the setup of a test file
 * that drives the console of a real instance.
 *
 *   const ui = useConsole('console-tenant');
 *   it('...', async () => {
 *     const page = await ui.openConsole();
 *     await ui.logIn(page);
 *   });
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestApp, type TestApp } from './app.js';

export const CHROMIUM = process.env.POSTBOX_TEST_CHROMIUM ?? '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile; fails with a clear message when it is not installed. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the console tests need it ` +
        '(apt-get install chromium, as .ci/run does; or set POSTBOX_TEST_CHROMIUM to its path)',
    );
  const profile = mkdtempSync(join(tmpdir(), 'postbox-console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Receiver {
  url: string;
  /** The status code the next requests get. */
  status: number;
  /** The body they get (text/html on purpose: the console must show it as text). */
  body: string;
  received: number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const receiver = { status: 500, body: 'receiver says no', received: 0 } as Receiver;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      receiver.received++;
      res.writeHead(receiver.status, { 'content-type': 'text/html' });
      res.end(receiver.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  receiver.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return receiver;
}

export interface ConsoleUnderTest {
  /** A real instance, API and workers (POLL_INTERVAL_MS 50, loopback receivers allowed). */
  readonly app: TestApp;
  readonly receiver: Receiver;
  readonly browser: Browser;
  /** A tenant created through the API for this file. */
  readonly tenant: { id: string; apiKey: string };
  /** A new page on /console/ + `hash`, not logged in; errors the page throws fail the test. */
  openConsole(hash?: string): Promise<Page>;
  /** Logs in on the console's form, with the file's tenant key unless told otherwise. */
  logIn(page: Page, key?: string): Promise<void>;
}

/**
 * Registers the hooks a console test file needs: before all, the instance, receiver, tenant and
 * Chromium; after each test, a check that no page threw (a bug in console.js); after all, closing them.
 */
export function useConsole(tenantName: string): ConsoleUnderTest {
  let app: TestApp | undefined;
  let receiver: Receiver | undefined;
  let browser: Browser | undefined;
  let tenant: { id: string; apiKey: string } | undefined;
  let pageErrors: Error[] = [];
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useConsole: used before its beforeAll ran');
    return value;
  };

  beforeAll(async () => {
    app = await startTestApp({
      POSTBOX_ROLE: 'all',
      SSRF_ALLOW_CIDRS: '127.0.0.0/8',
      POLL_INTERVAL_MS: '50',
    });
    receiver = await startReceiver();
    tenant = await app.createTenant(tenantName);
    browser = await launchBrowser();
  }, 60_000);

  afterEach(() => {
    const errors = pageErrors;
    pageErrors = [];
    expect(errors.map(String)).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await app?.close();
  });

  return {
    get app() {
      return ready(app);
    },
    get receiver() {
      return ready(receiver);
    },
    get browser() {
      return ready(browser);
    },
    get tenant() {
      return ready(tenant);
    },
    async openConsole(hash = '') {
      const page = await ready(browser).context.newPage();
      page.on('pageerror', (err) => pageErrors.push(err));
      await page.goto(`${ready(app).baseUrl}/console/${hash}`);
      return page;
    },
    async logIn(page, key = ready(tenant).apiKey) {
      await page.fill('#api-key', key);
      await page.click('#login-form button[type=submit]');
    },
  };
}
