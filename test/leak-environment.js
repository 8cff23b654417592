// The test environment of `npm test`: node's, plus a check that fails a test file which leaves a
// server listening, a child process running, or a PostgreSQL pool or client not ended once its last
// afterAll has run (STYLE.md: a test run that leaks fails). What it finds is reported, then closed, so
// the next file in this worker starts clean.
//
// Servers and child processes are seen here, where node's own classes live (one copy per worker).
// pg pools and clients are tracked by test/leak-tracking.ts, which runs inside each test file's
// module registry: every file loads its own copy of pg.
import { ChildProcess } from 'node:child_process';
import { Server } from 'node:net';
import { relative } from 'node:path';
import { TestEnvironment } from 'jest-environment-node';

/**
 * @typedef {object} Tracked
 * @property {string} kind
 * @property {string} where   the test or source line that opened it
 * @property {() => boolean} isOpen
 * @property {() => Promise<void> | void} close
 */

/** The handles of the file running in this worker now: a worker runs one file at a time. */
/** @type {Map<object, Tracked> | undefined} */
let current;

/** `file:line` of a stack line, relative to the project. */
function place(line) {
  const at = /\(?((?:file:\/\/)?\/[^():]+):(\d+):\d+\)?$/.exec(line.trim());
  return at ? `${relative(process.cwd(), at[1].replace(/^file:\/\//, ''))}:${at[2]}` : line.trim();
}

/** Where in the project's own code a handle was opened, and from which test code if that is elsewhere. */
function origin() {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  const own = lines.filter((l) => !/node_modules|node:|leak-(environment|tracking)/.test(l));
  const first = own[0] ?? lines[0] ?? '';
  const fromTest = own.find((l) => l.includes(`${process.cwd()}/test/`));
  return fromTest && fromTest !== first ? `${place(first)} (from ${place(fromTest)})` : place(first);
}

/** @param {object} handle @param {Omit<Tracked, 'where'>} what */
function track(handle, what) {
  if (current && !current.has(handle)) current.set(handle, { ...what, where: origin() });
}

const PATCHED = Symbol.for('postbox.leakCheck');
function patchNodeOnce() {
  if (Server.prototype[PATCHED]) return;
  Server.prototype[PATCHED] = true;
  const listen = Server.prototype.listen;
  Server.prototype.listen = function (...args) {
    track(this, {
      kind: 'server',
      isOpen: () => this.listening,
      close: () => {
        this.closeAllConnections?.();
        return new Promise((resolve) => this.close(() => resolve()));
      },
    });
    return listen.apply(this, args);
  };
  const spawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function (...args) {
    track(this, {
      kind: `child process ${args[0]?.file ?? ''}`.trim(),
      isOpen: () => this.exitCode === null && this.signalCode === null,
      close: () => void this.kill('SIGKILL'),
    });
    return spawn.apply(this, args);
  };
}

export default class LeakCheckingEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    patchNodeOnce();
    /** @type {Map<object, Tracked>} */
    this.handles = new Map();
    // For test/leak-tracking.ts (inside the file's registry): pg pools and clients.
    this.global.__postboxTrackHandle = track;
  }

  async setup() {
    await super.setup();
    current = this.handles;
  }

  async teardown() {
    if (current === this.handles) current = undefined;
    await super.teardown();
  }

  /** After the last afterAll: whatever is still open is this file's leak. */
  async handleTestEvent(event, state) {
    if (event.name !== 'run_finish') return;
    const open = [...this.handles.values()].filter((h) => h.isOpen());
    this.handles.clear();
    if (open.length === 0) return;
    const list = open.map((h) => `  - ${h.kind}, opened at ${h.where}`).join('\n');
    const leak = new Error(
      `this test file left ${open.length} handle(s) open; close them in afterAll:\n${list}`,
    );
    leak.stack = leak.message; // where this check runs says nothing; where each was opened does
    state.unhandledErrors.push(leak);
    await Promise.all(open.map(async (h) => h.close())).catch(() => {});
  }
}
