/**
 * SQL for producer roles: database roles that may call postbox.emit and nothing else (no table
 * privilege; emit is SECURITY DEFINER). docs/producers.md shows the same statements for operators
 * who prefer psql.
 */
import { escapeIdentifier, escapeLiteral } from 'pg';
import type { Queryable } from '../db/pool.js';

/** A plain lower-case identifier, so the role name needs no quoting in psql either. */
export const PRODUCER_ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates a LOGIN role with `password` (when given) and grants it EXECUTE on postbox.emit. Run by
 * the role that owns the Postbox schema, which needs CREATEROLE (or superuser).
 */
export async function createProducerRole(db: Queryable, name: string, password?: string): Promise<void> {
  if (!PRODUCER_ROLE_NAME.test(name)) throw new Error(`role name must match ${PRODUCER_ROLE_NAME}`);
  const role = escapeIdentifier(name);
  await db.query(
    `CREATE ROLE ${role} LOGIN${password === undefined ? '' : ` PASSWORD ${escapeLiteral(password)}`}`,
  );
  await grantEmit(db, name);
}

/** Grants an existing role what emitting needs: USAGE on the schema and EXECUTE on postbox.emit. */
export async function grantEmit(db: Queryable, name: string): Promise<void> {
  const role = escapeIdentifier(name);
  await db.query(`GRANT USAGE ON SCHEMA postbox TO ${role}`);
  await db.query(`GRANT EXECUTE ON FUNCTION postbox.emit TO ${role}`);
}
