/**
 * Waking the delivery workers after ingest, coalesced.
 *
 * Why not pg_notify inside every ingest statement, as low-rate writers (replay, DLQ retry, re-enable)
 * do: PostgreSQL serialises every committing transaction that has sent a NOTIFY behind one
 * cluster-wide lock held until its commit record is flushed. One NOTIFY per ingest request therefore
 * caps ingest at one commit per WAL flush; measured here it cut concurrent ingest throughput by
 * 2-3x. So at most one wake-up is under way at a time, and commits that come meanwhile share the next:
 *
 * - an ingest statement about to start may *carry* the wake-up (INGEST_EVENTS_WAKING_SQL: pg_notify
 *   in its own transaction, delivered at its commit) when none is under way. That saves a statement
 *   per wake-up, and the carrier takes over any wake-up an earlier commit still owes, since it
 *   commits after it;
 * - a commit that queued deliveries while a wake-up was under way owes one: it is sent (standalone
 *   NOTIFY) when the one under way ends, unless a statement starting in the same turn carries it.
 *   A NOTIFY sent earlier would only wait for the carrier's commit, on that lock.
 *
 * The rows are committed before the wake-up is delivered, so a worker never wakes for rows it cannot
 * see; if a wake-up is lost, the workers' poll (POLL_INTERVAL_MS) finds the rows anyway.
 */
import { perPool, type Queryable } from '../db/pool.js';
import { notifyDeliveriesDue } from '../queries/notify.js';

/** What carry() decided for one statement. */
export interface Carry {
  /** The statement wakes the workers itself (then call carried() when it ends). */
  carry: boolean;
  /** ...even if it queues nothing: an earlier commit's wake-up was left to it. */
  always: boolean;
}

const NO_CARRY: Carry = { carry: false, always: false };

export class DeliveryWakeup {
  private sending: Promise<void> | undefined;
  private carrying = false;
  /** A commit needs a wake-up that is neither sent nor carried yet. */
  private owed = false;
  private deferred: Promise<void> | undefined;

  constructor(private readonly db: Queryable) {}

  /** After a commit that queued deliveries (and did not carry its wake-up): ask for one; returns at once. */
  request(): void {
    if (this.sending || this.carrying) {
      this.owed = true;
      return;
    }
    this.send();
  }

  /** For an ingest statement about to start: whether it carries the wake-up. */
  carry(): Carry {
    if (this.sending || this.carrying) return NO_CARRY;
    this.carrying = true;
    const always = this.owed;
    this.owed = false;
    return { carry: true, always };
  }

  /** The carrying statement ended; `committed` false if it failed (then what it carried is owed again). */
  carried(decision: Carry, committed: boolean): void {
    this.carrying = false;
    if (!committed && decision.always) this.owed = true;
    if (!this.owed || this.deferred) return;
    // A statement starting in this turn (the group commit's next) may carry it instead.
    this.deferred = new Promise<void>((resolve) =>
      setImmediate(() => {
        this.deferred = undefined;
        if (this.owed && !this.sending && !this.carrying) this.send();
        resolve();
      }),
    );
  }

  private send(): void {
    this.owed = false;
    this.sending = notifyDeliveriesDue(this.db)
      // A failed wake-up only delays delivery until the next poll; nothing to report to a producer.
      .catch(() => {})
      .finally(() => {
        this.sending = undefined;
        if (this.owed && !this.carrying) this.send();
      });
  }

  /** Resolves once no wake-up is being sent or about to be (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.sending || this.deferred) await (this.sending ?? this.deferred);
  }
}

/** The wake-up of a pool (one per pool, so coalescing spans every request using it). */
export const deliveryWakeupFor = perPool((pool: Queryable) => new DeliveryWakeup(pool));
