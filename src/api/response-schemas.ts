/**
 * What the API answers, as valibot schemas. They are the response bodies of the OpenAPI document
 * (src/api/openapi/) and the return types of the routes' `…Json` builders, so a field added to an
 * answer but not here is a type error, and one added here but not sent fails the live-run test
 * (test/api/openapi.test.ts). Objects are strict: the document says `additionalProperties: false`.
 */
import * as v from 'valibot';

const Id = v.pipe(v.string(), v.uuid());
const Time = v.pipe(v.string(), v.isoTimestamp());
const nullable = <S extends v.GenericSchema>(s: S) => v.nullable(s);
const Int = v.pipe(v.number(), v.integer());

export const ErrorDetailSchema = v.strictObject({ path: v.string(), message: v.string() });

export const ErrorSchema = v.strictObject({
  error: v.strictObject({
    code: v.pipe(
      v.string(),
      v.description('machine-readable; the codes each status carries are listed with the response'),
    ),
    message: v.string(),
    details: v.optional(v.array(ErrorDetailSchema)),
  }),
});

/** `{data, next_cursor}` of every list: pass `next_cursor` back as `cursor` for the next page. */
export const pageOf = <S extends v.GenericSchema>(item: S) =>
  v.strictObject({ data: v.array(item), next_cursor: nullable(v.string()) });

export const RetryPolicySchema = v.strictObject({
  max_attempts: Int,
  initial_delay_ms: Int,
  max_delay_ms: Int,
  max_age_seconds: v.pipe(
    nullable(Int),
    v.description(
      'deadline in seconds from the start of the delivery cycle; a delivery whose next attempt would fall past it is dead-lettered; null: retries end only at max_attempts',
    ),
  ),
});

export const WebhookSchema = v.strictObject({
  id: Id,
  tenant_id: Id,
  url: v.string(),
  event_types: v.array(v.string()),
  description: nullable(v.string()),
  retry_policy: RetryPolicySchema,
  timeout_ms: Int,
  max_concurrency: v.pipe(Int, v.description('ceiling of concurrency_limit')),
  concurrency_limit: v.pipe(
    Int,
    v.description(
      'deliveries that may be in flight at once now: adapts to the receiver (up while it keeps up, down on timeouts, 5xx, 429 or rising latency), between 1 and max_concurrency',
    ),
  ),
  enabled: v.boolean(),
  disabled_reason: nullable(v.string()),
  filter: v.pipe(v.unknown(), v.description('the payload filter (docs/filters.md), or null')),
  ordering: v.picklist(['none', 'fifo']),
  client_certificate: v.pipe(
    nullable(
      v.strictObject({
        subject: v.string(),
        issuer: v.string(),
        fingerprint_sha256: v.pipe(
          v.string(),
          v.description('SHA-256 of the DER certificate, colon-separated hex'),
        ),
        not_after: Time,
      }),
    ),
    v.description(
      'the mTLS client certificate presented to the receiver (its private key is never shown), or null',
    ),
  ),
  created_at: Time,
  updated_at: Time,
});
export type WebhookJson = v.InferOutput<typeof WebhookSchema>;

export const WebhookCreatedSchema = v.strictObject({
  ...WebhookSchema.entries,
  secret: v.pipe(v.string(), v.description('shown only in this answer')),
});

export const SecretSchema = v.strictObject({
  secret: v.pipe(v.string(), v.description('the new secret, shown only here')),
});

export const QuotaLimitsSchema = v.strictObject({
  max_events_per_sec: Int,
  max_concurrent_deliveries: Int,
  max_dlq_size: Int,
});

export const TenantSchema = v.strictObject({
  id: Id,
  name: v.string(),
  quotas: QuotaLimitsSchema,
  created_at: Time,
});
export type TenantJson = v.InferOutput<typeof TenantSchema>;

export const TenantCreatedSchema = v.strictObject({
  ...TenantSchema.entries,
  api_key: v.pipe(v.string(), v.description('shown only in this answer')),
});

