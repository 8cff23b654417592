/**
 * OpenTelemetry: one event's trace from its ingest to its final attempt, recorded by an in-memory
 * exporter on a real instance (API and workers) delivering to a real receiver: every span in the
 * producer's trace, parented as docs/observability.md draws it, with the attributes it promises.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { startTracing, TRACING_OFF } from '../../src/observability/tracing.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER_SPAN = '00f067aa0ba902b7';
const PRODUCER = `00-${TRACE_ID}-${PRODUCER_SPAN}-01`;
const FAST_RETRY = { max_attempts: 3, initial_delay_ms: 100, max_delay_ms: 100 };

let app: TestApp;
let receiver: Receiver;
const exporter = new InMemorySpanExporter();
let tenant: { id: string; apiKey: string };

beforeAll(async () => {
  const tracing = await startTracing(loadConfig({}), { spanProcessors: [new SimpleSpanProcessor(exporter)] });
  app = await startTestApp(
    { POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '50' },
    silentLogger(),
    { tracing },
  );
  receiver = await startReceiver();
  tenant = await app.createTenant('traced');
}, 60_000);

afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan) => s.spanContext().spanId;

/** Ingests one event for a webhook at `path`; resolves with its id once its delivery is final and recorded. */
async function deliverOne(path: string, type: string, headers: Record<string, string> = {}) {
  const hook = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: { url: receiver.url(path), event_types: [type], retry_policy: FAST_RETRY },
  });
  expect(hook.status).toBe(201);
  const res = await app.request('POST', '/events', {
    key: tenant.apiKey,
    headers,
    body: { type, payload: { order: 42 } },
  });
  expect(res.status).toBe(202);
  const eventId: string = res.body.event_id;
  // The final attempt's record span is made right after its result is written.
  const spans = await waitFor(
    () => {
      const mine = exporter.getFinishedSpans().filter((s) => s.attributes['postbox.event.id'] === eventId);
      return mine.some(
        (s) => s.name === 'postbox.record' && s.attributes['postbox.delivery.outcome'] !== 'retry',
      )
        ? mine
        : undefined;
    },
    { what: `the trace of event ${eventId}`, timeoutMs: 20_000 },
  );
  return { eventId, webhookId: hook.body.id as string, spans };
}

