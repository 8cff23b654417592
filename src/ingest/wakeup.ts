/**
 * Waking the delivery workers after ingest, coalesced.
 *
 * Why not pg_notify inside the ingest statement, as low-rate writers (replay, DLQ retry, re-enable)
 * do: PostgreSQL serialises every committing transaction that has sent a NOTIFY behind one
 * cluster-wide lock held until its commit record is flushed. One NOTIFY per ingest request therefore
 * caps ingest at one commit per WAL flush; measured here it cut concurrent ingest throughput by
 * 2-3x. So ingest commits without it, and this sends the wake-up afterwards, at most one in flight:
 * requests that arrive while one is being sent share the next. The rows are committed before the
 * wake-up is sent, so a worker still never wakes for rows it cannot see; if the wake-up is lost,
 * the workers' poll (POLL_INTERVAL_MS) finds the rows anyway.
 */
import { perPool, type Queryable } from '../db/pool.js';
import { notifyDeliveriesDue } from '../queries/notify.js';

export class DeliveryWakeup {
  private sending: Promise<void> | undefined;
  private again = false;

  constructor(private readonly db: Queryable) {}

  /** Ask for a wake-up; returns at once. */
  request(): void {
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = notifyDeliveriesDue(this.db)
      // A failed wake-up only delays delivery until the next poll; nothing to report to a producer.
      .catch(() => {})
      .finally(() => {
        this.sending = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  /** Resolves once no wake-up is being sent (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.sending) await this.sending;
  }
}

/** The wake-up of a pool (one per pool, so coalescing spans every request using it). */
export const deliveryWakeupFor = perPool((pool: Queryable) => new DeliveryWakeup(pool));
