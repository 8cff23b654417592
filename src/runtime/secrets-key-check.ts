/**
 * Start-up check of the secrets key. Webhook secrets are sealed with it; with a different key (a
 * changed SECRETS_KEY, or DATA_DIR/secrets-key lost and regenerated) nothing could be signed, and
 * every delivery would fail later with a puzzling error. So start-up opens a known text sealed on the
 * first start and stops with one line naming SECRETS_KEY if it does not open.
 */
import { ConfigError } from '../config.js';
import type { Queryable } from '../db/pool.js';
import type { SecretBox } from '../security/secret-box.js';
import {
  anySealedWebhookSecret,
  getSealedKeyCheck,
  insertSealedKeyCheck,
} from '../queries/secrets-key-check.js';

const KNOWN_TEXT = 'postbox secrets key check v1';

function opens(box: SecretBox, sealed: Buffer, expected?: string): boolean {
  try {
    const text = box.decrypt(sealed);
    return expected === undefined || text === expected;
  } catch {
    return false;
  }
}

function wrongKey(): ConfigError {
  return new ConfigError(
    'SECRETS_KEY',
    'does not open the secrets stored in this database: set the key they were sealed with ' +
      '(SECRETS_KEY, or the file DATA_DIR/secrets-key when it is unset)',
  );
}

/** Throws ConfigError('SECRETS_KEY', ...) unless `box` holds the key this database's secrets use. */
export async function verifySecretsKey(db: Queryable, box: SecretBox): Promise<void> {
  let sealed = await getSealedKeyCheck(db);
  if (!sealed) {
    // First start with the check (or a database from before it): existing secrets decide.
    const secret = await anySealedWebhookSecret(db);
    if (secret && !opens(box, secret)) throw wrongKey();
    await insertSealedKeyCheck(db, box.encrypt(KNOWN_TEXT));
    // Read back: a process starting at the same moment with another key may have won the insert.
    sealed = await getSealedKeyCheck(db);
  }
  if (!sealed || !opens(box, sealed, KNOWN_TEXT)) throw wrongKey();
}