describe('one event traced from ingest to its final attempt', () => {
  it('puts the ingest, each claim, attempt and record in the producer’s trace, under the ingest span', async () => {
    receiver.on('/flaky', (_req, n) => (n === 0 ? { status: 500 } : { status: 204 }));
    const { eventId, webhookId, spans } = await deliverOne('/flaky', 'order.traced', {
      traceparent: PRODUCER,
    });

    // One trace: the producer's.
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([TRACE_ID]));

    const ingest = spans.filter((s) => s.name === 'POST /events');
    expect(ingest).toHaveLength(1);
    expect(ingest[0]!.kind).toBe(SpanKind.SERVER);
    expect(parentOf(ingest[0]!)).toBe(PRODUCER_SPAN);
    expect(ingest[0]!.attributes).toMatchObject({
      'postbox.event.id': eventId,
      'postbox.tenant.id': tenant.id,
      'http.request.method': 'POST',
      'http.route': '/events',
      'http.response.status_code': 202,
    });

    // Claim, attempt and record twice (a 500, then a 204), each a child of the ingest span.
    const byName = (name: string) =>
      spans
        .filter((s) => s.name === name)
        .sort(
          (a, b) =>
            Number(a.attributes['postbox.delivery.attempt']) -
            Number(b.attributes['postbox.delivery.attempt']),
        );
    const claims = byName('postbox.claim');
    const attempts = byName('postbox.delivery.attempt');
    const records = byName('postbox.record');
    for (const group of [claims, attempts, records]) {
      expect(group.map((s) => s.attributes['postbox.delivery.attempt'])).toEqual([1, 2]);
      for (const s of group) expect(parentOf(s)).toBe(idOf(ingest[0]!));
    }
    expect(attempts.map((s) => s.kind)).toEqual([SpanKind.CLIENT, SpanKind.CLIENT]);
    expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([500, 204]);
    expect(attempts.map((s) => s.attributes['postbox.delivery.outcome'])).toEqual(['retry', 'succeeded']);
    expect(attempts.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
    for (const s of attempts)
      expect(s.attributes).toMatchObject({ 'postbox.webhook.id': webhookId, 'server.address': '127.0.0.1' });
    expect(attempts.map((s) => s.attributes['error.type'])).toEqual(['500', undefined]);
    expect(records.map((s) => s.attributes['postbox.delivery.outcome'])).toEqual(['retry', 'succeeded']);
    expect(claims.every((s) => Number(s.attributes['postbox.batch.size']) >= 1)).toBe(true);

    // In time order: ingest, then claim → attempt → record for each attempt.
    const start = (s: ReadableSpan) => s.startTime[0] * 1e9 + s.startTime[1];
    const end = (s: ReadableSpan) => s.endTime[0] * 1e9 + s.endTime[1];
    for (let i = 0; i < 2; i++) {
      expect(end(claims[i]!)).toBeLessThanOrEqual(start(attempts[i]!));
      expect(end(attempts[i]!)).toBeLessThanOrEqual(start(records[i]!));
    }

    // The receiver continues the same trace under each attempt span.
    const received = receiver.requestsTo('/flaky').map((r) => r.headers.traceparent);
    expect(received).toEqual(attempts.map((s) => `00-${TRACE_ID}-${idOf(s)}-01`));
    // The event keeps the ingest span's context: GET /events/:id shows it.
    const event = await app.request('GET', `/events/${eventId}`, { key: tenant.apiKey });
    expect(event.body.traceparent).toBe(`00-${TRACE_ID}-${idOf(ingest[0]!)}-01`);
  });

  it('starts a trace of its own when the producer sent none, and keeps its deliveries in it', async () => {
    receiver.on('/ok', { status: 200 });
    const { spans } = await deliverOne('/ok', 'order.untraced');
    const ingest = spans.find((s) => s.name === 'POST /events')!;
    expect(parentOf(ingest)).toBeUndefined();
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(spans.map((s) => s.name).sort()).toEqual([
      'POST /events',
      'postbox.claim',
      'postbox.delivery.attempt',
      'postbox.record',
    ]);
  });

  it('makes one span per batch request, with its event count, as the parent of every event’s deliveries', async () => {
    receiver.on('/batch', { status: 200 });
    const hook = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url('/batch'), event_types: ['order.batched'] },
    });
    expect(hook.status).toBe(201);
    const res = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      headers: { traceparent: PRODUCER },
      body: { events: [1, 2, 3].map((n) => ({ type: 'order.batched', payload: { n } })) },
    });
    expect(res.status).toBe(202);
    const ids = new Set(res.body.data.map((r: { event_id: string }) => r.event_id));
    const records = await waitFor(() => {
      const r = exporter
        .getFinishedSpans()
        .filter((s) => s.name === 'postbox.record' && ids.has(s.attributes['postbox.event.id']));
      return r.length === 3 ? r : undefined;
    });
    const batch = exporter.getFinishedSpans().filter((s) => s.name === 'POST /events/batch');
    expect(batch).toHaveLength(1);
    expect(batch[0]!.attributes['postbox.event.count']).toBe(3);
    for (const r of records) expect(parentOf(r)).toBe(idOf(batch[0]!));
  });

  it('marks a refused request: 4xx answered, no event, no error status', async () => {
    const res = await app.request('POST', '/events', {
      key: tenant.apiKey,
      headers: { traceparent: PRODUCER },
      rawBody: '{"type":',
    });
    expect(res.status).toBe(400);
    const span = await waitFor(() =>
      exporter
        .getFinishedSpans()
        .find((s) => s.name === 'POST /events' && s.attributes['http.response.status_code'] === 400),
    );
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes['postbox.event.id']).toBeUndefined();
  });
});

describe('tracing off', () => {
  it('is the default: no endpoint, no spans, the API’s no-op tracer', async () => {
    const tracing = await startTracing(loadConfig({}));
    expect(tracing).toBe(TRACING_OFF);
    expect(tracing.tracer.startSpan('x').isRecording()).toBe(false);
    expect(
      await startTracing(
        loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SDK_DISABLED: 'true' }),
      ),
    ).toBe(TRACING_OFF);
  });
});
