/**
 * A real Postbox instance per test file: its own cloned database, the real start-up path
 * (startPostbox with DATABASE_URL), an HTTP server on 127.0.0.1:0, and small request helpers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { startPostbox, type Postbox, type StartOptions } from '../../src/runtime/postbox.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
export const SECRETS_KEY = 'a'.repeat(64);

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  /** Sent as-is instead of JSON-encoding `body`. */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface TestApp {
  baseUrl: string;
  /** This instance's DATA_DIR (generated keys live here when not given in the environment). */
  dataDir: string;
  db: TestDatabase;
  postbox: Postbox;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  /** Creates a tenant with the admin key; returns its id and API key. */
  createTenant(name?: string, quotas?: Record<string, number>): Promise<{ id: string; apiKey: string }>;
  close(): Promise<void>;
}

/** `logger`: where the instance logs (default: nowhere); a test that checks log lines passes its own. */
export async function startTestApp(
  env: Record<string, string> = {},
  logger: Logger = silentLogger(),
  start: StartOptions = {},
): Promise<TestApp> {
  return startTestAppOn(await createTestDatabase(), env, true, logger, start);
}

/**
 * Another instance on an existing test database (e.g. `first.db`), as a second Postbox process
 * sharing it would be. Its close() leaves the database to its owner.
 */
export async function startTestAppOn(
  db: TestDatabase,
  env: Record<string, string> = {},
  ownsDatabase = false,
  logger: Logger = silentLogger(),
  start: StartOptions = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postbox-test-data-'));
  const config = loadConfig({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    SECRETS_KEY,
    POSTBOX_ROLE: 'api',
    LOG_LEVEL: 'error',
    ...env,
  });
  const postbox = await startPostbox(config, logger, start);
  const server: Server = createServer(postbox.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  async function request<T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    const key = options.key === undefined ? ADMIN_KEY : options.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let body: string | undefined = options.rawBody;
    if (body === undefined && options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      headers['content-type'] = 'application/json';
    const res = await fetch(baseUrl + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  return {
    baseUrl,
    dataDir,
    db,
    postbox,
    request,
    async createTenant(name = 'acme', quotas) {
      const res = await request<any>('POST', '/tenants', { body: quotas ? { name, quotas } : { name } });
      if (res.status !== 201) throw new Error(`createTenant: ${res.status} ${JSON.stringify(res.body)}`);
      return { id: res.body.id, apiKey: res.body.api_key };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await postbox.stop();
      if (ownsDatabase) await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
