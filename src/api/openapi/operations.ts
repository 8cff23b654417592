/**
 * The route table of the OpenAPI document: one entry per Express route, naming the schemas the
 * route validates with. test/api/openapi.test.ts fails when a route is missing here (or listed here
 * but not served), so adding a route means adding its entry:
 *
 *   { route: 'POST /things/:id/poke', tag: 'Things', summary: 'Poke a thing', auth: 'key',
 *     params: IdParams, body: PokeBody, responses: { 200: ThingSchema } },
 *
 * `body`/`query`/`params` are the exact valibot schemas passed to parseInput; answers come from
 * src/api/response-schemas.ts (add a schema there and name it in NAMED_SCHEMAS). Implied error
 * answers (401, 403, 400, 404, 413, 415, 503) are added by document.ts; list others in `errors`.
 */
import * as v from 'valibot';
import type { Operation } from './operation.js';
import { IdParams, NoBody } from '../validate.js';
import * as R from '../response-schemas.js';
import { CreateWebhook, ListWebhooksQuery, RotateSecret, UpdateWebhook } from '../routes/webhook-schemas.js';
import { BatchBody, EventBody, ListEventsQuery } from '../routes/event-schemas.js';
import {
  CreateEventType,
  EventTypeParams,
  EventTypeScopeQuery,
  ListEventTypesQuery,
  UpdateEventType,
} from '../routes/event-type-schemas.js';
import { ListDeliveriesQuery } from '../routes/deliveries.js';
import { BulkRetryBody, ListDlqQuery, RetryParams } from '../routes/dlq.js';
import { CreateTenant } from '../routes/tenants.js';
import { PatchQuotas, TenantParams } from '../routes/quotas.js';
import { ListAuditQuery } from '../routes/audit.js';
import {
  AdminKeyParams,
  ApiKeysQuery,
  CreateApiKey,
  RotateApiKey,
  TenantKeyParams,
  TenantParams as KeyOwnerParams,
} from '../routes/api-keys.js';
import { HealthQuery, StatsParams, StatsQuery, TenantUsageQuery } from '../routes/console-schemas.js';
import { RecoverBody, TestSendBody } from '../routes/webhook-actions.js';

const json = (description: string, schema: v.GenericSchema) => ({ description, schema });
const TRACEPARENT =
  'W3C trace context; delivered to receivers as `traceparent` (while Postbox traces: the delivery attempt span’s, in the same trace).';

