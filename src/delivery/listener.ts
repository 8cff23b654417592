/**
 * Wake-up on NOTIFY: a dedicated connection LISTENs on DELIVERIES_CHANNEL (ingest and requeues notify
 * on commit), so an idle worker claims a new delivery within milliseconds instead of at the next
 * poll. Pool connections cannot LISTEN (a listen lasts as long as its session).
 *
 * If the connection drops, it reconnects with backoff and wakes the engine once connected again,
 * since notifications sent meanwhile are lost. The poll in the claimer covers the gap.
 *
 * The same session announces the worker: it holds the worker's presence lock (src/queries/workers.ts),
 * so the lock lives exactly as long as a session this process keeps open, and is taken again on
 * every reconnect.
 */
import pg from 'pg';
import type { Logger } from '../logger.js';
import { DELIVERIES_CHANNEL } from '../queries/notify.js';
import { announceWorker } from '../queries/workers.js';

export interface ListenerOptions {
  /** Where to connect (the same database as the pool). */
  connectionString: string;
  logger: Logger;
  /** Called on every notification and after each (re)connect. Must be cheap: it can fire thousands of times a second. */
  onWake: () => void;
  /** The worker id whose presence lock this session holds (absent: none). */
  workerId?: string;
  /** First reconnect delay; doubles up to reconnectMaxMs. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export class Listener {
  private client: pg.Client | undefined;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private since: number | undefined;

  constructor(private readonly o: ListenerOptions) {}

  /** True while a LISTEN connection is up. */
  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Date.now() when the current session was set up (LISTEN and presence), undefined while down. */
  get connectedSince(): number | undefined {
    return this.client === undefined ? undefined : this.since;
  }

  /** Connects once; on failure schedules retries and resolves anyway (polling still works). */
  start(): Promise<void> {
    this.connecting = this.connect();
    return this.connecting;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.o.connectionString,
      application_name: 'postbox-listener',
      // A silently dead TCP connection would otherwise leave the worker deaf until the next poll forever.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      if (this.client === client) this.client = undefined;
      client.removeAllListeners('notification');
      void client.end().catch(() => {});
      if (this.closed) return;
      this.o.logger.warn('delivery listener connection lost; reconnecting', { error: err?.message });
      this.scheduleReconnect();
    };
    client.on('error', drop);
    client.on('end', () => drop());
    client.on('notification', () => this.o.onWake());
    try {
      await client.connect();
      await client.query(`LISTEN ${DELIVERIES_CHANNEL}`);
      // A false here is a hash collision with another live worker's id (2^-32): this worker is then
      // only ever treated as alive, its leases expire the slow way.
      if (this.o.workerId !== undefined && !(await announceWorker(client, this.o.workerId)))
        this.o.logger.warn('worker presence lock is held by another session', { worker_id: this.o.workerId });
    } catch (err) {
      drop(err as Error);
      return;
    }
    if (this.closed || dropped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.since = Date.now();
    this.failures = 0;
    this.o.onWake(); // anything notified while we were not listening
  }

  private scheduleReconnect(): void {
    const min = this.o.reconnectMinMs ?? 100;
    const max = this.o.reconnectMaxMs ?? 5000;
    const delay = Math.min(max, min * 2 ** this.failures++);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.closed) this.connecting = this.connect();
    }, delay);
  }
}
