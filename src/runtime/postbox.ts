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
import { startTracing, type Tracing } from '../observability/tracing.js';
import { USER_AGENT } from '../delivery/sender.js';
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
  /** OpenTelemetry tracing of this instance (TRACING_OFF unless configured). */
  tracing: Tracing;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Tracing to use instead of the one the configuration implies (tests: an in-memory exporter). */
  tracing?: Tracing;
}

/** Spans still buffered at shutdown get this long to reach the collector; an absent one cannot hold the stop up. */
const TRACE_FLUSH_MS = 3000;

export async function startPostbox(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<Postbox> {
  // First, before anything holding resources: tracing holds none (no timer) until a span is made.
  const tracing =
    options.tracing ?? (await startTracing(config, { version: USER_AGENT.replace('Postbox/', '') }));
  if (tracing.target)
    logger.info('tracing: spans are exported over OTLP', {
      endpoint: withoutCredentials(tracing.target.url),
      protocol: tracing.target.protocol,
    });
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
        tracing,
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
        tracing,
      });
    }
  } catch (err) {
    await notices?.stop();
    await maintenance?.stop(0).catch(() => {});
    await pool?.end().catch(() => {});
    await embedded?.stop().catch(() => {});
    await tracing.shutdown().catch(() => {});
    throw err;
  }
  const startedPool = pool;

  return {
    ...(app ? { app } : {}),
    ...(engine ? { engine } : {}),
    pool: startedPool,
    databaseUrl,
    metrics,
    tracing,
    async stop() {
      // The engine and maintenance before the pool: both still write through it. Side by side, so
      // the process stays within one grace period.
      await Promise.all([engine?.stop(), maintenance?.stop(config.SHUTDOWN_GRACE_MS), notices?.stop()]);
      await startedPool.end();
      await flushTraces(tracing, logger);
      await embedded?.stop();
    },
  };
}

/** Exports the spans still buffered, within TRACE_FLUSH_MS; a failure is logged, never thrown. */
async function flushTraces(tracing: Tracing, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      tracing.shutdown(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not done within ${TRACE_FLUSH_MS} ms`)), TRACE_FLUSH_MS);
      }),
    ]);
  } catch (err) {
    logger.warn('exporting the last spans failed', { error: (err as Error).message });
  } finally {
    clearTimeout(timer);
  }
}

/** A URL fit for a log line: user and password left out. */
function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
