/**
 * Ingest: the transactional outbox. Events and their deliveries are written by one statement
 * (insertEventsWithDeliveries), so they commit together or not at all.
 *
 * Everything goes through `ingestEvents` with a list: POST /events is a batch of one. That keeps one
 * code path, and lets a caller combine concurrent requests into one statement (group commit).
 */
import type { Queryable } from '../db/pool.js';
import { dbAppError } from '../db/errors.js';
import { AppError } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { insertEventsWithDeliveries, type IngestedRow, type IngestRow } from '../queries/events.js';
import { deliveryWakeupFor } from './wakeup.js';

/** One validated event. */
export interface EventInput {
  tenantId: string;
  type: string;
  /** The payload as JSON text, from serializePayload. */
  payloadJson: string;
  /** The producer's timestamp; absent means the time it is stored. */
  timestamp?: Date | undefined;
  idempotencyKey?: string | undefined;
  /** A valid traceparent (parseTraceparent), if the request carried one. */
  traceparent?: string | undefined;
  /** The catalog version the producer names; absent: the type's latest (docs/event-types.md). */
  version?: number | undefined;
  /** The producer's string-to-string map. */
  metadata?: Record<string, string> | undefined;
  /** The producer's name for itself. */
  source?: string | undefined;
}

/** The answer for one event, as the API returns it (plus `created`). */
export interface IngestResult {
  event_id: string;
  webhooks_queued: number;
  delivery_ids: string[];
  /** false: the idempotency key had been used (before, or earlier in the same batch); nothing was queued. */
  created: boolean;
}

const keyOf = (tenantId: string, idempotencyKey: string) => `${tenantId}\u0000${idempotencyKey}`;

/**
 * Stores events and queues a delivery for every matching webhook; answers in input order. A repeated
 * idempotency key (already stored, or earlier in `events`) gets the first event's answer.
 * `db` is the pool: each statement commits on its own, and the workers' wake-up follows the commit.
 * Throws database errors as they are; `ingestFailure` maps them for the API.
 */
export async function ingestEvents(db: Queryable, events: readonly EventInput[]): Promise<IngestResult[]> {
  const results: (IngestResult | undefined)[] = new Array(events.length);
  const firstIndexOfKey = new Map<string, number>();
  const repeatOf = new Map<number, number>();
  const pending: IngestRow[] = [];
  events.forEach((e, ord) => {
    if (e.idempotencyKey !== undefined) {
      const key = keyOf(e.tenantId, e.idempotencyKey);
      const first = firstIndexOfKey.get(key);
      if (first !== undefined) {
        repeatOf.set(ord, first);
        return;
      }
      firstIndexOfKey.set(key, ord);
    }
    pending.push({
      ord,
      id: newId(),
      tenantId: e.tenantId,
      type: e.type,
      payload: e.payloadJson,
      occurredAt: e.timestamp?.toISOString() ?? null,
      idempotencyKey: e.idempotencyKey ?? null,
      traceparent: e.traceparent ?? null,
      version: e.version ?? null,
      metadata: e.metadata ?? null,
      source: e.source ?? null,
    });
  });

  // One statement answers every row: stored, or (idempotency key already used) the first event. It
  // wakes the workers itself unless a wake-up is already under way (src/ingest/wakeup.ts).
  const wakeup = deliveryWakeupFor(db);
  const carry = wakeup.carry();
  let rows: IngestedRow[];
  try {
    rows = await insertRetrying(db, pending, carry.carry ? { always: carry.always } : undefined);
  } catch (err) {
    if (carry.carry) wakeup.carried(carry, false);
    throw err;
  }
  if (carry.carry) wakeup.carried(carry, true);
  else if (rows.some((row) => row.created && row.deliveryIds.length > 0)) wakeup.request();
  for (const row of rows) results[row.ord] ??= answer(row.eventId, row.deliveryIds, row.created);
  if (pending.some((r) => results[r.ord] === undefined))
    throw AppError.unavailable('events could not be stored, retry');

  for (const [ord, first] of repeatOf) results[ord] = { ...results[first]!, created: false };
  return results as IngestResult[];
}

/**
 * postbox.ingest raises serialization_failure (nothing stored) only when a used key's event was
 * deleted by retention between its two statements; a new try then stores the event.
 */
async function insertRetrying(db: Queryable, rows: readonly IngestRow[], wake?: { always: boolean }) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await insertEventsWithDeliveries(db, rows, wake);
    } catch (err) {
      if ((err as { code?: unknown })?.code !== '40001' || attempt === 3) throw err;
    }
  }
}

function answer(eventId: string, deliveryIds: string[], created: boolean): IngestResult {
  return { event_id: eventId, webhooks_queued: deliveryIds.length, delivery_ids: deliveryIds, created };
}

/**
 * How an ingest failure reaches the producer. Input was validated before, so a database error is
 * ours or the database's: 503, retry (nothing was stored). Except (src/db/errors.ts): an unknown
 * tenant (the admin named one) is a 404, data PostgreSQL refuses to store (e.g. JSON nested too
 * deep for its parser) is the producer's to fix: 400 naming the payload, and so is a payload the
 * catalog's schema refuses (400 naming its JSON path, under `eventPath(ord)` in a batch).
 */
export function ingestFailure(
  err: unknown,
  logger?: Logger,
  requestId?: string,
  eventPath?: (ord: number) => string,
): AppError {
  if (err instanceof AppError) return err;
  const mapped = dbAppError(err, {
    field: 'payload',
    referenced: 'tenant',
    ...(eventPath ? { eventPath } : {}),
  });
  if (mapped && mapped.status < 500) return mapped;
  logger?.warn('ingest failed; nothing stored, answering 503', {
    request_id: requestId,
    code: (err as { code?: unknown })?.code,
    error: String((err as Error)?.message ?? err),
  });
  return mapped ?? AppError.unavailable();
}

// Lone surrogates and NUL: JSON.stringify writes them as \uXXXX escapes (valid pairs it writes raw),
// and PostgreSQL's jsonb refuses both. An even run of backslashes before means the escape is literal text.
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/;

/** A payload as JSON text, or a 400 naming `path` if it cannot be stored. */
export function serializePayload(payload: unknown, path: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch {
    text = undefined; // RangeError: nested deeper than the stack allows
  }
  if (text === undefined)
    throw AppError.validation('payload is not valid', [{ path, message: 'is nested too deeply' }]);
  if (UNSTORABLE_ESCAPE.test(text))
    throw AppError.validation('payload is not valid', [
      { path, message: 'must not contain NUL (\\u0000) or unpaired surrogate characters' },
    ]);
  return text;
}
