/**
 * Start-up check of the secrets keys. Webhook secrets are sealed with them; with a missing key (a
 * changed SECRETS_KEY, DATA_DIR/secrets-key lost and regenerated, or a previous key retired before
 * `npm run secrets:rekey` re-sealed everything) those webhooks could not be signed, and every delivery
 * would fail later with a puzzling error. So start-up stops with one line naming SECRETS_KEY when:
 * - a sealed value names a key id that is not configured (counted per key id, in SQL), or one from
 *   before key ids does not open (a sample is tried), or
 * - the known text sealed on the first start does not open.
 * It also says, as warnings, what a rotation still has to do: values sealed with a previous key (run
 * the rekey pass) and previous keys nothing uses any more (remove them). See docs/security.md.
 */
import { ConfigError } from '../config.js';
import type { Queryable } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { sealedHeader, sealedKeyId, type SecretBox } from '../security/secret-box.js';
import {
  anySealedWebhookSecret,
  getSealedKeyCheck,
  insertSealedKeyCheck,
} from '../queries/secrets-key-check.js';
import { countSealedByKey, sealedValuesNotUnder } from '../queries/sealed-secrets.js';

const KNOWN_TEXT = 'postbox secrets key check v1';

/** Values sealed under no configured key id that are tried (legacy values, or a missing key's). */
const SAMPLE = 50;

function opens(box: SecretBox, sealed: Buffer, expected?: string): boolean {
  try {
    const text = box.decrypt(sealed);
    return expected === undefined || text === expected;
  } catch {
    return false;
  }
}

function configured(box: SecretBox): string {
  const previous = box.previousKeyIds.length > 0 ? box.previousKeyIds.join(', ') : 'none';
  return `SECRETS_KEY is key ${box.currentKeyId}, SECRETS_KEY_PREVIOUS holds ${previous}`;
}

function wrongKey(box: SecretBox, detail?: string): ConfigError {
  return new ConfigError(
    'SECRETS_KEY',
    'does not open the secrets stored in this database: set the key they were sealed with ' +
      '(SECRETS_KEY, or the file DATA_DIR/secrets-key when it is unset), or during a key rotation ' +
      `add it to SECRETS_KEY_PREVIOUS until npm run secrets:rekey has re-sealed them (${detail ? `${detail}; ` : ''}${configured(box)})`,
  );
}

/** What the database holds, per key id (null: sealed before key ids). */
export type SealedInventory = { keyId: string | null; count: number }[];

/**
 * Throws ConfigError('SECRETS_KEY', ...) unless every secret in the database opens with `box`'s keys.
 * Logs what a key rotation has left to do. Returns the inventory it read.
 */
export async function verifySecretsKey(
  db: Queryable,
  box: SecretBox,
  logger?: Logger,
): Promise<SealedInventory> {
  let sealed = await getSealedKeyCheck(db);
  if (!sealed) {
    // First start with the check (or a database from before it): existing secrets decide.
    const secret = await anySealedWebhookSecret(db);
    if (secret && !opens(box, secret)) throw wrongKey(box);
    await insertSealedKeyCheck(db, box.encrypt(KNOWN_TEXT));
    // Read back: a process starting at the same moment with another key may have won the insert.
    sealed = await getSealedKeyCheck(db);
  }

  const inventory = await countSealedByKey(db);
  const known = new Set(box.keyIds);
  const missing = inventory.filter((i) => i.keyId !== null && !known.has(i.keyId));
  if (missing.length > 0)
    throw wrongKey(box, missing.map((m) => `${m.count} sealed with key ${m.keyId}`).join(', '));
  // Values from before key ids (or whose random IV starts like a header): a sample must open.
  const unnamed = await sealedValuesNotUnder(db, box.keyIds.map(sealedHeader), SAMPLE);
  const unopened = unnamed.filter((v) => !opens(box, v));
  if (unopened.length > 0) {
    const ids = [...new Set(unopened.map((v) => sealedKeyId(v) ?? 'from before key ids'))];
    throw wrongKey(box, `some sealed with a key not configured (${ids.join(', ')})`);
  }
  if (!sealed || !opens(box, sealed, KNOWN_TEXT)) throw wrongKey(box);

  if (logger) reportRotation(inventory, box, logger);
  return inventory;
}

/** Warnings for a rotation under way: what still needs the rekey pass, which keys can go. */
function reportRotation(inventory: SealedInventory, box: SecretBox, logger: Logger): void {
  for (const { keyId, count } of inventory) {
    if (keyId === box.currentKeyId) continue;
    logger.warn(
      keyId === null
        ? 'secrets sealed before key ids: npm run secrets:rekey re-seals them with the current key'
        : 'secrets still sealed with a previous key: run npm run secrets:rekey, then remove the key from SECRETS_KEY_PREVIOUS',
      { key_id: keyId, count, current_key_id: box.currentKeyId },
    );
  }
  const used = new Set(inventory.map((i) => i.keyId));
  // Values from before key ids may be any key's: then no key is known to be unused.
  if (used.has(null)) return;
  for (const keyId of box.previousKeyIds)
    if (!used.has(keyId))
      logger.info('a SECRETS_KEY_PREVIOUS key seals nothing in this database any more: it can be removed', {
        key_id: keyId,
      });
}
