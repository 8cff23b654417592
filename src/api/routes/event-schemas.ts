/** valibot schemas for /events bodies and queries. */
import * as v from 'valibot';
import { PageQuery } from '../pagination.js';
import { IsoDate, NoNul, Uuid } from '../validate.js';
import { EVENT_TYPE_MAX_LENGTH, isEventType, isOperationalEventType } from '../../ingest/event-types.js';

export const MAX_BATCH_EVENTS = 1000;

export const EventType = v.pipe(
  v.string('must be a string'),
  v.minLength(1, 'must not be empty'),
  v.maxLength(EVENT_TYPE_MAX_LENGTH, `must be at most ${EVENT_TYPE_MAX_LENGTH} characters`),
  v.check(isEventType, 'may contain only letters, digits and _ . : - (no *)'),
);

/** What a producer may send: postbox.* is Postbox's own (operational notices), so a receiver can trust it. */
export const ProducerEventType = v.pipe(
  EventType,
  v.check((t: string) => !isOperationalEventType(t), 'postbox.* event types are reserved for Postbox itself'),
);

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\x00-\x1f\x7f]/;

export const IdempotencyKey = v.pipe(
  v.string('must be a string'),
  v.minLength(1, 'must not be empty'),
  v.maxLength(255, 'must be at most 255 characters'),
  v.check((s: string) => !CONTROL.test(s), 'must not contain control characters'),
);

/** A catalog version (docs/event-types.md); the type's latest when absent. */
export const Version = v.pipe(
  v.number('must be a number'),
  v.integer('must be a whole number'),
  v.minValue(1, 'must be at least 1'),
  v.maxValue(2147483647, 'must be at most 2147483647'),
);

/** The producer's name for itself. */
export const Source = v.pipe(
  v.string('must be a string'),
  v.minLength(1, 'must not be empty'),
  v.maxLength(100, 'must be at most 100 characters'),
  v.check((s: string) => !CONTROL.test(s), 'must not contain control characters'),
);

export const METADATA_MAX_KEYS = 50;
const MetadataKey = v.pipe(
  v.string(),
  v.check(
    (k: string) => k.length >= 1 && k.length <= 40 && !CONTROL.test(k),
    'is not a valid key: 1-40 characters, no control characters',
  ),
);

/** A string-to-string map, delivered as is. The same limits as postbox.check_envelope (SQL). */
export const Metadata = v.pipe(
  // v.record alone takes an array as an object of its indexes.
  v.unknown(),
  v.check((m) => typeof m === 'object' && m !== null && !Array.isArray(m), 'must be an object of strings'),
  v.record(
    MetadataKey,
    v.pipe(v.string('must be a string'), v.maxLength(500, 'must be at most 500 characters'), NoNul),
    'must be an object of strings',
  ),
  v.check(
    (m: Record<string, string>) => Object.keys(m).length <= METADATA_MAX_KEYS,
    `must have at most ${METADATA_MAX_KEYS} keys`,
  ),
);

/** ISO 8601 with a time zone, between 1970 and 9999, as a Date. */
export const Timestamp = IsoDate;

export const EventBody = v.strictObject({
  type: ProducerEventType,
  // Any JSON value, null included; only a missing key is an error (strictObject reports it).
  payload: v.unknown(),
  timestamp: v.optional(Timestamp),
  idempotency_key: v.optional(IdempotencyKey),
  version: v.optional(Version),
  metadata: v.optional(Metadata),
  source: v.optional(Source),
  tenant_id: v.optional(Uuid),
});
export type EventBodyInput = v.InferOutput<typeof EventBody>;

export const BatchBody = v.strictObject({
  // The size is checked before the items, so an oversized batch gets one error, not one per item.
  events: v.pipe(
    v.array(v.unknown(), 'must be an array of events'),
    v.minLength(1, 'must hold at least one event'),
    v.maxLength(MAX_BATCH_EVENTS, `must hold at most ${MAX_BATCH_EVENTS} events`),
    v.array(EventBody),
  ),
});

export const ListEventsQuery = v.strictObject({
  ...PageQuery,
  type: v.optional(EventType),
  from: v.optional(Timestamp),
  to: v.optional(Timestamp),
  tenant_id: v.optional(Uuid),
});
