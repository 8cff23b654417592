/**
 * The PostgreSQL connection pool of this process, as gauges read on scrape (total, idle, waiting,
 * max) and a histogram of how long a connection took to get. A pool that makes requests wait is the
 * first sign of a database (or a pool) too small for the load: see runbooks/database-slow.md for the
 * sizing formula.
 */
import type pg from 'pg';
import { Gauge, Histogram, type Registry } from 'prom-client';

// Acquiring is sub-millisecond with an idle connection; opening one takes milliseconds; waiting for
// one when the pool is exhausted, up to seconds.
const ACQUIRE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

type Connect = pg.Pool['connect'];

/**
 * Registers the pool's gauges and times every connection acquisition: pool.connect is wrapped on this
 * instance, and pool.query goes through it too (pg-pool's query calls this.connect). Call once per pool.
 */
export function registerPoolMetrics(registry: Registry, pool: pg.Pool): void {
  const acquire = new Histogram({
    name: 'postbox_pg_pool_acquire_seconds',
    help: 'Time to get a connection from the PostgreSQL pool (idle connection, a new one, or waiting for one to be released).',
    buckets: ACQUIRE_BUCKETS,
    registers: [registry],
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge(
    'postbox_pg_pool_max',
    'Most connections the pool may open (DB_POOL_SIZE).',
    () => pool.options.max ?? 10,
  );
  gauge('postbox_pg_pool_total', 'Connections the pool has open (idle and in use).', () => pool.totalCount);
  gauge('postbox_pg_pool_idle', 'Open connections not in use.', () => pool.idleCount);
  gauge(
    'postbox_pg_pool_waiting',
    'Requests waiting for a connection because every one is in use and the pool is at its max.',
    () => pool.waitingCount,
  );

  onAcquire(pool, (seconds) => acquire.observe(seconds));
}

// Observers of each pool's acquisitions: the pool is wrapped once, however many registries watch it.
const observers = new WeakMap<pg.Pool, Set<(seconds: number) => void>>();

function onAcquire(pool: pg.Pool, observer: (seconds: number) => void): void {
  let set = observers.get(pool);
  if (!set) {
    const all = (set = new Set());
    observers.set(pool, all);
    const connect = pool.connect.bind(pool) as Connect;
    pool.connect = ((cb?: (err: Error | undefined, client: pg.PoolClient, done: () => void) => void) => {
      const started = performance.now();
      const observe = () => {
        const seconds = (performance.now() - started) / 1000;
        for (const o of all) o(seconds);
      };
      if (cb)
        return connect((err, client, done) => {
          observe();
          cb(err, client!, done);
        });
      return connect().then(
        (client) => {
          observe();
          return client;
        },
        (err: unknown) => {
          observe();
          throw err;
        },
      );
    }) as Connect;
  }
  set.add(observer);
}
