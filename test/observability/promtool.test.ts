/**
 * The alert rules under Prometheus's own evaluator (`promtool`): the rules are valid, every written
 * rule test in ops/prometheus/tests passes, and the false page is reproduced from a real database: an
 * open breaker with a backlog, scraped from a real registry, fires the queue alerts with the gauges as
 * they used to read and no alert with the gauges as they read now, while stopped workers still page.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { queueMany } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { parseSamples, type Sample } from '../helpers/prom.js';
import { firingAlerts, promtool, testRules } from '../helpers/promtool.js';

const root = process.cwd();
const RULES = join(root, 'ops/prometheus/alerts.yml');
const TESTS = join(root, 'ops/prometheus/tests');
const QUEUE_ALERTS = ['PostboxWorkersNotClaiming', 'PostboxOldestDueTooOld'];

describe('promtool', () => {
  it('checks the alert rules', async () => {
    const r = await promtool(['check', 'rules', RULES]);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.ok).toBe(true);
  });

  const files = readdirSync(TESTS).filter((f) => f.endsWith('.test.yml'));
  it('has written rule tests', () => expect(files.length).toBeGreaterThan(0));
  it.each(files)(
    'passes %s',
    async (file) => {
      const r = await promtool(['test', 'rules', file], TESTS);
      expect(r.output).toContain('SUCCESS');
      expect(r.ok).toBe(true);
      // Hours of series through 40 rules: seconds alone, longer on a busy machine.
    },
    180_000,
  );
});

describe('the false page, reproduced from a real database', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  /** One scrape of a real registry on the database (no engine runs: nothing is claimed). */
  async function scrape(): Promise<Sample[]> {
    const metrics = createMetrics({ pool: db.pool, defaultMetrics: false, queueStats: { ttlMs: 0 } });
    return parseSamples(await metrics.render());
  }

  /** Every sample held for 40 minutes on one instance: gauges as read, counters flat (nothing claimed). */
  function series(
    samples: Sample[],
    override: (s: Sample) => number = (s) => s.value,
  ): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of samples) {
      const labels = Object.entries({ ...s.labels, instance: 'a' })
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      out[`${s.name}{${labels}}`] = `${override(s)}x40`;
    }
    return out;
  }
  const silent = (times: string[]) => Object.fromEntries(QUEUE_ALERTS.map((a) => [a, times]));
  const ageOfOldestDue = async () =>
    Number(
      (
        await db.pool.query<{ age: number }>(
          `SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 AS age FROM deliveries
            WHERE status = 'pending' AND next_attempt_at <= now()`,
        )
      ).rows[0]!.age,
    );

  it('an open breaker with a backlog: paged before, pages nobody now', async () => {
    const tenant = await sqlTenant(db.pool);
    const dead = await sqlWebhook(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, dead.id, 500);
    await db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() - interval '1 hour' WHERE webhook_id = $1;`,
      [dead.id],
    );
    await db.pool.query(
      `UPDATE webhooks SET breaker_state = 'open', breaker_open_until = now() + interval '1 hour' WHERE id = $1`,
      [dead.id],
    );
    const samples = await scrape();
    const depth = (state: string) =>
      samples.find((s) => s.name === 'postbox_queue_depth' && s.labels.state === state)!.value;
    expect(depth('due')).toBe(0);
    expect(depth('held')).toBe(500);

    // As the gauges read before held work was told apart: all of it due, aged from when it fell due.
    const oldAge = await ageOfOldestDue();
    const before = series(samples, (s) =>
      s.name === 'postbox_queue_depth' && s.labels.state === 'due'
        ? depth('due') + depth('held')
        : s.name === 'postbox_oldest_due_seconds'
          ? oldAge
          : s.value,
    );
    const paged = await testRules(RULES, [{ name: 'before', series: before, silentAt: silent(['20m']) }]);
    expect(paged.ok).toBe(false);
    expect([...firingAlerts(paged.output)].sort()).toEqual([...QUEUE_ALERTS].sort());

    const now = await testRules(RULES, [
      { name: 'now', series: series(samples), silentAt: silent(['10m', '20m', '39m']) },
    ]);
    expect(now.output).toContain('SUCCESS');
    expect(now.ok).toBe(true);
  });

  it('stopped workers with claimable deliveries waiting still page', async () => {
    const tenant = await sqlTenant(db.pool);
    const healthy = await sqlWebhook(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, healthy.id, 50);
    await db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() - interval '10 minutes' WHERE webhook_id = $1`,
      [healthy.id],
    );
    const samples = await scrape();
    const r = await testRules(RULES, [{ name: 'stall', series: series(samples), silentAt: silent(['12m']) }]);
    expect(r.ok).toBe(false);
    expect([...firingAlerts(r.output)].sort()).toEqual([...QUEUE_ALERTS].sort());
  });
});
