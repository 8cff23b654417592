/**
 * Real Postbox processes for crash and shutdown tests: `node --import tsx src/main.ts` with its own
 * environment (tsx runs the source as it is, so no build step and no shared dist/ to race on).
 *
 * Readiness is a log line, never a sleep. Every child is tracked: `killAllPostboxes()` (call it in
 * afterAll) SIGKILLs whatever is still running, and a process 'exit' hook does the same if the test
 * runner dies first, so no worker outlives its test file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Queryable } from '../../src/db/pool.js';
import { ADMIN_KEY, SECRETS_KEY } from './app.js';

export interface LogLine {
  level?: string;
  message?: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from the first signal sent by `signal()` to the exit. */
  afterSignalMs: number | null;
}

export interface PostboxProcess {
  readonly pid: number;
  readonly name: string;
  /** Every JSON log line so far (non-JSON lines are kept as {message}). */
  readonly logs: LogLine[];
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  readonly running: boolean;
  /** Resolves with the first log line (past or future) matching; rejects on exit or timeout. */
  waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  /** The last lines of output, for failure messages. */
  tail(lines?: number): string;
}

export interface SpawnOptions {
  /** Environment on top of the defaults (POSTBOX_ROLE=worker, SSRF_ALLOW_CIDRS=127.0.0.0/8, ...). */
  env?: Record<string, string>;
  /** A log message that means "ready"; default: the delivery engine's start line. */
  readyMessage?: string | ((line: LogLine) => boolean);
  readyTimeoutMs?: number;
  name?: string;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
}

/** The engine's start-up log line (src/delivery/engine.ts). */
export const ENGINE_READY = (line: LogLine) => line.message === 'delivery engine started';

export async function spawnPostbox(databaseUrl: string, options: SpawnOptions = {}): Promise<PostboxProcess> {
  installExitHook();
  const dataDir = mkdtempSync(join(tmpdir(), 'postbox-proc-'));
  const name = options.name ?? 'postbox';
  // A clean environment: nothing from the test runner leaks in except what node needs to start.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dataDir,
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    SECRETS_KEY, // the same key the API-only test instance seals webhook secrets with
    POSTBOX_ROLE: 'worker',
    // Worker processes serve /health, /ready and /metrics too: any free port, so several can run.
    PORT: '0',
    SSRF_ALLOW_CIDRS: '127.0.0.0/8',
    LEASE_SECONDS: '5',
    POLL_INTERVAL_MS: '50',
    LOG_LEVEL: 'info',
    ...options.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: process.cwd(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);

  const logs: LogLine[] = [];
  const raw: string[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  let signalledAt: number | null = null;
  let running = true;

  const onLine = (text: string) => {
    raw.push(text);
    if (raw.length > 2000) raw.shift();
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { message: text };
    }
    logs.push(line);
    for (const l of listeners) l(line);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);

  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      running = false;
      children.delete(child);
      rmSync(dataDir, { recursive: true, force: true });
      resolve({ code, signal, afterSignalMs: signalledAt === null ? null : Date.now() - signalledAt });
    });
  });

  const tail = (n = 30) => raw.slice(-n).join('\n');

  const proc: PostboxProcess = {
    pid: child.pid!,
    name,
    logs,
    exited,
    get running() {
      return running;
    },
    waitForLog(match, timeoutMs = 20_000) {
      const test = typeof match === 'string' ? (l: LogLine) => l.message === match : match;
      const seen = logs.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise<LogLine>((resolve, reject) => {
        const done = () => {
          listeners.delete(listener);
          clearTimeout(timer);
        };
        const listener = (line: LogLine) => {
          if (test(line)) {
            done();
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no matching log line within ${timeoutMs} ms; last output:\n${tail()}`));
        }, timeoutMs);
        listeners.add(listener);
        void exited.then((exit) => {
          if (!listeners.has(listener)) return;
          done();
          reject(
            new Error(`${name} exited (${exit.code ?? exit.signal}) before the log line; output:\n${tail()}`),
          );
        });
      });
    },
    signal(signal) {
      signalledAt ??= Date.now();
      if (running) child.kill(signal);
    },
    tail,
  };

  try {
    await proc.waitForLog(options.readyMessage ?? ENGINE_READY, options.readyTimeoutMs ?? 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  return proc;
}

/** SIGKILLs every child still running and waits for them to be gone. */
export async function killAllPostboxes(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(new Promise((resolve) => child.once('exit', resolve)));
      child.kill('SIGKILL');
    }
  }
  await Promise.all(waits);
}

/**
 * The PostgreSQL backends serving a process's TCP connections: the local ports of its sockets (its fds,
 * matched to /proc/net/tcp and tcp6 by inode) looked up as pg_stat_activity.client_port. Linux only,
 * as are the fault tests that freeze processes.
 */
export async function backendPidsOf(db: Queryable, pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (socket) inodes.add(socket[1]!);
    } catch {
      // closed between the listing and the read
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/); // sl local_address rem_address st ... uid timeout inode
      if (fields.length > 9 && inodes.has(fields[9]!)) ports.push(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  const { rows } = await db.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])',
    [ports],
  );
  return rows.map((r) => r.pid);
}
