/** valibot schemas for /webhooks bodies and queries, and the retry-policy merge they need. */
import * as v from 'valibot';
import { AppError } from '../../errors.js';
import { PageQuery } from '../pagination.js';
import { NoNul, Uuid } from '../validate.js';
import { WEBHOOK_URL_MAX_LENGTH } from '../webhook-url.js';
import { isEventTypePattern } from '../../ingest/event-types.js';
import { webhookSecretProblem } from '../../security/webhook-secrets.js';
import { RETRY_POLICY_LIMITS, type RetryPolicy } from '../../delivery/retry-policy.js';
import { parseFilter } from '../../ingest/payload-filter.js';
import {
  CLIENT_PEM_MAX_LENGTH,
  clientCertificateProblems,
  type ClientCertificateInput,
} from '../../security/client-cert.js';
import type { StoredFilter } from '../../queries/webhooks.js';

const wholeNumber = (min: number, max: number) =>
  v.pipe(
    v.number('must be a number'),
    v.integer('must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const Url = v.pipe(
  v.string('must be a string'),
  v.maxLength(WEBHOOK_URL_MAX_LENGTH, `must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`),
  NoNul,
);

// The message is built from webhookSecretProblem, which never repeats the secret.
const Secret = v.pipe(
  v.string('must be a string'),
  v.check(
    (s: string) => webhookSecretProblem(s) === undefined,
    (issue) => webhookSecretProblem(String(issue.input)) ?? 'is not valid',
  ),
);

const EventTypes = v.pipe(
  v.array(
    v.pipe(
      v.string('must be a string'),
      v.check(
        isEventTypePattern,
        'must be an event type (order.created), a trailing wildcard (order.*) or *',
      ),
    ),
    'must be an array of event types',
  ),
  v.minLength(1, 'must not be empty (use ["*"] for every type)'),
  v.maxLength(100, 'must have at most 100 entries'),
  v.transform((types) => [...new Set(types)]),
);

const Description = v.nullable(
  v.pipe(v.string('must be a string or null'), v.maxLength(1000, 'must be at most 1000 characters'), NoNul),
);

const { maxAttempts, initialDelayMs, maxDelayMs, maxAgeSeconds } = RETRY_POLICY_LIMITS;
const MaxAgeSeconds = v.pipe(
  v.nullable(wholeNumber(maxAgeSeconds.min, maxAgeSeconds.max)),
  v.description(
    'deadline: a delivery is dead-lettered instead of retried when its next attempt would fall more than ' +
      'this many seconds after its delivery cycle began (queued, replayed or retried from the DLQ); null: none',
  ),
);
const RetryPolicyInput = v.strictObject(
  {
    max_attempts: v.optional(wholeNumber(maxAttempts.min, maxAttempts.max)),
    initial_delay_ms: v.optional(wholeNumber(initialDelayMs.min, initialDelayMs.max)),
    max_delay_ms: v.optional(wholeNumber(maxDelayMs.min, maxDelayMs.max)),
    max_age_seconds: v.optional(MaxAgeSeconds),
  },
  'must be an object with max_attempts, initial_delay_ms, max_delay_ms and/or max_age_seconds',
);
export type RetryPolicyPatch = v.InferOutput<typeof RetryPolicyInput>;

/** Checked and compiled by the route (webhookFilter), which names every problem by its path. */
const Filter = v.pipe(
  v.nullable(v.unknown()),
  v.description(
    'Payload filter (docs/filters.md): {"and"|"or": [conditions]}, {"not": condition}, or ' +
      '{"path": "dotted.payload.path", <op>: value} with op one of eq, ne, in, nin, gt, gte, lt, lte, exists. ' +
      'Only events whose payload matches are delivered; null removes the filter.',
  ),
);

/** A request's filter as stored: null clears it; problems are a 400 naming each path. */
export function webhookFilter(filter: unknown): StoredFilter {
  if (filter === null) return { filter: null, filterPath: null };
  const parsed = parseFilter(filter);
  if ('problems' in parsed) throw AppError.validation('filter is not valid', parsed.problems);
  return { filter, filterPath: parsed.compiled };
}

const Pem = v.pipe(
  v.string('must be a string'),
  v.maxLength(CLIENT_PEM_MAX_LENGTH, `must be at most ${CLIENT_PEM_MAX_LENGTH} characters`),
  NoNul,
);

/** Checked by the route (webhookClientCertificate), which names each problem without echoing it. */
const ClientCertificate = v.pipe(
  v.nullable(
    v.strictObject(
      {
        cert: v.pipe(Pem, v.description('the client certificate as PEM, optionally followed by its chain')),
        key: v.pipe(
          Pem,
          v.description(
            'its private key as unencrypted PEM; stored sealed, never returned, logged or audited',
          ),
        ),
      },
      'must be an object with cert and key',
    ),
  ),
  v.description(
    'mTLS: a client certificate the sender presents to the receiver (https URLs only); null removes it. ' +
      'Answers show only its subject, issuer, fingerprint and expiry.',
  ),
);

/** A request's client certificate, checked; null clears it. Problems are a 400 naming each field. */
export function webhookClientCertificate(input: ClientCertificateInput | null, url: string) {
  if (input === null) return null;
  const problems = clientCertificateProblems(input);
  if (!url.toLowerCase().startsWith('https:'))
    problems.unshift({ path: 'client_certificate.cert', message: 'needs an https url' });
  if (problems.length > 0) throw AppError.validation('client_certificate is not valid', problems);
  return input;
}

const Ordering = v.pipe(
  v.picklist(['none', 'fifo'], 'must be "none" or "fifo"'),
  v.description(
    'fifo: one delivery in flight at a time, in the order events were queued; a dead-lettered head releases the next (docs/fifo.md)',
  ),
);

const TimeoutMs = wholeNumber(1000, 30_000);
// A ceiling: the limit in force adapts below it (src/queries/adaptive-concurrency.ts).
const MaxConcurrency = wholeNumber(1, 1000);

export const CreateWebhook = v.strictObject({
  url: Url,
  secret: v.optional(Secret),
  event_types: v.optional(EventTypes),
  description: v.optional(Description),
  retry_policy: v.optional(RetryPolicyInput),
  timeout_ms: v.optional(TimeoutMs),
  max_concurrency: v.optional(MaxConcurrency),
  filter: v.optional(Filter),
  ordering: v.optional(Ordering),
  client_certificate: v.optional(ClientCertificate),
  tenant_id: v.optional(Uuid),
});

export const UpdateWebhook = v.strictObject({
  url: v.optional(Url),
  event_types: v.optional(EventTypes),
  description: v.optional(Description),
  retry_policy: v.optional(RetryPolicyInput),
  timeout_ms: v.optional(TimeoutMs),
  max_concurrency: v.optional(MaxConcurrency),
  filter: v.optional(Filter),
  ordering: v.optional(Ordering),
  client_certificate: v.optional(ClientCertificate),
  enabled: v.optional(v.boolean('must be true or false')),
});

export const RotateSecret = v.strictObject({
  overlap_seconds: v.optional(wholeNumber(0, 604_800), 86_400),
});

export const ListWebhooksQuery = v.strictObject({ ...PageQuery, tenant_id: v.optional(Uuid) });

/** A partial policy over a base one (the default on create, the current one on PATCH). */
export function mergeRetryPolicy(base: RetryPolicy, patch: RetryPolicyPatch | undefined): RetryPolicy {
  const merged: RetryPolicy = {
    max_attempts: patch?.max_attempts ?? base.max_attempts,
    initial_delay_ms: patch?.initial_delay_ms ?? base.initial_delay_ms,
    max_delay_ms: patch?.max_delay_ms ?? base.max_delay_ms,
    // null is a value here (no deadline), so only an absent field keeps the base's.
    max_age_seconds:
      patch?.max_age_seconds !== undefined ? patch.max_age_seconds : (base.max_age_seconds ?? null),
  };
  if (merged.max_delay_ms < merged.initial_delay_ms)
    throw AppError.validation('retry_policy is not valid', [
      {
        path: 'retry_policy.max_delay_ms',
        message: `must be at least initial_delay_ms (${merged.initial_delay_ms})`,
      },
    ]);
  return merged;
}
