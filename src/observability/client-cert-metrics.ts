/**
 * Webhooks' mTLS client certificates nearing or past expiry, as one gauge read on scrape:
 * postbox_webhook_client_certificates_expiring{state="expiring"|"expired"}. A count, never a webhook
 * id label; which webhooks they are: the SQL in runbooks/client-certificate-expiry.md.
 *
 * Read through a ScrapeCache at most once a minute (expiry is a matter of days), under a statement
 * timeout, never holding a scrape longer than `maxWaitMs`.
 */
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { withTransaction } from '../db/pool.js';
import {
  countClientCertificatesByExpiry,
  type ClientCertificateExpiryCounts,
} from '../queries/client-certificates.js';
import { setLocalStatementTimeout } from '../queries/metrics.js';
import { CLIENT_CERT_EXPIRY_WARNING_DAYS } from '../security/client-cert.js';
import { ScrapeCache } from './scrape-cache.js';

export interface ClientCertMetricsOptions {
  /** Reuse a reading this long (default 60 s). */
  ttlMs?: number;
  /** statement_timeout of the read (default 2 s). */
  statementTimeoutMs?: number;
  /** A scrape waits at most this long for a fresh reading, then serves the last one (default 2.5 s). */
  maxWaitMs?: number;
}

export const CLIENT_CERT_METRICS_DEFAULTS = Object.freeze({
  ttlMs: 60_000,
  statementTimeoutMs: 2_000,
  maxWaitMs: 2_500,
});

export function registerClientCertMetrics(
  registry: Registry,
  pool: pg.Pool,
  options: ClientCertMetricsOptions = {},
): void {
  const o = { ...CLIENT_CERT_METRICS_DEFAULTS, ...options };
  const cache = new ScrapeCache<ClientCertificateExpiryCounts>({
    ttlMs: o.ttlMs,
    maxWaitMs: o.maxWaitMs,
    read: () =>
      withTransaction(pool, async (client) => {
        await setLocalStatementTimeout(client, o.statementTimeoutMs);
        return countClientCertificatesByExpiry(client, CLIENT_CERT_EXPIRY_WARNING_DAYS);
      }),
  });
  new Gauge({
    name: 'postbox_webhook_client_certificates_expiring',
    help: `Webhooks (not deleted) whose mTLS client certificate expires within ${CLIENT_CERT_EXPIRY_WARNING_DAYS} days (state="expiring") or has expired (state="expired": the receiver refuses the handshake). Which ones: runbooks/client-certificate-expiry.md.`,
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const c = await cache.get();
      if (!c) return;
      this.set({ state: 'expiring' }, c.expiring);
      this.set({ state: 'expired' }, c.expired);
    },
  });
}