export const QuotaSchema = v.strictObject({
  tenant_id: Id,
  limits: QuotaLimitsSchema,
  current_usage: v.strictObject({
    events_this_second: Int,
    in_flight_deliveries: Int,
    dlq_size: Int,
    over_dlq_limit: v.boolean(),
  }),
});
export type QuotaJson = v.InferOutput<typeof QuotaSchema>;

export const EventSchema = v.strictObject({
  id: Id,
  tenant_id: Id,
  type: v.string(),
  payload: v.pipe(
    v.unknown(),
    v.description(
      "the producer's payload; null either when the producer sent null or when retention removed it (payload_removed tells which)",
    ),
  ),
  payload_removed: v.pipe(
    v.boolean(),
    v.description(
      'true when retention (RETENTION_PAYLOAD_DAYS) removed the payload: payload is then null, and a replay of its deliveries answers 409',
    ),
  ),
  timestamp: Time,
  idempotency_key: nullable(v.string()),
  traceparent: nullable(v.string()),
  version: v.pipe(
    nullable(Int),
    v.description('the catalog version of its type (docs/event-types.md); null: the type is not catalogued'),
  ),
  metadata: v.pipe(nullable(v.record(v.string(), v.string())), v.description("the producer's string map")),
  source: v.pipe(nullable(v.string()), v.description("the producer's name")),
  received_at: Time,
});
export type EventJson = v.InferOutput<typeof EventSchema>;

export const EventTypeVersionSchema = v.strictObject({
  version: Int,
  schema: v.pipe(
    v.unknown(),
    v.description(
      'JSON Schema (subset: docs/event-types.md) the payloads of this version must satisfy; null: any',
    ),
  ),
  example: v.pipe(v.unknown(), v.description('an example payload (valid against the schema); null: none')),
  created_at: Time,
});

export const EventTypeSchema = v.strictObject({
  id: Id,
  tenant_id: Id,
  name: v.pipe(v.string(), v.description('the event type (events.type)')),
  description: v.string(),
  deprecated: v.pipe(v.boolean(), v.description('informational: events of the type are still accepted')),
  latest_version: v.pipe(Int, v.description('the version an event of this type gets when it names none')),
  versions: v.array(EventTypeVersionSchema),
  created_at: Time,
  updated_at: Time,
});
export type EventTypeJson = v.InferOutput<typeof EventTypeSchema>;

export const DeliveryStatusSchema = v.picklist(['pending', 'in_flight', 'succeeded', 'failed', 'cancelled']);

export const EventDeliverySchema = v.strictObject({
  id: Id,
  webhook_id: Id,
  status: DeliveryStatusSchema,
  attempts: Int,
  next_attempt_at: nullable(Time),
  last_status_code: nullable(Int),
  last_error: nullable(v.string()),
  created_at: Time,
  completed_at: nullable(Time),
});
export type EventDeliveryJson = v.InferOutput<typeof EventDeliverySchema>;

export const EventDetailSchema = v.strictObject({
  ...EventSchema.entries,
  deliveries: v.array(EventDeliverySchema),
  deliveries_truncated: v.boolean(),
});

export const IngestAnswerSchema = v.strictObject({
  event_id: Id,
  webhooks_queued: Int,
  delivery_ids: v.array(Id),
});
export type IngestAnswerJson = v.InferOutput<typeof IngestAnswerSchema>;

export const BatchAnswerSchema = v.strictObject({ data: v.array(IngestAnswerSchema) });

export const DeliverySchema = v.strictObject({
  id: Id,
  tenant_id: Id,
  event_id: Id,
  webhook_id: Id,
  event_type: v.string(),
  status: DeliveryStatusSchema,
  attempts: v.pipe(Int, v.description('attempts in the current cycle')),
  attempt_count: Int,
  next_attempt_at: nullable(Time),
  last_attempt_at: nullable(Time),
  last_status_code: nullable(Int),
  last_error: nullable(v.string()),
  created_at: Time,
  updated_at: Time,
  completed_at: nullable(Time),
});
export type DeliveryJson = v.InferOutput<typeof DeliverySchema>;

