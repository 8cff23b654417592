/** What every route handler may use, built once at start-up and passed down. */
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { SecretBox } from '../security/secret-box.js';

export interface ApiContext {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  secretBox: SecretBox;
  adminKeyHash: Buffer;
  /** DATA_DIR/admin-api-key when the admin key came from there: rotating it rewrites the file. */
  adminKeyFile?: string;
  /** This instance's Prometheus registry and recording functions. */
  metrics: Metrics;
  /** OpenTelemetry tracing (default off): the ingest routes make a span per request. */
  tracing?: Tracing;
}

/**
 * Who is calling: the operator (every tenant) or one tenant. keyPrefix: the presented key's prefix
 * (apiKeyPrefix), for the audit log; bootstrap: the configured admin key (ADMIN_API_KEY or the file).
 */
export type Principal =
  | { kind: 'admin'; keyPrefix: string; bootstrap: boolean }
  | { kind: 'tenant'; tenantId: string; keyPrefix: string };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
    requestId?: string;
  }
}
