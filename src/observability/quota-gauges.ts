/**
 * Tenant quota usage on /metrics without a tenant label: per quota, how many tenants use at least 80 %
 * of it (postbox_tenants_near_quota) and how many are at or past it (postbox_tenants_at_quota). Six
 * series however many tenants there are; which tenants they are is in the tenant_quota_usage view and
 * the console's Quotas page. Why this and not a top-N gauge: docs/observability.md.
 */
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { withTransaction } from '../db/pool.js';
import { setLocalStatementTimeout } from '../queries/metrics.js';
import { countTenantsNearQuota, QUOTA_NAMES, type TenantsNearQuota } from '../queries/quota-usage.js';
import { ScrapeCache } from './scrape-cache.js';

export interface QuotaGaugeOptions {
  /** Reuse a reading this long (default 30 s): quota usage moves slowly, alerts look at minutes, and a read costs up to a few hundred ms on a large DLQ (docs/observability.md). */
  ttlMs?: number;
  /** statement_timeout of the read (default 2 s). */
  statementTimeoutMs?: number;
  /** A scrape waits at most this long for a fresh reading, then serves the last one (default 2.5 s). */
  maxWaitMs?: number;
}

export const QUOTA_GAUGE_DEFAULTS = Object.freeze({
  ttlMs: 15_000,
  statementTimeoutMs: 2_000,
  maxWaitMs: 2_500,
});

export function registerQuotaGauges(
  registry: Registry,
  pool: pg.Pool,
  options: QuotaGaugeOptions = {},
): void {
  const o = { ...QUOTA_GAUGE_DEFAULTS, ...options };
  const cache = new ScrapeCache<TenantsNearQuota>({
    ttlMs: o.ttlMs,
    maxWaitMs: o.maxWaitMs,
    read: () =>
      withTransaction(pool, async (client) => {
        await setLocalStatementTimeout(client, o.statementTimeoutMs);
        return countTenantsNearQuota(client);
      }),
  });
  const byQuota = (name: string, help: string, pick: (c: { near: number; at: number }) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['quota'] as const,
      registers: [registry],
      async collect() {
        const counts = await cache.get();
        if (!counts) return;
        for (const quota of QUOTA_NAMES) this.set({ quota }, pick(counts[quota]));
      },
    });
  byQuota(
    'postbox_tenants_near_quota',
    'Tenants using at least 80 % of a quota (those at or past it included): events_per_sec (busiest second of the last minute), concurrent_deliveries (in flight now), dlq_size. Which tenants: the tenant_quota_usage view.',
    (c) => c.near,
  );
  byQuota(
    'postbox_tenants_at_quota',
    'Tenants at or past a quota: events_per_sec (reached max_events_per_sec in a second of the last minute), concurrent_deliveries (their due deliveries wait for a slot), dlq_size (DLQ at or over max_dlq_size). Which tenants: the tenant_quota_usage view.',
    (c) => c.at,
  );
  new Gauge({
    name: 'postbox_tenant_quota_stats_up',
    help: '1 if the last read of the tenant quota gauges from PostgreSQL succeeded in time, else 0 (they then show the last values read).',
    registers: [registry],
    async collect() {
      await cache.get();
      this.set(cache.healthy ? 1 : 0);
    },
  });
}
