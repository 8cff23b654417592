/**
 * `npm run secrets:rekey`: the re-encryption pass of a SECRETS_KEY rotation (src/maintenance/
 * secrets-rekey.ts). Re-seals every secret with SECRETS_KEY, opening each with whichever of SECRETS_KEY
 * and SECRETS_KEY_PREVIOUS sealed it; safe while Postbox runs and delivers, and a no-op when run again.
 * The whole procedure is in docs/security.md.
 *
 * With DATABASE_URL it works on that database. Without it, on the embedded one under DATA_DIR: the
 * running instance's server when Postbox is up, else one started for the pass and stopped again.
 *
 * Exit codes: 0 done (nothing left under another key), 1 something is left (see the report), 2 bad
 * configuration.
 */
import { ConfigError, loadConfig } from '../config.js';
import { runningEmbeddedUrl, startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.js';
import { createPool } from '../db/pool.js';
import { createLogger } from '../logger.js';
import { rekeySecrets } from '../maintenance/secrets-rekey.js';
import { loadSecretsKeys } from '../security/key-files.js';
import { SecretBox } from '../security/secret-box.js';

async function main(): Promise<number> {
  let config;
  let box;
  try {
    config = loadConfig();
    const keys = loadSecretsKeys(config);
    box = new SecretBox(keys.current, keys.previous);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL ?? runningEmbeddedUrl(config.DATA_DIR);
  if (!url) {
    embedded = await startEmbeddedPostgres(config.DATA_DIR);
    url = embedded.url;
  }
  const pool = createPool(url, 2);
  try {
    logger.info('re-sealing secrets with SECRETS_KEY', {
      current_key_id: box.currentKeyId,
      previous_key_ids: box.previousKeyIds,
    });
    const report = await rekeySecrets(pool, box, { logger });
    const done = report.remaining === 0 && report.unopenable === 0;
    const summary = {
      current_key_id: report.currentKeyId,
      resealed: report.resealed,
      webhooks: report.webhooks,
      unopenable: report.unopenable,
      remaining: report.remaining,
    };
    if (done)
      logger.info('every secret is sealed with SECRETS_KEY: the previous keys can be removed', summary);
    else
      logger.warn(
        'secrets remain under other keys: configure the key that opens them, or run the pass again ' +
          '(a process still sealing with an old SECRETS_KEY writes new ones)',
        summary,
      );
    return done ? 0 : 1;
  } finally {
    await pool.end();
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`secrets:rekey failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
