/**
 * Configuration, read once from the environment and validated with valibot. A bad value stops
 * start-up with one line naming the variable (see ConfigError).
 */
import ipaddr from 'ipaddr.js';
import * as v from 'valibot';

const int = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^\d+$/, 'must be a whole number'),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const optionalInt = (min: number, max: number, fallback: number) =>
  v.optional(int(min, max), String(fallback));

const cidrList = v.pipe(
  v.string(),
  v.transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  ),
  v.check(
    // Dotted-quad IPv4 only: ipaddr.js would also take loose forms such as 0x7f.1/8.
    (list) =>
      list.every((c) =>
        c.includes(':') ? ipaddr.IPv6.isValidCIDR(c) : ipaddr.IPv4.isValidCIDRFourPartDecimal(c),
      ),
    'must be a comma list of CIDRs such as 127.0.0.0/8,::1/128',
  ),
);

/** Express's `trust proxy`: false, a hop count, or a comma list of addresses, CIDRs and the names below. */
const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
const trustProxy = v.pipe(
  v.string(),
  v.trim(),
  v.transform((s): boolean | number | string[] => {
    if (/^(false|0|no)$/i.test(s)) return false;
    if (/^\d+$/.test(s)) return Number(s);
    return s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  }),
  v.check(
    (t) =>
      !Array.isArray(t) ||
      (t.length > 0 &&
        t.every(
          (x) =>
            PROXY_NAMES.includes(x) ||
            (x.includes(':')
              ? ipaddr.IPv6.isValid(x) || ipaddr.IPv6.isValidCIDR(x)
              : ipaddr.IPv4.isValidFourPartDecimal(x) || ipaddr.IPv4.isValidCIDRFourPartDecimal(x)),
        )),
    `must be false, a hop count, or a comma list of addresses, CIDRs and ${PROXY_NAMES.join('/')}`,
  ),
);

const flag = v.pipe(
  v.string(),
  v.trim(),
  v.toLowerCase(),
  v.picklist(['true', 'false', '1', '0', 'yes', 'no'], 'must be true or false'),
  v.transform((s) => s === 'true' || s === '1' || s === 'yes'),
);

