/**
 * Wires a Postbox instance together. Used by main.ts and by tests that need a real process-shaped
 * instance in-process.
 */
import type express from 'express';
import type pg from 'pg';
import { retentionPolicyOf, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createApp } from '../app.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.js';
import { runMigrations } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { deliveryEngineOptions, startDeliveryEngine, type DeliveryEngine } from '../delivery/engine.js';
import { startMaintenance } from '../maintenance/scheduler.js';
import { startNoticeFlusher, type NoticeFlusher } from '../operational/notice-flusher.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { deliveryMetricsHooks } from './delivery-metrics.js';
import { apiKeyPrefix, hashApiKey } from '../security/api-keys.js';
import { registerBootstrapKey } from '../queries/api-keys.js';
import { newId } from '../ids.js';
import { SecretBox } from '../security/secret-box.js';
import { loadAdminKey, loadSecretsKeys } from '../security/key-files.js';
import { verifySecretsKey } from './secrets-key-check.js';

export interface Postbox {
  app?: express.Express;
  pool: pg.Pool;
  databaseUrl: string;
  /** The delivery engine; absent when POSTBOX_ROLE=api. */
  engine?: DeliveryEngine;
  /** Prometheus registry and recording functions of this instance (served at GET /metrics). */
  metrics: Metrics;
  stop(): Promise<void>;
}

export async function startPostbox(config: Config, logger: Logger): Promise<Postbox> {
  const keys = loadSecretsKeys(config);
  const secretBox = new SecretBox(keys.current, keys.previous);
  const admin = loadAdminKey(config);
  if (admin.generatedAt) logger.info('generated the admin API key', { path: admin.generatedAt });

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.DATA_DIR, { onLog: (line) => logger.debug(line) });
    databaseUrl = embedded.url;
    logger.info('embedded PostgreSQL started', { data_dir: config.DATA_DIR });
  }
  // Whatever fails from here on (migrations, the key check, the scheduler, the engine), what was
  // already started is stopped again, so a failed start leaves no server or pool behind.
  let pool: pg.Pool | undefined;
  let maintenance: Awaited<ReturnType<typeof startMaintenance>> | undefined;
  let engine: DeliveryEngine | undefined;
  let notices: NoticeFlusher | undefined;
  let app: express.Express | undefined;
  let metrics: Metrics;
  try {
    await runMigrations(databaseUrl);
    pool = createPool(databaseUrl, config.DB_POOL_SIZE);
    await verifySecretsKey(pool, secretBox, logger);
    metrics = createMetrics({ pool });

    if (config.POSTBOX_ROLE !== 'worker') {
      await registerBootstrapKey(pool, {
        id: newId(),
        hash: hashApiKey(admin.key),
        prefix: apiKeyPrefix(admin.key),
      });
      app = createApp({
        config,
        pool,
        logger,
        secretBox,
        adminKeyHash: hashApiKey(admin.key),
        ...(admin.file ? { adminKeyFile: admin.file } : {}),
        metrics,
      });
    }

    if (config.POSTBOX_ROLE !== 'api') {
      // Scheduled maintenance (retention) runs wherever workers run; pg-boss picks one process per tick.
      maintenance = await startMaintenance({
        databaseUrl,
        pool,
        logger,
        retention: retentionPolicyOf(config),
        retentionCron: config.RETENTION_CRON,
      });
      notices = startNoticeFlusher({ pool, logger });
      engine = await startDeliveryEngine({
        ...deliveryEngineOptions(config, { pool, databaseUrl, secretBox, logger }),
        hooks: deliveryMetricsHooks(metrics),
      });
    }
  } catch (err) {
    await notices?.stop();
    await maintenance?.stop(0).catch(() => {});
    await pool?.end().catch(() => {});
    await embedded?.stop().catch(() => {});
    throw err;
  }
  const startedPool = pool;

  return {
    ...(app ? { app } : {}),
    ...(engine ? { engine } : {}),
    pool: startedPool,
    databaseUrl,
    metrics,
    async stop() {
      // The engine and maintenance before the pool: both still write through it. Side by side, so
      // the process stays within one grace period.
      await Promise.all([engine?.stop(), maintenance?.stop(config.SHUTDOWN_GRACE_MS), notices?.stop()]);
      await startedPool.end();
      await embedded?.stop();
    },
  };
}