export const OPERATIONS: readonly Operation[] = [
  // Health and documents (no key)
  {
    route: 'GET /health',
    tag: 'Health',
    summary: 'Liveness',
    auth: 'none',
    responses: { 200: R.HealthSchema },
  },
  {
    route: 'GET /ready',
    tag: 'Health',
    summary: 'Readiness: the database answers and migrations are current',
    auth: 'none',
    responses: { 200: json('ready', R.ReadySchema), 503: json('not ready', R.ReadySchema) },
  },
  {
    route: 'GET /metrics',
    tag: 'Health',
    summary: 'Prometheus metrics',
    auth: 'none',
    responses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' } },
  },
  {
    route: 'GET /openapi.json',
    tag: 'Health',
    summary: 'This document',
    auth: 'none',
    responses: { 200: json('the OpenAPI 3.1 document', v.looseObject({ openapi: v.string() })) },
  },

  // Tenants and quotas
  {
    route: 'POST /tenants',
    tag: 'Tenants',
    summary: 'Create a tenant and its first API key',
    auth: 'admin',
    body: CreateTenant,
    responses: { 201: json('created; `api_key` is shown only here', R.TenantCreatedSchema) },
  },
  {
    route: 'GET /tenants/:id',
    tag: 'Tenants',
    summary: 'Read a tenant',
    auth: 'admin',
    params: IdParams,
    responses: { 200: R.TenantSchema },
  },
  {
    route: 'GET /quotas/:tenant_id',
    tag: 'Tenants',
    summary: "A tenant's limits and current usage",
    auth: 'key',
    params: TenantParams,
    responses: { 200: R.QuotaSchema },
  },
  {
    route: 'PATCH /quotas/:tenant_id',
    tag: 'Tenants',
    summary: "Change a tenant's limits (audited)",
    auth: 'admin',
    params: TenantParams,
    body: PatchQuotas,
    responses: { 200: R.QuotaSchema },
  },

  // API keys: a tenant's (its own key or the admin key), and the operator's (admin key)
  {
    route: 'GET /tenants/:id/api-keys',
    tag: 'API keys',
    summary: "List a tenant's API keys (never the keys themselves)",
    auth: 'key',
    params: KeyOwnerParams,
    query: ApiKeysQuery,
    responses: { 200: R.pageOf(R.ApiKeySchema) },
  },
  {
    route: 'POST /tenants/:id/api-keys',
    tag: 'API keys',
    summary: 'Create another API key for a tenant',
    auth: 'key',
    params: KeyOwnerParams,
    body: CreateApiKey,
    responses: { 201: json('created; `api_key` is shown only here', R.ApiKeyCreatedSchema) },
  },
  {
    route: 'DELETE /tenants/:id/api-keys/:key_id',
    tag: 'API keys',
    summary: 'Revoke a tenant API key at once',
    auth: 'key',
    params: TenantKeyParams,
    responses: { 204: { description: 'revoked' } },
  },
  {
    route: 'POST /tenants/:id/api-keys/:key_id/rotate',
    tag: 'API keys',
    summary: 'Replace a tenant API key; the old one works for `overlap_seconds` (default 86400)',
    auth: 'key',
    params: TenantKeyParams,
    body: RotateApiKey,
    responses: { 201: json('the new key, shown only here, and the old one', R.ApiKeyRotatedSchema) },
    errors: [409],
  },
  {
    route: 'GET /admin/api-keys',
    tag: 'API keys',
    summary: 'List admin keys',
    auth: 'admin',
    query: ApiKeysQuery,
    responses: { 200: R.pageOf(R.ApiKeySchema) },
  },
  {
    route: 'POST /admin/api-keys',
    tag: 'API keys',
    summary: 'Create another admin key',
    auth: 'admin',
    body: CreateApiKey,
    responses: { 201: json('created; `api_key` is shown only here', R.ApiKeyCreatedSchema) },
  },
  {
    route: 'DELETE /admin/api-keys/:key_id',
    tag: 'API keys',
    summary: 'Revoke an admin key (not the last active one: 409)',
    auth: 'admin',
    params: AdminKeyParams,
    responses: { 204: { description: 'revoked' } },
    errors: [409],
  },
  {
    route: 'POST /admin/api-keys/:key_id/rotate',
    tag: 'API keys',
    summary: 'Replace an admin key; the configured one is rewritten in DATA_DIR/admin-api-key',
    auth: 'admin',
    params: AdminKeyParams,
    body: RotateApiKey,
    responses: { 201: json('the new key, shown only here, and the old one', R.ApiKeyRotatedSchema) },
    errors: [409],
  },

  // Webhooks
  {
    route: 'POST /webhooks',
    tag: 'Webhooks',
    summary: 'Register a webhook',
    description:
      'The URL must be absolute http(s) and must not resolve to a private, loopback, link-local or metadata address (SSRF guard). Without `secret`, one is generated (`whsec_` + base64 of 32 bytes); the secret is shown only in this answer. The admin key must name `tenant_id`.',
    auth: 'key',
    body: CreateWebhook,
    responses: { 201: json('created; `secret` is shown only here', R.WebhookCreatedSchema) },
    errors: [404],
  },
  {
    route: 'GET /webhooks',
    tag: 'Webhooks',
    summary: 'List webhooks, newest first',
    auth: 'key',
    query: ListWebhooksQuery,
    responses: { 200: R.pageOf(R.WebhookSchema) },
    errors: [404],
  },
  {
    route: 'GET /webhooks/:id',
    tag: 'Webhooks',
    summary: 'Read a webhook (never its secret)',
    auth: 'key',
    params: IdParams,
    responses: { 200: R.WebhookSchema },
  },
  {
    route: 'PATCH /webhooks/:id',
    tag: 'Webhooks',
    summary: 'Change a webhook; `enabled: true` also closes its circuit breaker',
    auth: 'key',
    params: IdParams,
    body: UpdateWebhook,
    responses: { 200: R.WebhookSchema },
  },
  {
    route: 'DELETE /webhooks/:id',
    tag: 'Webhooks',
    summary: 'Delete a webhook; its undelivered deliveries become cancelled',
    auth: 'key',
    params: IdParams,
    responses: { 204: { description: 'deleted' } },
  },
  {
    route: 'POST /webhooks/:id/rotate-secret',
    tag: 'Webhooks',
    summary: 'Rotate the signing secret',
    description:
      'The old secret keeps signing beside the new one for `overlap_seconds` (default 86400): receivers see two `v1,` signatures in `webhook-signature` meanwhile.',
    auth: 'key',
    params: IdParams,
    body: RotateSecret,
    bodyOptional: true,
    responses: { 200: json('the new secret, shown only here', R.SecretSchema) },
  },

  {
    route: 'POST /webhooks/:id/test',
    tag: 'Webhooks',
    summary: 'Send a test event now and answer with the outcome',
    description:
      "One attempt, synchronously, within the webhook's `timeout_ms`, through the same sender as real deliveries: the same envelope and headers, signed with every active secret, the same SSRF checks, no redirects. The `webhook-id` is fresh (never a real delivery's). Disabled webhooks can be tested; the webhook's `event_types` do not filter it. Nothing is stored as a delivery: the webhook's health, circuit breaker, quotas and metrics are untouched. Audited as `webhook.test`. An answer from the receiver (whatever its status) and no answer alike are a 200 here: read `status_code` and `error`.",
    auth: 'key',
    params: IdParams,
    body: TestSendBody,
    responses: { 200: json('what the attempt got', R.TestSendResultSchema) },
  },

  {
    route: 'POST /webhooks/:id/recover',
    tag: 'Webhooks',
    summary: "Recover an outage: queue again the webhook's failed deliveries of a time window",
    description:
      'Every delivery of this webhook whose event arrived in `[since, until)` and whose retries ran out (status `failed`, in the DLQ) starts a new cycle: same delivery id (receivers deduplicate on `webhook-id`), attempts from 0, due now; it leaves the DLQ. Asked again for the same window while any of those deliveries is still pending or in flight, it answers that recovery (`already_running: true`) and queues nothing. Audited as `webhook.recover`.',
    auth: 'key',
    params: IdParams,
    body: RecoverBody,
    responses: { 202: json('queued', R.RecoverySchema) },
  },

  // Events
  {
    route: 'POST /events',
    tag: 'Events',
    summary: 'Accept an event',
    description:
      'Stored with one delivery per matching webhook in one transaction. With an idempotency key (body `idempotency_key` or header `Idempotency-Key`) seen before for the tenant, the first answer comes back with 200 and nothing new is queued.',
    auth: 'key',
    body: EventBody,
    headers: { 'Idempotency-Key': 'same as body `idempotency_key`', traceparent: TRACEPARENT },
    responses: {
      202: json('accepted and queued', R.IngestAnswerSchema),
      200: json(
        'this idempotency key was seen before: the first answer, nothing queued',
        R.IngestAnswerSchema,
      ),
    },
    errors: [404, 429],
  },
  {
    route: 'POST /events/batch',
    tag: 'Events',
    summary: 'Accept up to 1000 events in one call',
    description:
      'All-or-nothing validation; answers in the order sent. Each event may carry `idempotency_key`.',
    auth: 'key',
    body: BatchBody,
    headers: { traceparent: TRACEPARENT },
    responses: { 202: json('accepted, in order', R.BatchAnswerSchema) },
    errors: [404, 429],
  },
  {
    route: 'GET /events',
    tag: 'Events',
    summary: 'List events, newest first',
    auth: 'key',
    query: ListEventsQuery,
    responses: { 200: R.pageOf(R.EventSchema) },
    errors: [404],
  },
  {
    route: 'GET /events/:id',
    tag: 'Events',
    summary: 'Read an event with its deliveries (the first 1000)',
    auth: 'key',
    params: IdParams,
    responses: { 200: R.EventDetailSchema },
  },

  // Event-type catalog
  {
    route: 'POST /event-types',
    tag: 'Event types',
    summary: 'Add an event type to the catalog, with its version 1',
    description:
      'A `schema` (JSON Schema, the subset in docs/event-types.md: type, properties, required, additionalProperties, enum, const, items, minItems, maxItems, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern; annotations such as title, description and format are accepted and not enforced) is checked at ingest: POST /events, /events/batch and postbox.emit refuse a payload that does not satisfy it with 400 naming the JSON path. Any other keyword is refused here. The `example` must satisfy the schema.',
    auth: 'key',
    body: CreateEventType,
    responses: { 201: json('created', R.EventTypeSchema) },
    errors: [404, 409],
  },
  {
    route: 'GET /event-types',
    tag: 'Event types',
    summary: 'List the catalog, newest first',
    auth: 'key',
    query: ListEventTypesQuery,
    responses: { 200: R.pageOf(R.EventTypeSchema) },
    errors: [404],
  },
  {
    route: 'GET /event-types/:name',
    tag: 'Event types',
    summary: 'Read an event type with all its versions (the admin key names `tenant_id`)',
    auth: 'key',
    params: EventTypeParams,
    query: EventTypeScopeQuery,
    responses: { 200: R.EventTypeSchema },
  },
  {
    route: 'PATCH /event-types/:name',
    tag: 'Event types',
    summary: 'Change the description, deprecate, or add a version (latest + 1)',
    description:
      'Versions are append-only: `new_version` adds one with its own `schema` and `example`; events that name no version get the latest from then on. `deprecated` is informational (events are still accepted).',
    auth: 'key',
    params: EventTypeParams,
    query: EventTypeScopeQuery,
    body: UpdateEventType,
    responses: { 200: R.EventTypeSchema },
  },

  // Deliveries and dead letters
  {
    route: 'GET /deliveries',
    tag: 'Deliveries',
    summary: 'List deliveries, newest first',
    auth: 'key',
    query: ListDeliveriesQuery,
    responses: { 200: R.pageOf(R.DeliverySchema) },
    errors: [404],
  },
  {
    route: 'GET /deliveries/:id',
    tag: 'Deliveries',
    summary: 'Read a delivery with all its attempts',
    auth: 'key',
    params: IdParams,
    responses: { 200: R.DeliveryDetailSchema },
  },
  {
    route: 'POST /deliveries/:id/replay',
    tag: 'Deliveries',
    summary: 'Deliver again (a new cycle, same delivery id)',
    auth: 'key',
    params: IdParams,
    body: NoBody,
    responses: { 202: json('queued', R.RequeuedDeliverySchema) },
    errors: [409],
  },
  {
    route: 'GET /dlq',
    tag: 'Dead letters',
    summary: 'List dead-lettered deliveries, newest first',
    auth: 'key',
    query: ListDlqQuery,
    responses: { 200: R.pageOf(R.DeadLetterSchema) },
    errors: [404],
  },
  {
    route: 'POST /dlq/retry',
    tag: 'Dead letters',
    summary: 'Queue every matching dead letter again',
    auth: 'key',
    body: BulkRetryBody,
    responses: { 202: json('how many were queued', R.RequeuedCountSchema) },
    errors: [404],
  },
  {
    route: 'POST /dlq/:delivery_id/retry',
    tag: 'Dead letters',
    summary: 'Queue one dead letter again',
    auth: 'key',
    params: RetryParams,
    body: NoBody,
    responses: { 202: json('queued', R.RequeuedDeliverySchema) },
    errors: [409],
  },

  // Audit and console
  {
    route: 'GET /audit',
    tag: 'Audit',
    summary: 'The audit log, newest first',
    description:
      'One row per change, written in the transaction of the change: who (`actor`: a tenant key prefix, `admin`, `admin:<prefix>` or `system`; `key_prefix`; `client_ip`, the address Express reports under the trusted-proxy setting), what (`action`, `object_type`, `object_id`, `tenant_id`) and `changes`: updates carry `before` and `after` with the fields they touched. Secrets, signing keys and private keys never appear; where one changed, its value is `"[redacted]"`.',
    auth: 'admin',
    query: ListAuditQuery,
    responses: { 200: R.pageOf(R.AuditSchema) },
  },
  {
    route: 'GET /console/api/session',
    tag: 'Console',
    summary: 'Who this key is',
    auth: 'key',
    responses: { 200: R.SessionSchema },
  },
  {
    route: 'GET /console/api/webhook-health',
    tag: 'Console',
    summary: 'Webhooks with their delivery health, newest first',
    auth: 'key',
    query: HealthQuery,
    responses: { 200: R.pageOf(R.WebhookHealthSchema) },
    errors: [404],
  },
  {
    route: 'GET /console/api/tenant-usage',
    tag: 'Console',
    summary:
      'Tenants by quota use, nearest their limits first (the tenant_quota_usage view); a tenant key sees its own',
    auth: 'key',
    query: TenantUsageQuery,
    responses: { 200: R.TenantQuotaUsageListSchema },
    errors: [404],
  },
  {
    route: 'GET /console/api/webhooks/:id/stats',
    tag: 'Console',
    summary: "One webhook's attempts per hour (succeeded / failed) over the last `hours` (1–168, default 24)",
    auth: 'key',
    params: StatsParams,
    query: StatsQuery,
    responses: { 200: R.WebhookStatsSchema },
  },
];
