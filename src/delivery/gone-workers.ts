/**
 * Noticing dead workers in seconds instead of a lease: every `intervalMs` this engine ends the leases
 * of workers whose presence lock is free (their process is gone; src/queries/workers.ts), then wakes
 * the workers so the next claim rescues those deliveries at once.
 *
 * A free lock also happens while a live worker reconnects after losing its session (a database
 * restart, pg_terminate_backend of every session). Then every session, this engine's included, was
 * lost together, so an engine whose own session is younger than `graceMs` does not judge others yet:
 * they get that long to reconnect and take their locks again.
 */
import type { Queryable } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { notifyDeliveriesDue } from '../queries/notify.js';
import { expireLeasesOfGoneWorkers } from '../queries/workers.js';

export interface GoneWorkerCheckOptions {
  pool: Queryable;
  logger: Logger;
  workerId: string;
  /** Date.now() when this engine's own presence session began; undefined while it is down. */
  sessionSince: () => number | undefined;
  /** Called after leases were ended (wake this engine's claimer). */
  onReleased: () => void;
  /** How often to look (default 1000 ms). */
  intervalMs?: number;
  /** Own session age before judging others (default 3000 ms). */
  graceMs?: number;
}

export class GoneWorkerCheck {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: GoneWorkerCheckOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.check().finally(() => (this.running = undefined));
    }, this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One look; public for tests. Never throws (the next tick tries again). */
  async check(): Promise<void> {
    const since = this.o.sessionSince();
    if (since === undefined || Date.now() - since < (this.o.graceMs ?? 3000)) return;
    try {
      const owners = await expireLeasesOfGoneWorkers(this.o.pool, this.o.workerId);
      if (owners.length === 0) return;
      this.o.logger.warn('leases of gone workers ended; their deliveries are claimable now', {
        workers: [...new Set(owners)],
        deliveries: owners.length,
      });
      await notifyDeliveriesDue(this.o.pool);
      this.o.onReleased();
    } catch (err) {
      this.o.logger.warn('checking for gone workers failed', { error: (err as Error).message });
    }
  }
}
