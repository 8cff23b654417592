/**
 * Events: ingest one (POST /events) or many (POST /events/batch) through the same path, and read
 * them back. Everything is validated before anything is written; the write is one statement.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Span } from '@opentelemetry/api';
import type { ApiContext } from '../context.js';
import { listScope, readScope, tenantScope } from '../middleware/auth.js';
import { idCursor, page } from '../pagination.js';
import { sendJson } from '../send-json.js';
import { IdParams, parseInput } from '../validate.js';
import {
  BatchBody,
  EventBody,
  IdempotencyKey,
  ListEventsQuery,
  type EventBodyInput,
} from './event-schemas.js';
import { AppError } from '../../errors.js';
import type { EventDeliveryJson, EventJson, IngestAnswerJson } from '../response-schemas.js';
import * as v from 'valibot';
import { acceptEvents } from '../../ingest/accept.js';
import { serializePayload, type EventInput, type IngestResult } from '../../ingest/ingest.js';
import { ATTR, endIngestSpan, startIngestSpan } from '../../observability/spans.js';
import { parseTraceparent, traceparentOf } from '../../observability/traceparent.js';
import type { Tracing } from '../../observability/tracing.js';
import {
  getEvent,
  listEventDeliveries,
  listEvents,
  type EventDeliveryRow,
  type EventRow,
} from '../../queries/events.js';

/** GET /events/:id lists at most this many deliveries; GET /deliveries?event_id= pages through all. */
const EVENT_DELIVERIES_SHOWN = 1000;

export function eventJson(row: EventRow): EventJson {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    type: row.type,
    payload: row.payload,
    payload_removed: row.payloadRemoved,
    timestamp: row.occurredAt.toISOString(),
    idempotency_key: row.idempotencyKey,
    traceparent: row.traceparent,
    version: row.version,
    metadata: row.metadata,
    source: row.source,
    received_at: row.receivedAt.toISOString(),
  };
}

function eventDeliveryJson(d: EventDeliveryRow): EventDeliveryJson {
  return {
    id: d.id,
    webhook_id: d.webhookId,
    status: d.status as EventDeliveryJson['status'], // the column is the delivery_status enum
    attempts: d.attempts,
    next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created_at: d.createdAt.toISOString(),
    completed_at: d.completedAt?.toISOString() ?? null,
  };
}

function answerJson(r: IngestResult): IngestAnswerJson {
  return { event_id: r.event_id, webhooks_queued: r.webhooks_queued, delivery_ids: r.delivery_ids };
}

/** The Idempotency-Key header, validated like the body field. */
function idempotencyHeader(req: Request): string | undefined {
  const header = req.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const parsed = v.safeParse(IdempotencyKey, header);
  if (!parsed.success)
    throw AppError.validation('Idempotency-Key header is not valid', [
      { path: 'Idempotency-Key', message: parsed.issues[0].message },
    ]);
  return parsed.output;
}

function toEventInput(req: Request, body: EventBodyInput, prefix: string, traceparent?: string): EventInput {
  return {
    tenantId: tenantScope(req, body.tenant_id, `${prefix}tenant_id`),
    type: body.type,
    payloadJson: serializePayload(body.payload, `${prefix}payload`),
    timestamp: body.timestamp,
    idempotencyKey: body.idempotency_key,
    traceparent,
    version: body.version,
    metadata: body.metadata,
    source: body.source,
  };
}

/**
 * While tracing is on, the request's span (first, so it times authentication and parsing too); ended
 * with the answer. Off: nothing, not even a no-op span.
 */
function ingestSpan(tracing: Tracing | undefined, route: '/events' | '/events/batch'): RequestHandler[] {
  if (!tracing?.enabled) return [];
  return [
    (req, res, next) => {
      const span = startIngestSpan(tracing.tracer, route, req.headers.traceparent);
      res.locals.ingestSpan = span;
      res.once('close', () => endIngestSpan(span, res.statusCode));
      next();
    },
  ];
}

/**
 * The trace context stored with the events: the ingest span's while tracing is on (a child of the
 * producer's traceparent, same trace), so their delivery spans join its trace; else the producer's.
 */
function eventTraceparent(req: Request, res: Response): string | undefined {
  const span = res.locals.ingestSpan as Span | undefined;
  return span ? traceparentOf(span.spanContext()) : parseTraceparent(req.headers.traceparent);
}

export function eventsRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.post('/events', ...ingestSpan(ctx.tracing, '/events'), ...guard, async (req, res) => {
    const body = parseInput(EventBody, req.body, 'event');
    const header = idempotencyHeader(req);
    if (header !== undefined && body.idempotency_key !== undefined && header !== body.idempotency_key)
      throw AppError.validation('Idempotency-Key header and idempotency_key differ', [
        { path: 'idempotency_key', message: 'differs from the Idempotency-Key header' },
      ]);
    const event = toEventInput(
      req,
      { ...body, idempotency_key: body.idempotency_key ?? header },
      '',
      eventTraceparent(req, res),
    );
    const [result] = await acceptEvents(ctx, [event], req.requestId);
    (res.locals.ingestSpan as Span | undefined)?.setAttributes({
      [ATTR.eventId]: result!.event_id,
      [ATTR.tenantId]: event.tenantId,
    });
    sendJson(res, result!.created ? 202 : 200, answerJson(result!));
  });

  router.post('/events/batch', ...ingestSpan(ctx.tracing, '/events/batch'), ...guard, async (req, res) => {
    const body = parseInput(BatchBody, req.body, 'batch');
    // One header cannot key many events; ignoring it would let a producer believe it is protected.
    if (req.headers['idempotency-key'] !== undefined)
      throw AppError.validation('Idempotency-Key header is not used by /events/batch', [
        { path: 'Idempotency-Key', message: 'set idempotency_key on each event instead' },
      ]);
    const traceparent = eventTraceparent(req, res);
    const events = body.events.map((e, i) => toEventInput(req, e, `events.${i}.`, traceparent));
    const results = await acceptEvents(ctx, events, req.requestId, (ord) => `events.${ord}.`);
    // One span for the request: its events are found by their stored traceparent, not listed here.
    (res.locals.ingestSpan as Span | undefined)?.setAttribute(ATTR.eventCount, results.length);
    sendJson(res, 202, { data: results.map(answerJson) });
  });

  router.get('/events', ...guard, async (req, res) => {
    const query = parseInput(ListEventsQuery, { ...req.query }, 'query');
    const rows = await listEvents(ctx.pool, {
      tenantId: listScope(req, query.tenant_id),
      type: query.type,
      from: query.from,
      to: query.to,
      beforeId: idCursor(query.cursor),
      limit: query.limit + 1,
    });
    const result = page(rows, query.limit, (row) => [row.id]);
    res.json({ data: result.data.map(eventJson), next_cursor: result.next_cursor });
  });

  router.get('/events/:id', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    const row = await getEvent(ctx.pool, id, readScope(req));
    if (!row) throw AppError.notFound('event');
    const deliveries = await listEventDeliveries(ctx.pool, id, EVENT_DELIVERIES_SHOWN + 1);
    res.json({
      ...eventJson(row),
      deliveries: deliveries.slice(0, EVENT_DELIVERIES_SHOWN).map(eventDeliveryJson),
      deliveries_truncated: deliveries.length > EVENT_DELIVERIES_SHOWN,
    });
  });

  return router;
}
