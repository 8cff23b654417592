/**
 * Once-per-cluster maintenance jobs on pg-boss. Every worker process starts a scheduler; pg-boss keeps
 * the schedules and job rows in its own `pgboss` schema and hands each cron tick to exactly one
 * process, so adding workers never runs a job twice.
 *
 * Jobs:
 * - postbox-retention (RETENTION_CRON, daily by default): runRetention with the RETENTION_*_DAYS policy.
 * - postbox-partitions (hourly): today's and the next days' partitions of delivery_attempts created
 *   ahead, days past the attempt retention dropped. Also run once at start-up, so a fresh install has
 *   today's partition before the first attempt is written. Hourly although a partition is needed only
 *   once a day: a run that could not get its lock in time is retried within the hour, not the next day.
 * - postbox-client-certificates (hourly): webhooks' mTLS client certificates that entered the 14-day
 *   warning window or expired tell their tenant once (client-certificates.ts). Also run at start-up,
 *   where it also stores the expiry of certificates registered before it was kept in a column.
 *
 * Lease rescue is deliberately not a job: a delivery whose worker died keeps status in_flight with a
 * lease_expires_at in the past, and the delivery claim takes such rows like due pending ones. Rescue
 * thus happens within one poll interval of the lease running out, with no scheduler in the path.
 */
import PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Logger } from '../logger.js';
import type { RetentionPolicy } from '../config.js';
import { withAdvisoryLock } from '../db/pool.js';
import { maintainAttemptPartitions, PARTITION_DEFAULTS, type PartitionResult } from './partitions.js';
import { checkClientCertificates } from './client-certificates.js';
import { runRetention } from './retention.js';

export const RETENTION_JOB = 'postbox-retention';
export const CLIENT_CERTIFICATES_JOB = 'postbox-client-certificates';
/** Minute 37 of every hour, UTC: away from the partitions job (minute 7). */
export const CLIENT_CERTIFICATES_CRON = '37 * * * *';
export const PARTITIONS_JOB = 'postbox-partitions';
/** Minute 7 of every hour, UTC: away from the top of the hour, where cron jobs everywhere pile up. */
export const PARTITIONS_CRON = '7 * * * *';

export interface MaintenanceConfig {
  /** Where pg-boss keeps its schema; the same database as Postbox. */
  databaseUrl: string;
  /** Postbox's own pool, used by the jobs themselves. */
  pool: pg.Pool;
  logger: Logger;
  /** How long each kind of history is kept (RETENTION_DAYS and RETENTION_*_DAYS). */
  retention: RetentionPolicy;
  /** Five-field cron (UTC) for the retention job; minute resolution. */
  retentionCron: string;
  /** Rows per retention statement. */
  retentionBatchSize?: number;
  /** How often an idle process asks pg-boss for a due job. A daily job can wait this long. */
  pollingIntervalSeconds?: number;
  /** Days after today whose attempt partition exists ahead of time (default 3). */
  partitionDaysAhead?: number;
}

export interface Maintenance {
  /** Stops taking jobs; a running job stops after its current batch. Resolves within graceMs (min 1 s). */
  stop(graceMs: number): Promise<void>;
}

const MAINTENANCE_SETUP_LOCK = 7_310_002; // arbitrary, fixed: advisory lock key for pg-boss setup

/** Creates the queues and their schedules (all idempotent). */
async function registerJobs(boss: PgBoss, config: MaintenanceConfig): Promise<void> {
  await boss.createQueue(RETENTION_JOB, {
    name: RETENTION_JOB,
    // singleton: at most one active run, even if a run outlasts the interval between ticks.
    policy: 'singleton',
    retryLimit: 2,
    retryDelay: 300,
    // A long first run over a big backlog must not be declared dead and started a second time.
    expireInSeconds: 6 * 3600,
  });
  await boss.createQueue(PARTITIONS_JOB, {
    name: PARTITIONS_JOB,
    policy: 'singleton',
    retryLimit: 2,
    retryDelay: 60,
    // A few DDL statements, each waiting at most its lock timeout.
    expireInSeconds: 15 * 60,
  });
  await boss.createQueue(CLIENT_CERTIFICATES_JOB, {
    name: CLIENT_CERTIFICATES_JOB,
    policy: 'singleton',
    retryLimit: 2,
    retryDelay: 60,
    expireInSeconds: 15 * 60,
  });
  // Upserts by name: every process calls this at start; the last writer's cron wins.
  await boss.schedule(RETENTION_JOB, config.retentionCron, {}, { tz: 'UTC' });
  await boss.schedule(PARTITIONS_JOB, PARTITIONS_CRON, {}, { tz: 'UTC' });
  await boss.schedule(CLIENT_CERTIFICATES_JOB, CLIENT_CERTIFICATES_CRON, {}, { tz: 'UTC' });
}

