/**
 * The spans Postbox makes, and the trace they form (docs/observability.md, "Tracing"):
 *
 *   producer's span (its traceparent header)
 *   └─ POST /events | POST /events/batch    SERVER  the ingest request; its traceparent is stored
 *      ├─ postbox.claim                     INTERNAL   with the event, so every delivery span of
 *      ├─ postbox.delivery.attempt          CLIENT     the event, however much later, is its child
 *      ├─ postbox.record                    INTERNAL   in the same trace
 *      └─ … claim, attempt, record again for each retry
 *
 * Claims and records are batched (one statement for many deliveries of many events), so each
 * delivery gets a span of its own timed as the statement that took or wrote it, in its event's trace:
 * following one event shows when it was claimed and recorded, and the batch size says with how many.
 * Only ids, status codes and the receiver's host are recorded: never payloads, URL paths or secrets.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { ClaimedDelivery } from '../queries/claim.js';
import type { AttemptResult } from '../queries/record.js';
import { parseTraceparent, spanContextOf, traceparentOf } from './traceparent.js';

/** Postbox's own attribute names (semantic conventions where one exists). */
export const ATTR = Object.freeze({
  eventId: 'postbox.event.id',
  eventCount: 'postbox.event.count',
  tenantId: 'postbox.tenant.id',
  deliveryId: 'postbox.delivery.id',
  webhookId: 'postbox.webhook.id',
  attempt: 'postbox.delivery.attempt',
  outcome: 'postbox.delivery.outcome',
  batchSize: 'postbox.batch.size',
});

/** The context a stored or received traceparent continues; the root (a new trace) without one. */
export function contextOf(traceparent: string | null | undefined): Context {
  const parent = spanContextOf(traceparent);
  return parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
}

/** The ingest request's span, a child of the producer's traceparent header when it sent a valid one. */
export function startIngestSpan(
  tracer: Tracer,
  route: '/events' | '/events/batch',
  header: string | string[] | undefined,
): Span {
  return tracer.startSpan(
    `POST ${route}`,
    { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: 'POST', [ATTR_HTTP_ROUTE]: route } },
    contextOf(parseTraceparent(header)),
  );
}

/** Ends the ingest span with the answer's status (5xx is an error of ours; 4xx the producer's). */
export function endIngestSpan(span: Span, status: number): void {
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

const deliveryAttributes = (d: ClaimedDelivery): Attributes => ({
  [ATTR.deliveryId]: d.id,
  [ATTR.eventId]: d.eventId,
  [ATTR.webhookId]: d.webhookId,
  [ATTR.tenantId]: d.tenantId,
  [ATTR.attempt]: d.attempt,
});

/** The receiver's scheme, host and port (never its path or query: they may hold tokens). */
function receiverAttributes(url: string): Attributes {
  try {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    return {
      [ATTR_URL_SCHEME]: u.protocol.slice(0, -1),
      [ATTR_SERVER_ADDRESS]: u.hostname,
      [ATTR_SERVER_PORT]: port,
    };
  } catch {
    return {};
  }
}

/** One attempt in flight: what to forward as traceparent, and how to end it. */
export interface AttemptSpan {
  /** The attempt span's traceparent: a receiver that traces continues Postbox's trace under it. */
  readonly traceparent: string;
  /** The attempt ended with `result` (recorded next: its record span follows). */
  end(result: AttemptResult): void;
  /** Aborted by shutdown before the request went out: released, no result. */
  released(): void;
}

/** The delivery engine's spans. One per engine; the engine exists only while tracing is enabled. */
export class DeliverySpans {
  /** The delivery of each result not yet recorded, for its record span (dropped with the result). */
  private readonly pending = new WeakMap<AttemptResult, ClaimedDelivery>();

  constructor(private readonly tracer: Tracer) {}

  /** One claim statement, from `startedAt` to `endedAt` (epoch ms), took `rows`. */
  claimed(rows: readonly ClaimedDelivery[], startedAt: number, endedAt: number): void {
    for (const d of rows) {
      const attributes = { ...deliveryAttributes(d), [ATTR.batchSize]: rows.length };
      this.tracer
        .startSpan(
          'postbox.claim',
          { kind: SpanKind.INTERNAL, startTime: startedAt, attributes },
          contextOf(d.traceparent),
        )
        .end(endedAt);
    }
  }

  /** Starts the HTTP attempt of `d`. */
  attempt(d: ClaimedDelivery): AttemptSpan {
    const span = this.tracer.startSpan(
      'postbox.delivery.attempt',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          ...deliveryAttributes(d),
          [ATTR_HTTP_REQUEST_METHOD]: 'POST',
          ...receiverAttributes(d.url),
        },
      },
      contextOf(d.traceparent),
    );
    return {
      traceparent: traceparentOf(span.spanContext()),
      end: (result) => {
        if (result.statusCode !== null) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.statusCode);
        span.setAttribute(ATTR.outcome, result.outcome);
        if (result.outcome !== 'succeeded') {
          span.setAttribute(ATTR_ERROR_TYPE, errorType(result));
          // The error text is Postbox's own summary (no payload, no secret); bounded by the sender.
          span.setStatus({ code: SpanStatusCode.ERROR, ...(result.error ? { message: result.error } : {}) });
        }
        span.end();
        this.pending.set(result, d);
      },
      released: () => {
        span.setAttribute(ATTR.outcome, 'released');
        span.end();
      },
    };
  }

  /** One result batch was written from `startedAt` to `endedAt` (epoch ms). */
  recorded(results: readonly AttemptResult[], startedAt: number, endedAt: number): void {
    for (const r of results) {
      const d = this.pending.get(r);
      if (!d) continue;
      this.pending.delete(r);
      const attributes = {
        ...deliveryAttributes(d),
        [ATTR.outcome]: r.outcome,
        [ATTR.batchSize]: results.length,
      };
      this.tracer
        .startSpan(
          'postbox.record',
          { kind: SpanKind.INTERNAL, startTime: startedAt, attributes },
          contextOf(d.traceparent),
        )
        .end(endedAt);
    }
  }
}

/**
 * error.type of a failed attempt: the status code; else timeout, shutdown, or the system error code the
 * sender put first in its error (ECONNREFUSED: …); else _OTHER (the semantic conventions' fallback).
 */
function errorType(r: AttemptResult): string {
  if (r.statusCode !== null) return String(r.statusCode);
  if (r.interrupted) return 'shutdown';
  if (r.error?.startsWith('timeout')) return 'timeout';
  return /^([A-Z][A-Z0-9_]+): /.exec(r.error ?? '')?.[1] ?? '_OTHER';
}
