/**
 * The completer: collects attempt results and writes them in batches (one statement per batch, see
 * recordResults), so a busy worker makes a few writes a second instead of one per delivery.
 *
 * One flush at a time; results arriving meanwhile wait for the next. A failed flush (database away)
 * keeps its results and retries with backoff: until they are written the deliveries stay in_flight
 * under this worker's lease, and if the process dies first the lease runs out and they are sent again
 * (at-least-once), so nothing is lost either way.
 */
import type pg from 'pg';
import type { HealthPolicy } from '../config.js';
import type { Logger } from '../logger.js';
import { recordResults, type AttemptResult, type RecordSummary } from '../queries/deliveries.js';

export interface RecorderOptions {
  pool: pg.Pool;
  logger: Logger;
  /** lease_owner of this engine: writes apply only to rows still held under it. */
  workerId: string;
  /** Flush as soon as this many results wait. */
  maxBatch: number;
  /** Flush at most this long after the first waiting result arrived. */
  flushIntervalMs: number;
  /** Breaker and auto-disable thresholds, applied in the same statement as the results. */
  health: HealthPolicy;
  /**
   * Called after each successful flush with what it wrote (metrics, freeing claim slots) and when its
   * statement ran (epoch ms).
   */
  onFlushed?: (
    results: readonly AttemptResult[],
    summary: RecordSummary,
    timing: { startedAt: number; endedAt: number },
  ) => void;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/** Waits for `p`, but not past `deadline` (epoch ms). */
async function untilDeadline(p: Promise<unknown> | undefined, deadline: number): Promise<void> {
  if (!Number.isFinite(deadline)) return void (await p);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
  clearTimeout(timer);
}

export class Recorder {
  private waiting: AttemptResult[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private flushingCount = 0;
  /** A waiting result holds up a FIFO queue: write without waiting for flushIntervalMs. */
  private urgent = false;

  constructor(private readonly o: RecorderOptions) {}

  /** Results not yet written (waiting plus the batch being written). */
  get pending(): number {
    return this.waiting.length + this.flushingCount;
  }

  /**
   * `urgent`: the result of a FIFO head with deliveries behind it. Nothing of that webhook can be sent
   * until it is written, so it is written at once instead of after flushIntervalMs (batching buys
   * nothing there: one head per queue is in flight).
   */
  add(result: AttemptResult, urgent = false): void {
    this.waiting.push(result);
    this.urgent ||= urgent;
    if (this.flushing) return; // the running flush picks these up when it ends
    if (this.waiting.length >= this.o.maxBatch || this.urgent) this.startFlush();
    else this.timer ??= setTimeout(() => this.startFlush(), this.o.flushIntervalMs);
  }

  /** Writes everything added so far; resolves when written or when `deadline` (epoch ms) passes. */
  async drain(deadline = Number.POSITIVE_INFINITY): Promise<void> {
    while (this.pending > 0 && Date.now() < deadline) {
      if (!this.flushing) this.startFlush();
      await untilDeadline(this.flushing, deadline);
      // After a failure, back off before the next try (bounded by the deadline).
      const pause = Math.min(this.retryDelay(), deadline - Date.now());
      if (this.pending > 0 && pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
    if (this.pending > 0)
      this.o.logger.error('delivery results could not be written before shutdown; their leases will expire', {
        results: this.pending,
      });
  }

  /** Stops timers; whatever is unwritten stays unwritten (call drain first). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private startFlush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing || this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, this.o.maxBatch);
    this.urgent = false;
    this.flushingCount = batch.length;
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
      this.flushingCount = 0;
      if (this.waiting.length === 0) return;
      if (this.failures > 0) this.timer ??= setTimeout(() => this.startFlush(), this.retryDelay());
      else if (this.waiting.length >= this.o.maxBatch || this.urgent) this.startFlush();
      else this.timer ??= setTimeout(() => this.startFlush(), this.o.flushIntervalMs);
    });
  }

  private retryDelay(): number {
    return this.failures === 0 ? 0 : Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
  }

  private async write(batch: AttemptResult[]): Promise<void> {
    try {
      const startedAt = Date.now();
      const summary = await recordResults(this.o.pool, this.o.workerId, batch, this.o.health);
      this.failures = 0;
      this.o.onFlushed?.(batch, summary, { startedAt, endedAt: Date.now() });
    } catch (err) {
      this.failures++;
      // Put the batch back in front: these are older than anything added meanwhile.
      this.waiting.unshift(...batch);
      this.o.logger.error('writing delivery results failed; will retry', {
        error: (err as Error).message,
        results: batch.length,
        failures: this.failures,
      });
    }
  }
}