/** Logs what a certificate check did: a notice per certificate, as an operator would want to see it. */
async function runCertificateCheck(pool: pg.Pool, logger: Logger): Promise<void> {
  const result = await checkClientCertificates(pool);
  if (result.filled > 0 || result.unreadable > 0)
    logger.info('client certificate expiries stored', {
      filled: result.filled,
      unreadable: result.unreadable,
    });
  for (const n of result.notices)
    logger.warn(`client certificate ${n.notice === 'expired' ? 'expired' : 'expires within 14 days'}`, {
      webhook_id: n.webhookId,
      tenant_id: n.tenantId,
      notified: n.eventId !== null,
    });
}

/** Logs what a partition run changed; a day whose lock was not granted is a warning (retried hourly). */
function logPartitions(logger: Logger, result: PartitionResult): void {
  if (result.lockTimeouts > 0)
    logger.warn('attempt partitions: lock not granted in time, left for the next run', { ...result });
  else if (result.created > 0 || result.dropped > 0)
    logger.info('attempt partitions maintained', { ...result });
}

export async function startMaintenance(config: MaintenanceConfig): Promise<Maintenance> {
  const { logger } = config;
  const boss = new PgBoss({
    connectionString: config.databaseUrl,
    application_name: 'postbox-maintenance',
    // Its own small pool: pg-boss's polling never waits behind delivery traffic, and vice versa.
    max: 2,
  });
  // An EventEmitter 'error' without a listener would crash the process; pg-boss reports transient
  // polling failures this way and retries by itself.
  boss.on('error', (err) => logger.warn('maintenance scheduler error', { error: err.message }));

  const running = new AbortController();
  const partitionOptions = {
    daysAhead: config.partitionDaysAhead ?? PARTITION_DEFAULTS.daysAhead,
    attemptDays: config.retention.attemptDays,
    lockTimeoutMs: PARTITION_DEFAULTS.lockTimeoutMs,
    signal: running.signal,
  };
  await boss.start();
  try {
    // pg-boss 10 creates a queue's table on createQueue; two processes doing it at once deadlock
    // (seen in the scheduler test), so setup takes turns under an advisory lock.
    await withAdvisoryLock(config.pool, MAINTENANCE_SETUP_LOCK, () => registerJobs(boss, config));
    logPartitions(logger, await maintainAttemptPartitions(config.pool, partitionOptions));
    // Not a reason to refuse to start: the hourly job tries again.
    await runCertificateCheck(config.pool, logger).catch((err: Error) =>
      logger.warn('client certificate check failed', { error: err.message }),
    );
    await boss.work(
      CLIENT_CERTIFICATES_JOB,
      { pollingIntervalSeconds: config.pollingIntervalSeconds ?? 30, batchSize: 1 },
      async () => {
        try {
          await runCertificateCheck(config.pool, logger);
        } catch (err) {
          logger.error('client certificate check failed', { error: (err as Error).message });
          throw err;
        }
      },
    );
    await boss.work(
      PARTITIONS_JOB,
      { pollingIntervalSeconds: config.pollingIntervalSeconds ?? 30, batchSize: 1 },
      async () => {
        try {
          logPartitions(logger, await maintainAttemptPartitions(config.pool, partitionOptions));
        } catch (err) {
          logger.error('attempt partitions failed', { error: (err as Error).message });
          throw err;
        }
      },
    );
    await boss.work(
      RETENTION_JOB,
      { pollingIntervalSeconds: config.pollingIntervalSeconds ?? 30, batchSize: 1 },
      async () => {
        const started = Date.now();
        try {
          const result = await runRetention(config.pool, {
            policy: config.retention,
            batchSize: config.retentionBatchSize ?? 1000,
            signal: running.signal,
          });
          logger.info('retention finished', { ...result, duration_ms: Date.now() - started });
        } catch (err) {
          logger.error('retention failed', { error: (err as Error).message });
          throw err; // pg-boss records the failure and retries
        }
      },
    );
  } catch (err) {
    await boss.stop({ graceful: false }).catch(() => {});
    throw err;
  }

  return {
    async stop(graceMs) {
      running.abort();
      await boss.stop({ graceful: true, timeout: graceMs, wait: true, close: true });
    },
  };
}
