/**
 * SQL over every value sealed with the secrets key (src/security/secret-box.ts), for key rotation:
 * which keys are still in use (the start-up check) and re-sealing with the current key (the rekey
 * pass, src/maintenance/secrets-rekey.ts). A sealed value starts with MAGIC | key id, so the key in
 * use is read in SQL without opening anything.
 *
 * SEALED_WEBHOOK_COLUMNS is the one list of sealed columns of `webhooks`: a new sealed column is added
 * there, and the check, the inventory and the pass cover it.
 */
import type { Queryable } from '../db/pool.js';
import { SEALED_HEADER_BYTES, SEALED_MAGIC } from '../security/secret-box.js';

export const SEALED_WEBHOOK_COLUMNS = [
  'secret_ciphertext',
  'previous_secret_ciphertext',
  'client_key_ciphertext',
] as const;
export type SealedWebhookColumn = (typeof SEALED_WEBHOOK_COLUMNS)[number];

/** Every sealed value as one column `v`: the webhooks' sealed columns and the start-up check row. */
const ALL_SEALED = [
  ...SEALED_WEBHOOK_COLUMNS.map((c) => `SELECT ${c} AS v FROM webhooks WHERE ${c} IS NOT NULL`),
  'SELECT sealed AS v FROM secrets_key_check',
].join('\n UNION ALL ');

const HEADER = `substring(v FROM 1 FOR ${SEALED_HEADER_BYTES})`;

/** How many sealed values name each key id; keyId null: sealed before key ids existed. */
export async function countSealedByKey(db: Queryable): Promise<{ keyId: string | null; count: number }[]> {
  const { rows } = await db.query<{ keyId: string | null; count: number }>(
    `SELECT CASE WHEN substring(v FROM 1 FOR ${SEALED_MAGIC.length}) = $1
                 THEN encode(substring(v FROM ${SEALED_MAGIC.length + 1} FOR ${SEALED_HEADER_BYTES - SEALED_MAGIC.length}), 'hex')
            END AS "keyId",
            count(*)::int AS count
       FROM (${ALL_SEALED}) s
      GROUP BY 1
      ORDER BY 2 DESC`,
    [SEALED_MAGIC],
  );
  return rows;
}

/** Up to `limit` sealed values that do not start with any of `headers` (not sealed by those keys). */
export async function sealedValuesNotUnder(
  db: Queryable,
  headers: readonly Buffer[],
  limit: number,
): Promise<Buffer[]> {
  const { rows } = await db.query<{ v: Buffer }>(
    `SELECT v FROM (${ALL_SEALED}) s WHERE ${HEADER} <> ALL ($1::bytea[]) LIMIT $2`,
    [headers, limit],
  );
  return rows.map((r) => r.v);
}

export type SealedWebhookValues = { id: string } & Record<SealedWebhookColumn, Buffer | null>;

/**
 * The next `limit` webhooks after `afterId` (id order) with any sealed value not under `header`,
 * locked for the caller's transaction. In id order, as the recorder and PATCH lock webhooks, so the
 * pass and they cannot deadlock; they wait for each other for a moment at most.
 */
export async function lockWebhooksToReseal(
  db: Queryable,
  header: Buffer,
  afterId: string,
  limit: number,
): Promise<SealedWebhookValues[]> {
  const stale = SEALED_WEBHOOK_COLUMNS.map((c) => `substring(${c} FROM 1 FOR ${SEALED_HEADER_BYTES}) <> $1`);
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT id, ${SEALED_WEBHOOK_COLUMNS.join(', ')}
       FROM webhooks
      WHERE id > $2 AND (${stale.join(' OR ')})
      ORDER BY id
      LIMIT $3
        FOR NO KEY UPDATE`,
    [header, afterId, limit],
  );
  return rows as SealedWebhookValues[];
}

/** Writes re-sealed values (a column left out of an update keeps its value). Rows must be locked. */
export async function writeResealedWebhooks(
  db: Queryable,
  updates: readonly ({ id: string } & Partial<Record<SealedWebhookColumn, Buffer>>)[],
): Promise<void> {
  if (updates.length === 0) return;
  const params: unknown[] = [updates.map((u) => u.id)];
  const sets = SEALED_WEBHOOK_COLUMNS.map((c) => {
    params.push(updates.map((u) => u[c] ?? null));
    return `${c} = coalesce(u.${c}, w.${c})`;
  });
  const columns = SEALED_WEBHOOK_COLUMNS.map((c, i) => `$${i + 2}::bytea[]`);
  await db.query(
    `UPDATE webhooks w SET ${sets.join(', ')}
       FROM unnest($1::uuid[], ${columns.join(', ')}) AS u(id, ${SEALED_WEBHOOK_COLUMNS.join(', ')})
      WHERE w.id = u.id`,
    params,
  );
}

/** Replaces the check row's sealed text if it is still `old` (another pass may have done it). */
export async function resealKeyCheck(db: Queryable, old: Buffer, resealed: Buffer): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE secrets_key_check SET sealed = $2 WHERE sealed = $1', [
    old,
    resealed,
  ]);
  return (rowCount ?? 0) > 0;
}