export const AttemptSchema = v.strictObject({
  attempt: Int,
  started_at: Time,
  duration_ms: Int,
  status_code: nullable(Int),
  error: nullable(v.string()),
  response_excerpt: nullable(v.string()),
});
export type AttemptJson = v.InferOutput<typeof AttemptSchema>;

export const DeliveryDetailSchema = v.strictObject({
  ...DeliverySchema.entries,
  attempts: v.pipe(v.array(AttemptSchema), v.description('every attempt of every cycle, oldest first')),
});

export const RequeuedDeliverySchema = v.strictObject({ delivery_id: Id, status: v.literal('pending') });

export const RequeuedCountSchema = v.strictObject({ requeued: Int });

export const DeadLetterSchema = v.strictObject({
  delivery_id: Id,
  tenant_id: Id,
  webhook_id: Id,
  event_id: Id,
  event_type: v.string(),
  last_error: nullable(v.string()),
  attempts: Int,
  dead_at: Time,
  fifo_order_broken: v.pipe(
    v.boolean(),
    v.description(
      'true when it died in a FIFO queue: the deliveries queued after it to this webhook go (or went) out without it; POST /dlq/{delivery_id}/retry puts it back ahead of those still queued',
    ),
  ),
});
export type DeadLetterJson = v.InferOutput<typeof DeadLetterSchema>;

export const AuditSchema = v.strictObject({
  at: Time,
  actor: v.string(),
  action: v.string(),
  object_type: v.string(),
  object_id: v.string(),
  tenant_id: nullable(Id),
  changes: v.pipe(
    nullable(v.record(v.string(), v.unknown())),
    v.description(
      'what changed; an update carries `before` and `after` with the fields it touched; secrets appear only as "[redacted]"',
    ),
  ),
  key_prefix: v.pipe(
    nullable(v.string()),
    v.description('prefix of the API key that acted (also for the configured admin key); null for `system`'),
  ),
  client_ip: v.pipe(
    nullable(v.string()),
    v.description(
      "the caller's address; behind the trusted proxy, the one it forwarded (X-Forwarded-For); null for `system`",
    ),
  ),
});
export type AuditJson = v.InferOutput<typeof AuditSchema>;

export const ApiKeySchema = v.strictObject({
  id: Id,
  tenant_id: v.pipe(nullable(Id), v.description('null for an admin key')),
  name: nullable(v.string()),
  prefix: v.pipe(v.string(), v.description('the start of the key, to recognise it; the audit actor')),
  created_at: Time,
  last_used_at: nullable(Time),
  expires_at: nullable(Time),
  revoked_at: nullable(Time),
  active: v.boolean(),
});
export type ApiKeyJson = v.InferOutput<typeof ApiKeySchema>;

export const ApiKeyCreatedSchema = v.strictObject({
  ...ApiKeySchema.entries,
  api_key: v.pipe(v.string(), v.description('the key itself, shown only in this answer')),
});

export const ApiKeyRotatedSchema = v.strictObject({
  ...ApiKeyCreatedSchema.entries,
  replaced: v.pipe(ApiKeySchema, v.description('the old key: it works until its expires_at')),
});

export const TestSendResultSchema = v.strictObject({
  status_code: v.pipe(nullable(Int), v.description('null when no answer came (timeout, refused, SSRF)')),
  duration_ms: Int,
  response_excerpt: v.pipe(nullable(v.string()), v.description('the first 1 KiB of the answer')),
  error: v.pipe(nullable(v.string()), v.description('why the attempt failed; null for a 2xx')),
});

export const RecoverySchema = v.strictObject({
  requeued: v.pipe(Int, v.description('failed deliveries of the window queued again')),
  recovery_id: Id,
  already_running: v.pipe(
    v.boolean(),
    v.description('true: a recovery of the same window is still on its way; its answer, nothing queued'),
  ),
});

export const HealthSchema = v.strictObject({ status: v.literal('ok') });
export const ReadySchema = v.strictObject({
  status: v.picklist(['ready', 'migrations_pending', 'database_unavailable']),
});

export const SessionSchema = v.strictObject({
  kind: v.picklist(['admin', 'tenant']),
  tenant_id: nullable(Id),
});

