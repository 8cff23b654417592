/**
 * Ids on log lines, so one delivery, event, webhook or trace can be followed across the API and the
 * workers with a single filter (`delivery_id="..."`, `trace_id="..."`). Ids only: never payloads,
 * URLs or secrets.
 */
import type { Logger } from '../logger.js';
import { parseTraceparent } from './traceparent.js';

export interface LogIds {
  request_id?: string | null;
  delivery_id?: string | null;
  event_id?: string | null;
  webhook_id?: string | null;
  tenant_id?: string | null;
  /** A W3C traceparent; an invalid one is left out rather than logged. */
  traceparent?: string | string[] | null;
}

/** The W3C trace and parent-span ids of a valid traceparent, as log fields; {} otherwise. */
export function traceFields(traceparent: string | string[] | null | undefined): {
  traceparent?: string;
  trace_id?: string;
  span_id?: string;
} {
  const valid = parseTraceparent(traceparent ?? undefined);
  if (!valid) return {};
  const [, traceId, spanId] = valid.split('-');
  return { traceparent: valid, trace_id: traceId!, span_id: spanId! };
}

/** The given ids as log fields (absent ones left out), plus trace_id/span_id from the traceparent. */
export function logFields(ids: LogIds): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const key of ['request_id', 'delivery_id', 'event_id', 'webhook_id', 'tenant_id'] as const) {
    const value = ids[key];
    if (value) fields[key] = value;
  }
  if (ids.traceparent) Object.assign(fields, traceFields(ids.traceparent));
  return fields;
}

/** The ids of a claimed delivery (src/queries/deliveries.ts ClaimedDelivery) as log fields. */
export function deliveryLogFields(d: {
  id: string;
  eventId: string;
  webhookId: string;
  tenantId: string;
  traceparent?: string | null;
}): Record<string, string> {
  return logFields({
    delivery_id: d.id,
    event_id: d.eventId,
    webhook_id: d.webhookId,
    tenant_id: d.tenantId,
    traceparent: d.traceparent,
  });
}

/** A child logger whose every line carries these ids. */
export function childLogger(logger: Logger, ids: LogIds): Logger {
  return logger.child(logFields(ids));
}
