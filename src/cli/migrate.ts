/**
 * `npm run db:migrate`: applies pending migrations and exits, starting nothing else. Run it before a
 * rolling upgrade so new processes find the schema ready (every process also migrates on start,
 * under the same advisory lock, so running it twice is harmless).
 *
 * With DATABASE_URL it migrates that database; without it, the embedded one under DATA_DIR (started
 * for the migration and stopped again).
 */
import { ConfigError, loadConfig } from '../config.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { latestMigrationMillis, runMigrations } from '../db/migrate.js';
import { createLogger } from '../logger.js';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(config.DATA_DIR);
  try {
    await runMigrations(config.DATABASE_URL ?? embedded!.url);
    logger.info('migrations applied', {
      database: config.DATABASE_URL ? 'DATABASE_URL' : 'embedded',
      latest: new Date(latestMigrationMillis()).toISOString(),
    });
    return 0;
  } catch (err) {
    logger.error('migrations failed', { error: (err as Error).message });
    return 1;
  } finally {
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`db:migrate failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
