/** SQL for the start-up check of the secrets key (see src/runtime/secrets-key-check.ts). */
import type { Queryable } from '../db/pool.js';

/** The sealed known text, if a start has stored it. */
export async function getSealedKeyCheck(db: Queryable): Promise<Buffer | undefined> {
  const { rows } = await db.query<{ sealed: Buffer }>('SELECT sealed FROM secrets_key_check');
  return rows[0]?.sealed;
}

/** Stores the sealed known text unless another process got there first (the table holds one row). */
export async function insertSealedKeyCheck(db: Queryable, sealed: Buffer): Promise<void> {
  await db.query('INSERT INTO secrets_key_check (sealed) VALUES ($1) ON CONFLICT (id) DO NOTHING', [sealed]);
}

/** One stored webhook secret, any: databases from before the check table still prove their key. */
export async function anySealedWebhookSecret(db: Queryable): Promise<Buffer | undefined> {
  const { rows } = await db.query<{ sealed: Buffer }>(
    'SELECT secret_ciphertext AS sealed FROM webhooks LIMIT 1',
  );
  return rows[0]?.sealed;
}
