/** The PostgreSQL pool and the transaction helper everything else uses. */
import pg from 'pg';

export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export function createPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: 'postbox' });
  // An idle client can lose its connection (server restart); without a listener that is a crash.
  pool.on('error', () => {});
  return pool;
}

/** Runs fn in one transaction: COMMIT if it resolves, ROLLBACK (and rethrow) if it throws. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Runs fn while holding a session advisory lock on a connection of the pool, so that processes
 * starting together do one-time setup one at a time.
 */
export async function withAdvisoryLock<T>(pool: pg.Pool, key: number, fn: () => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [key]);
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [key]);
    }
  } finally {
    client.release();
  }
}

/**
 * One T per pool, made on first use: for state that must be shared by every request using the same
 * pool (coalescing queues), without threading it through every caller.
 */
export function perPool<P extends object, T>(make: (pool: P) => T): (pool: P) => T {
  const made = new WeakMap<P, T>();
  return (pool) => {
    let value = made.get(pool);
    if (value === undefined) {
      value = make(pool);
      made.set(pool, value);
    }
    return value;
  };
}
