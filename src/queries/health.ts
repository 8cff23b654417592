/** SQL for readiness. */
import type { Queryable } from '../db/pool.js';

/** Newest migration applied (drizzle's journal time), or null if none. */
export async function appliedMigrationMillis(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ latest: string | null }>(
    'SELECT max(created_at)::text AS latest FROM drizzle.__drizzle_migrations',
  );
  return rows[0]?.latest ? Number(rows[0].latest) : null;
}