export const WebhookHealthSchema = v.strictObject({
  id: Id,
  tenant_id: Id,
  url: v.string(),
  description: nullable(v.string()),
  enabled: v.boolean(),
  created_at: Time,
  health: v.strictObject({
    pending: Int,
    due: Int,
    in_flight: Int,
    succeeded_attempts_1h: Int,
    failed_attempts_1h: Int,
    succeeded_attempts_24h: Int,
    failed_attempts_24h: Int,
    success_rate_24h: nullable(v.number()),
    consecutive_failures: Int,
    last_success_at: nullable(Time),
    oldest_due_at: nullable(Time),
    breaker_state: v.string(),
    dead_letters: Int,
    concurrency_limit: v.pipe(
      Int,
      v.description('the adaptive in-flight limit now, at most max_concurrency'),
    ),
    max_concurrency: Int,
    latency_floor_ms: v.pipe(
      nullable(v.number()),
      v.description('recent minimum of the median 2xx duration: latency well above it cuts the limit'),
    ),
  }),
});
export type WebhookHealthJson = v.InferOutput<typeof WebhookHealthSchema>;

export const WebhookStatsSchema = v.strictObject({
  webhook_id: Id,
  hours: Int,
  buckets: v.pipe(
    v.array(v.strictObject({ start: Time, succeeded: Int, failed: Int })),
    v.description('one per hour of the window, oldest first; attempts answered 2xx, and all others'),
  ),
});
export type WebhookStatsJson = v.InferOutput<typeof WebhookStatsSchema>;

const QuotaUseSchema = v.strictObject({
  limit: Int,
  used: Int,
  percent: v.pipe(v.number(), v.description('used as a percentage of limit, to 0.1; over 100 when past it')),
});

export const TenantQuotaUsageSchema = v.strictObject({
  tenant_id: Id,
  name: v.string(),
  peak_percent: v.pipe(v.number(), v.description('the highest of the three percentages')),
  quotas: v.strictObject({
    events_per_sec: v.pipe(
      QuotaUseSchema,
      v.description('used: events in the busiest second of the last minute'),
    ),
    concurrent_deliveries: v.pipe(QuotaUseSchema, v.description('used: deliveries in flight now')),
    dlq_size: v.pipe(QuotaUseSchema, v.description('used: rows in the dead-letter queue')),
  }),
});
export type TenantQuotaUsageJson = v.InferOutput<typeof TenantQuotaUsageSchema>;

export const TenantQuotaUsageListSchema = v.strictObject({
  data: v.pipe(
    v.array(TenantQuotaUsageSchema),
    v.description('highest peak_percent first: a ranking, not a paged list'),
  ),
});

/**
 * Named schemas: each becomes `#/components/schemas/<name>` in the document and is referenced
 * wherever it appears. Add a response schema here to give it a name.
 */
export const NAMED_SCHEMAS = {
  Error: ErrorSchema,
  Webhook: WebhookSchema,
  WebhookCreated: WebhookCreatedSchema,
  RetryPolicy: RetryPolicySchema,
  Tenant: TenantSchema,
  TenantCreated: TenantCreatedSchema,
  QuotaLimits: QuotaLimitsSchema,
  Quota: QuotaSchema,
  Event: EventSchema,
  EventDetail: EventDetailSchema,
  EventDelivery: EventDeliverySchema,
  EventType: EventTypeSchema,
  EventTypeVersion: EventTypeVersionSchema,
  IngestAnswer: IngestAnswerSchema,
  Delivery: DeliverySchema,
  DeliveryDetail: DeliveryDetailSchema,
  DeliveryStatus: DeliveryStatusSchema,
  Attempt: AttemptSchema,
  DeadLetter: DeadLetterSchema,
  Audit: AuditSchema,
  WebhookHealth: WebhookHealthSchema,
  WebhookStats: WebhookStatsSchema,
  TenantQuotaUsage: TenantQuotaUsageSchema,
  ApiKey: ApiKeySchema,
  ApiKeyCreated: ApiKeyCreatedSchema,
} satisfies Record<string, v.GenericSchema>;