const httpUrl = v.pipe(
  v.string(),
  v.trim(),
  v.url('must be a URL'),
  v.regex(/^https?:\/\//i, 'must be an http(s) URL'),
);

// OTLP over HTTP only: the gRPC exporter is another dependency tree, and every collector takes HTTP.
const otlpProtocol = v.pipe(
  v.string(),
  v.trim(),
  v.picklist(['http/protobuf', 'http/json'], 'must be http/protobuf or http/json (grpc is not supported)'),
);

const EnvSchema = v.object({
  /** HTTP port of the API and console. */
  PORT: optionalInt(0, 65535, 3000),
  /** PostgreSQL to use; unset starts the embedded server under DATA_DIR/pg. */
  DATABASE_URL: v.optional(v.pipe(v.string(), v.regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'))),
  /** Local state of the embedded default: database, generated keys. */
  DATA_DIR: v.optional(v.pipe(v.string(), v.minLength(1)), './.data'),
  /** The operator's key; unset: generated into DATA_DIR/admin-api-key. */
  ADMIN_API_KEY: v.optional(v.pipe(v.string(), v.minLength(16, 'must be at least 16 characters'))),
  /** 32-byte key (base64 or 64 hex chars) encrypting webhook secrets; unset: generated into DATA_DIR. */
  SECRETS_KEY: v.optional(v.string()),
  /** Comma list of earlier secrets keys: they open secrets sealed with them, never seal (key rotation). */
  SECRETS_KEY_PREVIOUS: v.optional(v.string()),
  /** CIDRs deliveries may reach although private/loopback (local testing). */
  SSRF_ALLOW_CIDRS: v.optional(cidrList, ''),
  /** Refuse http: webhook URLs at registration (https only). */
  REQUIRE_HTTPS: v.optional(flag, 'false'),
  /**
   * Which peers may name the client in X-Forwarded-For (audit log, request log). The default trusts
   * only a proxy on loopback (nginx in the container, or sharing its network namespace in compose),
   * so a client reaching the API directly cannot choose the address recorded for it.
   */
  TRUST_PROXY: v.optional(trustProxy, 'loopback'),
  /** winston level. */
  LOG_LEVEL: v.optional(v.picklist(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']), 'info'),
  /** Largest request body in bytes (413 above it). */
  BODY_LIMIT_BYTES: optionalInt(1024, 64 * 1024 * 1024, 1024 * 1024),
  /** What this process runs: api, worker, or all (the one-container default). */
  POSTBOX_ROLE: v.optional(v.picklist(['all', 'api', 'worker']), 'all'),
  /** Deliveries one worker process sends at once. */
  WORKER_CONCURRENCY: optionalInt(1, 10_000, 200),
  /** Most deliveries taken by one claim statement. */
  CLAIM_BATCH_SIZE: optionalInt(1, 5_000, 100),
  /** How long a claim holds a delivery before another worker may take it (longer than any timeout). */
  LEASE_SECONDS: optionalInt(5, 3600, 60),
  /** Fallback poll when no NOTIFY arrives (future retries, other processes). */
  POLL_INTERVAL_MS: optionalInt(10, 60_000, 500),
  /** SIGTERM grace: in-flight attempts may finish this long before they are released. */
  SHUTDOWN_GRACE_MS: optionalInt(0, 600_000, 10_000),
  /** Finished deliveries and their events older than this are deleted; the default of the four below. */
  RETENTION_DAYS: optionalInt(1, 3650, 30),
  /** Event payloads older than this are removed once nothing may still send them (RETENTION_DAYS). */
  RETENTION_PAYLOAD_DAYS: v.optional(int(1, 3650)),
  /** Delivery attempts are kept this many days, then dropped a whole day at a time (RETENTION_DAYS). */
  RETENTION_ATTEMPT_DAYS: v.optional(int(1, 3650)),
  /** Dead-lettered deliveries leave the DLQ, deleted, this long after they died (RETENTION_DAYS). */
  RETENTION_DLQ_DAYS: v.optional(int(1, 3650)),
  /** Audit log rows older than this are deleted (RETENTION_DAYS). */
  RETENTION_AUDIT_DAYS: v.optional(int(1, 3650)),
  /** When the retention job runs: five-field cron, UTC, once per cluster (pg-boss). */
  RETENTION_CRON: v.optional(
    v.pipe(v.string(), v.trim(), v.regex(/^\S+( \S+){4}$/, 'must be a five-field cron expression')),
    '17 3 * * *',
  ),
  /** Default quota for new tenants: events per second. */
  DEFAULT_MAX_EVENTS_PER_SEC: optionalInt(1, 1_000_000, 1000),
  /** Default quota for new tenants: deliveries in flight at once. */
  DEFAULT_MAX_CONCURRENT_DELIVERIES: optionalInt(1, 100_000, 100),
  /** Default quota for new tenants: DLQ size before the tenant is flagged. */
  DEFAULT_MAX_DLQ_SIZE: optionalInt(1, 100_000_000, 10_000),
  /** Consecutive failed attempts that open a webhook's circuit breaker (its deliveries then wait). */
  BREAKER_FAILURE_THRESHOLD: optionalInt(1, 1000, 5),
  /** First cool-down of an open breaker, in ms; doubled by each reopen (failed probe). */
  BREAKER_COOLDOWN_MS: optionalInt(100, 86_400_000, 30_000),
  /** The breaker's cool-down never grows past this, in ms. */
  BREAKER_COOLDOWN_MAX_MS: optionalInt(100, 86_400_000, 600_000),
  /** A webhook failing continuously this long (ms) is disabled; its deliveries wait for re-enabling. */
  WEBHOOK_AUTO_DISABLE_AFTER_MS: optionalInt(1000, 365 * 86_400_000, 5 * 86_400_000),
  /** PostgreSQL pool size of this process. */
  DB_POOL_SIZE: optionalInt(2, 200, 10),
  /** OTLP/HTTP collector base URL; traces go to <it>/v1/traces. Unset (and no traces endpoint): no tracing. */
  OTEL_EXPORTER_OTLP_ENDPOINT: v.optional(httpUrl),
  /** Full URL for traces alone; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: v.optional(httpUrl),
  /** Encoding of the OTLP export. */
  OTEL_EXPORTER_OTLP_PROTOCOL: v.optional(otlpProtocol, 'http/protobuf'),
  /** Encoding of the trace export; wins over OTEL_EXPORTER_OTLP_PROTOCOL. */
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: v.optional(otlpProtocol),
  /** true: no tracing even with an endpoint set. */
  OTEL_SDK_DISABLED: v.optional(flag, 'false'),
});

export type Config = v.InferOutput<typeof EnvSchema>;

/** How receiver failures turn into a circuit breaker and automatic disabling (the recorder's policy). */
export interface HealthPolicy {
  /** Consecutive failed attempts that open the breaker (BREAKER_FAILURE_THRESHOLD). */
  failureThreshold: number;
  /** First cool-down of an open breaker; each reopen without a success in between doubles it (BREAKER_COOLDOWN_MS). */
  cooldownMs: number;
  /** The cool-down never grows past this (BREAKER_COOLDOWN_MAX_MS). */
  cooldownMaxMs: number;
  /** Failing continuously this long disables the webhook (WEBHOOK_AUTO_DISABLE_AFTER_MS). */
  autoDisableAfterMs: number;
}

/** Where spans go (OpenTelemetry's standard variables), or undefined: tracing is off. */
export interface OtlpTarget {
  /** The traces URL itself (…/v1/traces). */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
}

export function otlpTargetOf(config: Config): OtlpTarget | undefined {
  if (config.OTEL_SDK_DISABLED) return undefined;
  // As the OTLP exporter spec says: the signal's own variable is used as is, the base one gets /v1/traces.
  const url =
    config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (config.OTEL_EXPORTER_OTLP_ENDPOINT &&
      `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (!url) return undefined;
  return { url, protocol: config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL };
}

export function healthPolicyOf(config: Config): HealthPolicy {
  return {
    failureThreshold: config.BREAKER_FAILURE_THRESHOLD,
    cooldownMs: config.BREAKER_COOLDOWN_MS,
    cooldownMaxMs: config.BREAKER_COOLDOWN_MAX_MS,
    autoDisableAfterMs: config.WEBHOOK_AUTO_DISABLE_AFTER_MS,
  };
}

/** How long each kind of history is kept, in days (the retention job's policy). */
export interface RetentionPolicy {
  /** Finished deliveries, and events no delivery references any more (RETENTION_DAYS). */
  recordDays: number;
  /** Event payloads, unless a live or dead-lettered delivery may still send them (RETENTION_PAYLOAD_DAYS). */
  payloadDays: number;
  /** Delivery attempts, dropped a whole day at a time (RETENTION_ATTEMPT_DAYS). */
  attemptDays: number;
  /** Dead-lettered deliveries with their DLQ rows, from when they died (RETENTION_DLQ_DAYS). */
  dlqDays: number;
  /** Audit log rows (RETENTION_AUDIT_DAYS). */
  auditDays: number;
}

export function retentionPolicyOf(config: Config): RetentionPolicy {
  const days = config.RETENTION_DAYS;
  return {
    recordDays: days,
    payloadDays: config.RETENTION_PAYLOAD_DAYS ?? days,
    attemptDays: config.RETENTION_ATTEMPT_DAYS ?? days,
    dlqDays: config.RETENTION_DLQ_DAYS ?? days,
    auditDays: config.RETENTION_AUDIT_DAYS ?? days,
  };
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`invalid configuration: ${variable} ${detail}`);
  }
}

/** Validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.entries)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = v.safeParse(EnvSchema, input);
  if (!result.success) {
    const issue = result.issues[0];
    const variable = issue.path?.[0]?.key;
    throw new ConfigError(String(variable ?? 'environment'), issue.message);
  }
  checkTogether(result.output);
  return result.output;
}

/** Settings that are valid alone but not in combination; checked here so start-up names them. */
function checkTogether(config: Config): void {
  if (config.BREAKER_COOLDOWN_MAX_MS < config.BREAKER_COOLDOWN_MS)
    throw new ConfigError(
      'BREAKER_COOLDOWN_MAX_MS',
      `must be at least BREAKER_COOLDOWN_MS (${config.BREAKER_COOLDOWN_MS})`,
    );
  // A payload cannot outlive its event, which goes after RETENTION_DAYS: a longer setting would be a
  // promise the job cannot keep.
  if ((config.RETENTION_PAYLOAD_DAYS ?? 0) > config.RETENTION_DAYS)
    throw new ConfigError(
      'RETENTION_PAYLOAD_DAYS',
      `must be at most RETENTION_DAYS (${config.RETENTION_DAYS}): a payload goes with its event at the latest`,
    );
}

/** Every setting at its default: the one place defaults are defined (EnvSchema) read back. */
export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze(loadConfig({}));

/** The circuit breaker and automatic disabling with their defaults. */
export const DEFAULT_HEALTH_POLICY: Readonly<HealthPolicy> = Object.freeze(healthPolicyOf(DEFAULT_CONFIG));
