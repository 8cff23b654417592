/**
 * Prometheus metrics of one Postbox instance, on a registry of its own (never prom-client's global
 * one: tests run several instances in one process). Labels are low-cardinality by rule: an outcome,
 * a state, a route pattern, a method, a status code; never a tenant, event, delivery or webhook id
 * (per-webhook numbers live in the webhook_health view instead).
 *
 * Recording is synchronous and cheap (a counter increment, a histogram observation), so the ingest
 * and delivery hot paths call it inline. Queue and tenant quota gauges are read from PostgreSQL on
 * scrape (queue-stats.ts, quota-gauges.ts).
 */
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerClientCertMetrics, type ClientCertMetricsOptions } from './client-cert-metrics.js';
import { registerPartitionMetrics } from './partition-metrics.js';
import { registerPoolMetrics } from './pool-metrics.js';
import { registerQuotaGauges, type QuotaGaugeOptions } from './quota-gauges.js';
import { QueueStatsReader, type QueueStatsOptions } from './queue-stats.js';

/** What one delivery attempt came to: each attempt is counted under exactly one outcome. */
export type DeliveryOutcome = 'succeeded' | 'failed_attempt' | 'dead';

export const DELIVERY_OUTCOMES: readonly DeliveryOutcome[] = ['succeeded', 'failed_attempt', 'dead'];

/**
 * Whose failure a failed attempt was (src/delivery/failure-cause.ts decides). receiver_status: the
 * receiver answered, not 2xx. receiver_timeout: no answer within timeout_ms. receiver_unreachable: no
 * connection (refused, reset, DNS, TLS, or an address the SSRF guard refuses). postbox: Postbox could
 * not make the attempt (a webhook secret it cannot decrypt). shutdown: cut short by this worker's
 * shutdown (due again at once; says nothing about either side).
 */
export type FailureCause =
  'receiver_status' | 'receiver_timeout' | 'receiver_unreachable' | 'postbox' | 'shutdown';

export const FAILURE_CAUSES: readonly FailureCause[] = [
  'receiver_status',
  'receiver_timeout',
  'receiver_unreachable',
  'postbox',
  'shutdown',
];

/** A change of a receiver's standing: its circuit breaker, or an automatic disable. */
export type WebhookHealthEvent =
  'breaker_opened' | 'breaker_reopened' | 'breaker_closed' | 'disabled_gone' | 'disabled_failing';

export const WEBHOOK_HEALTH_EVENTS: readonly WebhookHealthEvent[] = [
  'breaker_opened',
  'breaker_reopened',
  'breaker_closed',
  'disabled_gone',
  'disabled_failing',
];

