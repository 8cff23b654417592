/**
 * The re-encryption pass of a SECRETS_KEY rotation (`npm run secrets:rekey`, src/cli/secrets-rekey.ts):
 * every sealed value not sealed with the current key is opened with whichever configured key sealed it
 * and sealed again with the current one.
 *
 * - Batched: `batchSize` webhooks per transaction, in id order (keyset), each batch locked only for the
 *   microseconds of re-sealing, so deliveries, the recorder and API calls go on beside it.
 * - Idempotent: values already under the current key are never selected; a second run does nothing.
 * - Safe while running: rows are locked while read and written, so a concurrent rotate-secret or PATCH
 *   either lands before (and is re-sealed) or after (and was sealed by the API, with its key). Every
 *   process must already know the new key (docs/security.md, step 1) before this runs.
 * - Values no configured key opens are left as they are and counted (`unopenable`).
 */
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import type { Logger } from '../logger.js';
import type { SecretBox } from '../security/secret-box.js';
import { countSealedByKey } from '../queries/sealed-secrets.js';
import {
  SEALED_WEBHOOK_COLUMNS,
  lockWebhooksToReseal,
  resealKeyCheck,
  writeResealedWebhooks,
  type SealedWebhookColumn,
} from '../queries/sealed-secrets.js';
import { getSealedKeyCheck } from '../queries/secrets-key-check.js';
import { sealedHeader } from '../security/secret-box.js';

export interface RekeyReport {
  /** The key everything is now sealed with. */
  currentKeyId: string;
  /** Sealed values re-sealed by this pass (webhook columns and the check row). */
  resealed: number;
  /** Webhooks whose row this pass wrote. */
  webhooks: number;
  /** Values no configured key opens: left alone. */
  unopenable: number;
  /** Sealed values under a key other than the current one after the pass (0 when done). */
  remaining: number;
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export async function rekeySecrets(
  pool: pg.Pool,
  box: SecretBox,
  options: { batchSize?: number; logger?: Logger } = {},
): Promise<RekeyReport> {
  const batchSize = options.batchSize ?? 500;
  const header = sealedHeader(box.currentKeyId);
  const report: RekeyReport = {
    currentKeyId: box.currentKeyId,
    resealed: 0,
    webhooks: 0,
    unopenable: 0,
    remaining: 0,
  };

  let afterId = NIL_UUID;
  for (;;) {
    const batch = await withTransaction(pool, async (tx) => {
      const rows = await lockWebhooksToReseal(tx, header, afterId, batchSize);
      const updates = rows.flatMap((row) => {
        const update: { id: string } & Partial<Record<SealedWebhookColumn, Buffer>> = { id: row.id };
        for (const column of SEALED_WEBHOOK_COLUMNS) {
          const sealed = row[column];
          if (!sealed || box.isCurrent(sealed)) continue;
          try {
            update[column] = box.reseal(sealed);
            report.resealed++;
          } catch {
            report.unopenable++;
          }
        }
        return Object.keys(update).length > 1 ? [update] : [];
      });
      await writeResealedWebhooks(tx, updates);
      report.webhooks += updates.length;
      return rows;
    });
    if (batch.length === 0) break;
    afterId = batch[batch.length - 1]!.id;
    options.logger?.info('secrets re-sealed', { through_webhook: afterId, resealed: report.resealed });
  }

  const check = await getSealedKeyCheck(pool);
  if (check && !box.isCurrent(check)) {
    try {
      if (await resealKeyCheck(pool, check, box.reseal(check))) report.resealed++;
    } catch {
      report.unopenable++;
    }
  }

  report.remaining = (await countSealedByKey(pool))
    .filter((i) => i.keyId !== box.currentKeyId)
    .reduce((n, i) => n + i.count, 0);
  return report;
}
