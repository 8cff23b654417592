/**
 * Group commit for ingest: concurrent POST /events requests share one statement and one commit.
 *
 * Why: every ingest statement is its own transaction, and each commit waits for a WAL flush. One
 * statement per request caps ingest at what the database can flush (and costs a round trip and a
 * plan per request); measured here, one statement per request reached ~1,100 events/s from 20
 * concurrent clients. Here requests that arrive while statements are running wait for the next
 * flush and go together, so there is no added delay when idle and batches grow with the load.
 *
 * One statement runs at a time unless enough events wait to make a second worth its fixed cost:
 * a single-event ingest statement costs ~0.5 ms of database CPU before its first row (executor
 * start-up, locks, commit), ~0.05 ms per further event. With two always allowed, 20 clients of
 * single events split into two half-size streams of statements: 0.65 transactions per request
 * instead of 0.36, and ~30 % more database CPU per event (docs/perf.md). Large batches still run
 * two at a time, which uses the second core (one at a time: 30 % fewer events/s).
 *
 * Semantics are those of running the requests one after another in arrival order: a repeated
 * idempotency key in a later request of the same flush gets the first request's answer. If a
 * combined statement fails, each request is tried on its own, so one request's bad data (an
 * unknown tenant, a value PostgreSQL refuses) fails only that request.
 */
import { isRequestSpecific } from '../db/errors.js';
import { perPool, type Queryable } from '../db/pool.js';
import { ingestEvents, type EventInput, type IngestResult } from './ingest.js';

export interface GroupCommitOptions {
  /** Most events in one combined statement. */
  maxEvents: number;
  /** Combined statements running at once (each holds a pool connection). */
  maxInFlight: number;
  /** Events waiting before a statement starts beside one already running. */
  parallelFrom: number;
}

interface Waiting {
  events: readonly EventInput[];
  resolve: (results: IngestResult[]) => void;
  reject: (err: unknown) => void;
}

export class IngestGroupCommit {
  private readonly queue: Waiting[] = [];
  private queuedEvents = 0;
  private inFlight = 0;

  constructor(
    private readonly db: Queryable,
    private readonly options: GroupCommitOptions = { maxEvents: 1000, maxInFlight: 2, parallelFrom: 100 },
  ) {}

  /** Ingests `events` (one request's worth), combined with whatever else is waiting. */
  ingest(events: readonly EventInput[]): Promise<IngestResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.queuedEvents += events.length;
      this.pump();
    });
  }

  private pump(): void {
    const { maxInFlight, parallelFrom } = this.options;
    while (
      this.queue.length > 0 &&
      (this.inFlight === 0 || (this.inFlight < maxInFlight && this.queuedEvents >= parallelFrom))
    ) {
      const group = this.takeGroup();
      this.inFlight++;
      void this.flush(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** Requests from the head of the queue, up to maxEvents (a larger single request goes alone). */
  private takeGroup(): Waiting[] {
    const group: Waiting[] = [this.queue.shift()!];
    let count = group[0]!.events.length;
    while (this.queue.length > 0 && count + this.queue[0]!.events.length <= this.options.maxEvents) {
      const next = this.queue.shift()!;
      count += next.events.length;
      group.push(next);
    }
    this.queuedEvents -= count;
    return group;
  }

  private async flush(group: Waiting[]): Promise<void> {
    if (group.length === 1) {
      const only = group[0]!;
      await ingestEvents(this.db, only.events).then(only.resolve, only.reject);
      return;
    }
    try {
      const results = await ingestEvents(
        this.db,
        group.flatMap((w) => w.events),
      );
      let offset = 0;
      for (const w of group) {
        w.resolve(results.slice(offset, offset + w.events.length));
        offset += w.events.length;
      }
    } catch (err) {
      // Anything but one request's data (the database gone, a timeout) fails every request alike, and
      // retrying could store twice.
      if (!isRequestSpecific(err)) {
        for (const w of group) w.reject(err);
        return;
      }
      // One request's data broke the statement (nothing was stored); which one is unknown, so each
      // goes on its own, in order.
      for (const w of group) await ingestEvents(this.db, w.events).then(w.resolve, w.reject);
    }
  }
}

/** The group commit of a pool: one per pool, so every request using it can share statements. */
export const ingestGroupCommitFor = perPool((pool: Queryable) => new IngestGroupCommit(pool));
