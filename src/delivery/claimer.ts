/**
 * The producer: claims due deliveries only as fast as it has free slots (like River's producer) and
 * hands each to the executor. It claims when woken (NOTIFY), on the poll timer (future retries, lost
 * notifications, expired leases), and right after a full batch (there is probably more).
 *
 * Slots: a delivery holds one from its claim until its attempt ends; results waiting to be written
 * beyond one batch per slot hold slots too (heldElsewhere), so a slow database slows claiming instead
 * of piling results up in memory, without putting every flush on every delivery's critical path.
 *
 * Limits (webhooks.max_concurrency, the tenant's max_concurrent_deliveries, the circuit breaker) are
 * enforced inside claimDue, from the database, so they hold across processes. A claim that leaves due
 * rows behind because of them says so (heldBack): the next release of slots here claims again, and the
 * poll covers slots freed by other processes. A FIFO webhook's next delivery is held back the same way
 * until its head's result is written: that write claims again (fifoHeads), so a FIFO webhook is not
 * paced by the poll. A claim that met another process's claim of the same
 * tenant (contended) tries again shortly; a skip scan stopped at its cap resumes at once.
 *
 * Cooldown (River's FetchCooldown): after a claim of fewer than 16 rows that came back short with
 * nothing held back by the limits, the queue has run dry at a trickle, and the next wake-up claims no
 * sooner than `cooldownMs` after that claim began. At a steady trickle every ingest commit notifies,
 * and the claim is one statement of ~150 plan nodes whatever it takes: claiming per notification cost
 * PostgreSQL 1.3-2.5 ms per claim of 4-8 rows. A full claim (more is probably due), a claim of 16 rows
 * or more (a busy worker), rows held back by the limits (slots freeing up are worth a claim) and a
 * FIFO head's release (its queue waits on that claim) claim at once.
 */
import type pg from 'pg';
import type { Logger } from '../logger.js';
import {
  claimDue,
  type ClaimedDelivery,
  type ClaimResult,
  type DeadLettered,
} from '../queries/deliveries.js';
import { abortAttempt, attemptAbort, type AttemptAbort } from './attempt-abort.js';
import { DEFAULT_RETRY_POLICY } from './retry-policy.js';

export interface ClaimerOptions {
  pool: pg.Pool;
  logger: Logger;
  /** lease_owner written on claimed rows. */
  workerId: string;
  /** Deliveries this engine works on at once (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Most rows one claim takes (CLAIM_BATCH_SIZE). */
  batchSize: number;
  /** Claim lease (LEASE_SECONDS). */
  leaseSeconds: number;
  /** Claim at least this often when nothing wakes the engine (POLL_INTERVAL_MS). */
  pollIntervalMs: number;
  /** After a claim that ran dry at a trickle: the next starts no sooner than this after it. */
  cooldownMs: number;
  /** Runs one claimed delivery to a result (or to an abort); must not throw. */
  execute: (delivery: ClaimedDelivery, abort: AttemptAbort) => Promise<void>;
  /** Slots held outside the claimer: results waiting to be written. */
  heldElsewhere: () => number;
  /** Called after each claim (metrics). */
  onClaim?: (claimed: number, durationMs: number) => void;
  /** Called with the rows of each claim that took any, and when its statement ran (epoch ms): spans. */
  onClaimedRows?: (rows: readonly ClaimedDelivery[], startedAt: number, endedAt: number) => void;
  /** Rescued deliveries the claim dead-lettered because their lost attempts used up the policy. */
  onDeadLettered?: (deliveries: DeadLettered[]) => void;
}

/** Small claims (few free slots) are spaced at least this far apart, so a busy worker claims in batches. */
const SMALL_CLAIM_SPACING_MS = 5;
/** Only a claim that took fewer rows than this is followed by the cooldown. */
const COOLDOWN_BELOW_ROWS = 16;
/** After a claim lost a tenant to another process's claim: try again this long after (plus jitter). */
const CONTENDED_RETRY_MS = 10;

export class Claimer {
  private readonly running = new Map<string, AttemptAbort>();
  private readonly settled = new Set<Promise<void>>();
  private wanted = false;
  private stopped = false;
  private claiming: Promise<void> | undefined;
  private queued = false;
  private lastClaimAt = 0;
  /** The last claim ran dry at a trickle (see the cooldown above): the next waits out cooldownMs. */
  private ranDry = false;
  /** A FIFO head's result was written: its queue's next row is claimed without the cooldown. */
  private fifoReleased = false;
  private spacingTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly smallClaim: number;
  /** The last claim left due rows behind because of the limits: claim again when slots free up. */
  private heldBack = false;
  /** Where the next claim's skip scan over webhooks resumes. */
  private scanFrom: string | null = null;
  /** Where the next claim's scan over FIFO queues resumes. */
  private fifoScanFrom: string | null = null;
  /** Claimed FIFO heads with deliveries queued behind them, until their results are written. */
  private readonly fifoHeads = new Set<string>();

  constructor(private readonly o: ClaimerOptions) {
    this.smallClaim = Math.max(1, Math.min(o.batchSize, Math.floor(o.concurrency / 4)));
  }

  /** Deliveries being sent right now. */
  get inFlight(): number {
    return this.running.size;
  }