export interface Metrics {
  readonly registry: Registry;
  /** Content-Type of render()'s text. */
  readonly contentType: string;
  /** `n` new events were stored (idempotent repeats excluded). */
  eventsIngested(n: number): void;
  /**
   * One attempt finished. `lagMs`, for a success: event received → receiver's 2xx (end of the attempt).
   * failed_attempt: failed and will be retried; dead: the last allowed attempt failed (now in the DLQ).
   */
  deliveryOutcome(outcome: DeliveryOutcome, durationMs: number, lagMs?: number): void;
  /** A failed attempt (failed_attempt or dead), by whose failure it was (failure-cause.ts). */
  deliveryFailure(cause: FailureCause): void;
  /** One claim statement took `batchSize` rows (0 included: an empty poll) in `durationMs`. */
  claimed(batchSize: number, durationMs: number): void;
  /** A webhook's breaker changed state, or it was disabled automatically. */
  webhookHealth(event: WebhookHealthEvent): void;
  /** `n` tenants' DLQs just grew past their max_dlq_size (once per crossing). */
  dlqOverLimit(n: number): void;
  /** `n` deliveries a rescue had dead-lettered succeeded after all (their slow worker's late 2xx). */
  deliveriesRevived(n: number): void;
  /** One HTTP request answered; `route` is the matched pattern (routeOf), never the raw path. */
  httpRequest(route: string, method: string, status: number, durationMs: number): void;
  /** The exposition text (collects the queue gauges first). */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** Where the queue gauges are read; without it they are not registered (tests of recording alone). */
  pool?: pg.Pool;
  queueStats?: Omit<QueueStatsOptions, 'pool'>;
  /** The tenant quota gauges' caching (src/observability/quota-gauges.ts). */
  quotaGauges?: QuotaGaugeOptions;
  /** The client certificate expiry gauge's caching (src/observability/client-cert-metrics.ts). */
  clientCertMetrics?: ClientCertMetricsOptions;
  /** Process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean;
}

// Attempts: a fast receiver answers in milliseconds; the timeout is 1-30 s.
const ATTEMPT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];
// Lag: sub-second when healthy; minutes to a day when a receiver was down and retries caught up.
const LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CLAIM_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const CLAIM_SIZE_BUCKETS = [0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const ingested = new Counter({
    name: 'postbox_events_ingested_total',
    help: 'Events stored (idempotent repeats not counted).',
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'postbox_deliveries_total',
    help: 'Delivery attempts by outcome: succeeded (2xx), failed_attempt (will be retried), dead (retries exhausted, moved to the DLQ).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const attemptDuration = new Histogram({
    name: 'postbox_delivery_attempt_duration_seconds',
    help: 'Duration of one delivery attempt (request sent to answer, timeout or error), by outcome.',
    labelNames: ['outcome'] as const,
    buckets: ATTEMPT_BUCKETS,
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'postbox_delivery_lag_seconds',
    help: 'From the event being received to the receiver answering 2xx (retries included).',
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  const claimSize = new Histogram({
    name: 'postbox_claim_batch_size',
    help: 'Deliveries taken by one claim statement (0: nothing was due).',
    buckets: CLAIM_SIZE_BUCKETS,
    registers: [registry],
  });
  const claimDuration = new Histogram({
    name: 'postbox_claim_duration_seconds',
    help: 'Duration of one claim statement.',
    buckets: CLAIM_DURATION_BUCKETS,
    registers: [registry],
  });
  const http = new Histogram({
    name: 'postbox_http_request_duration_seconds',
    help: 'API requests by matched route pattern, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });
  const failures = new Counter({
    name: 'postbox_delivery_failures_total',
    help: "Failed delivery attempts by cause: receiver_status (a non-2xx answer), receiver_timeout, receiver_unreachable (no connection), postbox (Postbox could not make the attempt), shutdown (cut short by a worker's shutdown).",
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  const webhookHealth = new Counter({
    name: 'postbox_webhook_health_events_total',
    help: 'Receivers changing standing: circuit breaker opened, reopened (a probe failed) or closed, webhook disabled automatically (gone: a 410 answer; failing: failing for WEBHOOK_AUTO_DISABLE_AFTER_MS).',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const dlqOverLimit = new Counter({
    name: 'postbox_tenant_dlq_over_limit_total',
    help: "Times a tenant's DLQ grew past its max_dlq_size (once per crossing; nothing is dropped).",
    registers: [registry],
  });
  const revived = new Counter({
    name: 'postbox_deliveries_revived_total',
    help: 'Deliveries a lease rescue dead-lettered on their last attempt that then succeeded: their worker was slow, not dead, and its late 2xx took them out of the DLQ.',
    registers: [registry],
  });
  // Present from the first scrape, so rate() and absent() behave before the first delivery.
  for (const outcome of DELIVERY_OUTCOMES) deliveries.inc({ outcome }, 0);
  for (const event of WEBHOOK_HEALTH_EVENTS) webhookHealth.inc({ event }, 0);
  for (const cause of FAILURE_CAUSES) failures.inc({ cause }, 0);

  if (options.pool) {
    registerQueueGauges(registry, new QueueStatsReader({ ...options.queueStats, pool: options.pool }));
    registerPoolMetrics(registry, options.pool);
    // All read on scrape, side by side: the same wait bounds the scrape as before they were added.
    const maxWaitMs = options.queueStats?.maxWaitMs;
    registerQuotaGauges(registry, options.pool, {
      ...(maxWaitMs !== undefined ? { maxWaitMs } : {}),
      ...options.quotaGauges,
    });
    registerPartitionMetrics(registry, options.pool, maxWaitMs === undefined ? {} : { maxWaitMs });
    registerClientCertMetrics(registry, options.pool, {
      ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
      ...options.clientCertMetrics,
    });
  }

  return {
    registry,
    contentType: registry.contentType,
    eventsIngested(n) {
      if (n > 0) ingested.inc(n);
    },
    deliveryOutcome(outcome, durationMs, lagMs) {
      deliveries.inc({ outcome });
      attemptDuration.observe({ outcome }, durationMs / 1000);
      if (outcome === 'succeeded' && lagMs !== undefined) lag.observe(Math.max(0, lagMs) / 1000);
    },
    deliveryFailure(cause) {
      failures.inc({ cause });
    },
    claimed(batchSize, durationMs) {
      claimSize.observe(batchSize);
      claimDuration.observe(durationMs / 1000);
    },
    webhookHealth(event) {
      webhookHealth.inc({ event });
    },
    dlqOverLimit(n) {
      if (n > 0) dlqOverLimit.inc(n);
    },
    deliveriesRevived(n) {
      if (n > 0) revived.inc(n);
    },
    httpRequest(route, method, status, durationMs) {
      const m = KNOWN_METHODS.has(method) ? method : 'OTHER';
      http.observe({ route, method: m, status: String(status) }, durationMs / 1000);
    },
    render: () => registry.metrics(),
  };
}

/** Gauges read on scrape; they share one cached QueueStatsReader read. */
function registerQueueGauges(registry: Registry, reader: QueueStatsReader): void {
  new Gauge({
    name: 'postbox_queue_depth',
    help: 'Deliveries by queue state: due (a worker could take it now), held (due, but held back on purpose: open circuit breaker, or the webhook or tenant concurrency limit is full), parked (pending for a disabled or deleted webhook), scheduled (waiting out a retry backoff), in_flight (claimed). Exact up to 10,000, planner estimate above.',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const s = await reader.get();
      if (!s) return;
      this.set({ state: 'due' }, s.due);
      this.set({ state: 'held' }, s.held);
      this.set({ state: 'parked' }, s.parked);
      this.set({ state: 'scheduled' }, s.scheduled);
      this.set({ state: 'in_flight' }, s.inFlight);
    },
  });
  new Gauge({
    name: 'postbox_dlq_size',
    help: 'Deliveries in the dead letter queue. Exact up to 10,000, planner estimate above.',
    registers: [registry],
    async collect() {
      const s = await reader.get();
      if (s) this.set(s.deadLetters);
    },
  });
  new Gauge({
    name: 'postbox_oldest_due_seconds',
    help: 'How long the oldest claimable due delivery (state due: not held back, not parked) has waited to be claimed (0: none).',
    registers: [registry],
    async collect() {
      const s = await reader.get();
      if (s) this.set(s.oldestDueSeconds);
    },
  });
  new Gauge({
    name: 'postbox_leases_expired',
    help: 'In-flight deliveries of enabled webhooks whose lease ran out (their worker presumably died; the next claim retakes them). Capped at 10,000.',
    registers: [registry],
    async collect() {
      const s = await reader.get();
      if (s) this.set(s.leasesExpired);
    },
  });
  new Gauge({
    name: 'postbox_queue_stats_up',
    help: '1 if the last read of the queue gauges from PostgreSQL succeeded in time, else 0 (the queue gauges then show the last values read).',
    registers: [registry],
    async collect() {
      await reader.get();
      this.set(reader.healthy ? 1 : 0);
    },
  });
}
