/**
 * Sends batched operational notices: every `intervalMs`, due notice digests (dead deliveries per
 * webhook, exceeded quotas per tenant) become events. Runs in every worker process; the flush
 * statement skips rows another process holds, so several flushers never send a count twice.
 */
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { flushNoticeDigests } from '../queries/notices.js';

export interface NoticeFlusherOptions {
  pool: pg.Pool;
  logger: Logger;
  /** How often due digests are looked for (default 1 s): the delay of a first notice. */
  intervalMs?: number;
  /** At most one notice per subject per window (default 60 s); what happens meanwhile is counted. */
  windowMs?: number;
  /** Digests per flush statement (default 100); a full batch is followed by another at once. */
  batchSize?: number;
}

export interface NoticeFlusher {
  /** Runs one flush now (tests, shutdown); resolves with the digests sent. */
  flushNow(): Promise<number>;
  stop(): Promise<void>;
}

export const DEFAULT_NOTICE_WINDOW_MS = 60_000;

export function startNoticeFlusher(options: NoticeFlusherOptions): NoticeFlusher {
  const intervalMs = options.intervalMs ?? 1000;
  const windowMs = options.windowMs ?? DEFAULT_NOTICE_WINDOW_MS;
  const batchSize = options.batchSize ?? 100;
  let running: Promise<number> | undefined;
  let stopped = false;

  async function flushAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const sent = await flushNoticeDigests(options.pool, batchSize, windowMs);
      total += sent;
      if (sent < batchSize || stopped) return total;
    }
  }

  function flushNow(): Promise<number> {
    // One flush at a time per process: a tick that finds one running waits for it instead.
    running ??= flushAll().finally(() => (running = undefined));
    return running;
  }

  const timer = setInterval(() => {
    flushNow().catch((err: Error) => options.logger.warn('notice flush failed', { error: err.message }));
  }, intervalMs);
  timer.unref();

  return {
    flushNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