  start(): void {
    this.pollTimer = setInterval(() => this.wake(), this.o.pollIntervalMs);
    this.wake();
  }

  /** There may be due work: claim as soon as a slot is free. */
  wake(): void {
    this.wanted = true;
    this.schedule();
  }

  /**
   * Slots were freed (results written): rows the limits held back may be claimable now, and so is the
   * next delivery of a FIFO webhook whose head was among `written`.
   */
  released(written: readonly { deliveryId: string }[] = []): void {
    if (this.heldBack) this.wanted = true;
    for (const { deliveryId } of written)
      if (this.fifoHeads.delete(deliveryId)) this.wanted = this.fifoReleased = true;
    this.schedule();
  }

  /** Claims if work is wanted and slots are free. */
  schedule(): void {
    if (this.stopped || this.claiming || this.queued || !this.wanted) return;
    const free = this.freeSlots();
    if (free <= 0) return;
    const spacing =
      this.ranDry && !this.fifoReleased
        ? this.o.cooldownMs
        : free < this.smallClaim
          ? SMALL_CLAIM_SPACING_MS
          : 0;
    const wait = this.lastClaimAt + spacing - Date.now();
    if (wait > 0) {
      this.spacingTimer ??= setTimeout(() => {
        this.spacingTimer = undefined;
        this.schedule();
      }, wait);
      return;
    }
    // Coalesce everything that frees slots or wakes us within this tick into one claim.
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      if (this.stopped || this.claiming) return;
      this.claiming = this.claimOnce().finally(() => {
        this.claiming = undefined;
        this.schedule();
      });
    });
  }

  /** Stops claiming; resolves once a claim already under way has dispatched its rows. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.spacingTimer);
    clearTimeout(this.retryTimer);
    await this.claiming;
  }

  /** Resolves when nothing is in flight, or at `deadline` (epoch ms). */
  async idle(deadline: number): Promise<void> {
    while (this.settled.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.race(this.settled),
        new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
  }

  /** Aborts every attempt still in flight and waits (up to `deadline`) for them to settle. */
  async abortAll(deadline: number): Promise<void> {
    for (const abort of this.running.values()) abortAttempt(abort);
    await this.idle(deadline);
  }

  private freeSlots(): number {
    return this.o.concurrency - this.running.size - this.o.heldElsewhere();
  }

  private async claimOnce(): Promise<void> {
    const limit = Math.min(this.freeSlots(), this.o.batchSize);
    if (limit <= 0) return;
    this.wanted = false;
    this.fifoReleased = false;
    this.lastClaimAt = Date.now();
    let result: ClaimResult;
    try {
      result = await claimDue(this.o.pool, {
        workerId: this.o.workerId,
        limit,
        leaseSeconds: this.o.leaseSeconds,
        defaultMaxAttempts: DEFAULT_RETRY_POLICY.max_attempts,
        scanFrom: this.scanFrom,
        fifoScanFrom: this.fifoScanFrom,
      });
    } catch (err) {
      // The next poll tries again; no tight loop against a database that is down.
      this.o.logger.error('claiming deliveries failed', { error: (err as Error).message });
      return;
    }
    const { deliveries: rows, deadLettered: dead } = result;
    const endedAt = Date.now();
    this.o.onClaim?.(rows.length, endedAt - this.lastClaimAt);
    if (rows.length > 0) this.o.onClaimedRows?.(rows, this.lastClaimAt, endedAt);
    if (dead.length > 0) this.o.onDeadLettered?.(dead);
    this.scanFrom = result.scanNext;
    this.fifoScanFrom = result.fifoScanNext;
    this.heldBack = result.heldBack;
    // Short, nothing held back by the limits, and a trickle: the queue has run dry for now, and the
    // claim's fixed cost outweighs its rows. Claims of COOLDOWN_BELOW_ROWS or more never wait, so the
    // cooldown never caps a busy worker (at ~1,600 deliveries/s claims 10 ms apart hold 16 rows).
    const taken = rows.length + dead.length;
    this.ranDry = taken < limit && taken < COOLDOWN_BELOW_ROWS && !result.heldBack;
    // A full batch (dead-lettered rescues took room too), or webhooks left unscanned: probably more.
    if (taken >= limit || result.scanNext !== null || result.fifoScanNext !== null) this.wanted = true;
    else if (result.contended > 0) this.retrySoon();
    for (const row of rows) {
      if (row.fifoNext) this.fifoHeads.add(row.id);
      this.dispatch(row);
    }
  }

  /** Another process was claiming for the same tenant: its claim ends within milliseconds. */
  private retrySoon(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.wake();
      },
      CONTENDED_RETRY_MS + Math.floor(Math.random() * CONTENDED_RETRY_MS),
    );
  }

  private dispatch(delivery: ClaimedDelivery): void {
    const abort = attemptAbort();
    this.running.set(delivery.id, abort);
    const done: Promise<void> = this.o
      .execute(delivery, abort)
      .catch((err: unknown) => {
        this.o.logger.error('delivery attempt crashed', {
          delivery_id: delivery.id,
          error: (err as Error).message,
        });
      })
      .finally(() => {
        this.running.delete(delivery.id);
        this.settled.delete(done);
        this.schedule();
      });
    this.settled.add(done);
  }
}
