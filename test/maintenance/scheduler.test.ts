import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import PgBoss from 'pg-boss';
import { v7 } from 'uuid';
import winston from 'winston';
import Transport from 'winston-transport';
import {
  CLIENT_CERTIFICATES_CRON,
  CLIENT_CERTIFICATES_JOB,
  PARTITIONS_CRON,
  PARTITIONS_JOB,
  RETENTION_JOB,
  startMaintenance,
  type Maintenance,
} from '../../src/maintenance/scheduler.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

/** Collects log messages so the test can see which process ran a job. */
class Collect extends Transport {
  readonly messages: string[] = [];
  override log(info: { message: string }, next: () => void): void {
    this.messages.push(info.message);
    next();
  }
}

let db: TestDatabase;
let producer: PgBoss;
const processes: { maintenance: Maintenance; logs: Collect }[] = [];

async function startProcess(cron = '17 3 * * *') {
  const logs = new Collect();
  const logger = winston.createLogger({ level: 'info', transports: [logs] });
  const maintenance = await startMaintenance({
    databaseUrl: db.url,
    pool: db.pool,
    logger,
    retention: { recordDays: 30, payloadDays: 30, attemptDays: 30, dlqDays: 30, auditDays: 30 },
    retentionCron: cron,
    pollingIntervalSeconds: 0.5,
  });
  processes.push({ maintenance, logs });
  return { maintenance, logs };
}

async function insertOldEvent(): Promise<string> {
  const at = new Date(Date.now() - 40 * 86_400_000);
  const id = v7({ msecs: at.getTime() });
  await db.pool.query(
    `INSERT INTO events (id, tenant_id, type, payload, occurred_at, received_at)
     VALUES ($1, (SELECT id FROM tenants LIMIT 1), 'order.created', '{}', $2, $2)`,
    [id, at],
  );
  return id;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(`INSERT INTO tenants (id, name) VALUES ($1, 'acme')`, [v7()]);
});

afterAll(async () => {
  for (const p of processes) await p.maintenance.stop(1000).catch(() => {});
  await producer?.stop({ graceful: false }).catch(() => {});
  await db.drop();
});

describe('maintenance scheduler (pg-boss)', () => {
  it('registers the schedules once, however many processes start', async () => {
    await Promise.all([startProcess(), startProcess()]);
    const { rows } = await db.pool.query('SELECT name, cron, timezone FROM pgboss.schedule ORDER BY name');
    expect(rows).toEqual([
      { name: CLIENT_CERTIFICATES_JOB, cron: CLIENT_CERTIFICATES_CRON, timezone: 'UTC' },
      { name: PARTITIONS_JOB, cron: PARTITIONS_CRON, timezone: 'UTC' },
      { name: RETENTION_JOB, cron: '17 3 * * *', timezone: 'UTC' },
    ]);
    const queue = await db.pool.query(
      'SELECT name, policy FROM pgboss.queue WHERE name = ANY($1) ORDER BY name',
      [[CLIENT_CERTIFICATES_JOB, PARTITIONS_JOB, RETENTION_JOB]],
    );
    expect(queue.rows).toEqual([
      { name: CLIENT_CERTIFICATES_JOB, policy: 'singleton' },
      { name: PARTITIONS_JOB, policy: 'singleton' },
      { name: RETENTION_JOB, policy: 'singleton' },
    ]);
  });

  it('has created today’s partition of delivery_attempts and the next days’ at start-up', async () => {
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS days, min(range_from) <= now() AND max(range_to) > now() + interval '3 days' AS ahead
         FROM delivery_attempt_partitions WHERE NOT is_default`,
    );
    expect(rows).toEqual([{ days: 4, ahead: true }]);
  });

  it('runs a retention job in exactly one of the processes', async () => {
    const old = await insertOldEvent();
    producer = new PgBoss({ connectionString: db.url, schedule: false, supervise: false, max: 1 });
    producer.on('error', () => {});
    await producer.start();
    const jobId = await producer.send(RETENTION_JOB, {});
    expect(jobId).toBeTruthy();

    const job = await waitFor(
      async () => {
        const j = await producer.getJobById(RETENTION_JOB, jobId!);
        return j?.state === 'completed' ? j : undefined;
      },
      { timeoutMs: 15_000, what: 'the retention job to complete' },
    );
    expect(job.state).toBe('completed');
    const { rows } = await db.pool.query('SELECT id FROM events WHERE id = $1', [old]);
    expect(rows).toEqual([]);
    const runs = processes.flatMap((p) => p.logs.messages).filter((m) => m === 'retention finished');
    expect(runs).toHaveLength(1);
  });

  it('stops promptly when idle, well within the grace', async () => {
    const started = Date.now();
    await Promise.all(processes.splice(0).map((p) => p.maintenance.stop(5000)));
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('fails start-up on a cron expression pg-boss cannot parse', async () => {
    await expect(startProcess('61 * * * *')).rejects.toThrow();
  });
});
