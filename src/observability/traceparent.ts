/**
 * W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header), kept with
 * an event and forwarded on its deliveries. An invalid header is ignored, as the spec asks of
 * receivers, never an error: tracing must not make ingest fail.
 */
import type { SpanContext } from '@opentelemetry/api';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const VERSION_00_LENGTH = 55;

/**
 * The header's version-00-shaped part if it is valid, else undefined. A future version may append
 * fields (`-...`); we keep the part we understand, as the spec tells older parsers to.
 */
export function parseTraceparent(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length > 512) return undefined;
  const m = TRACEPARENT.exec(header);
  if (!m) return undefined;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return undefined;
  return header.slice(0, VERSION_00_LENGTH);
}

/** The span context a valid traceparent names (remote: it came from elsewhere), or undefined. */
export function spanContextOf(traceparent: string | null | undefined): SpanContext | undefined {
  const valid = parseTraceparent(traceparent ?? undefined);
  if (!valid) return undefined;
  const [, traceId, spanId, flags] = valid.split('-');
  // Only the sampled bit is defined by the spec; other bits are not ours to forward.
  return { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) & 1, isRemote: true };
}

/** The version-00 traceparent of a span context. */
export function traceparentOf(ctx: SpanContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & 1).toString(16).padStart(2, '0')}`;
}
