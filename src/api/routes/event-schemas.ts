/** valibot schemas for /events bodies and queries. */
import * as v from 'valibot';
import { PageQuery } from '../pagination.js';
import { IsoDate, Uuid } from '../validate.js';
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

/** ISO 8601 with a time zone, between 1970 and 9999, as a Date. */
export const Timestamp = IsoDate;

export const EventBody = v.strictObject({
  type: ProducerEventType,
  // Any JSON value, null included; only a missing key is an error (strictObject reports it).
  payload: v.unknown(),
  timestamp: v.optional(Timestamp),
  idempotency_key: v.optional(IdempotencyKey),
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
