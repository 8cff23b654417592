/**
 * Spans reach a real OTLP/HTTP endpoint (a small collector stand-in on 127.0.0.1) when
 * OTEL_EXPORTER_OTLP_ENDPOINT points at it: protobuf by default, JSON with
 * OTEL_EXPORTER_OTLP_PROTOCOL=http/json; the spans buffered at shutdown are exported by the stop.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterEach, describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, otlpTargetOf } from '../../src/config.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

interface Export {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Accepts OTLP exports as a collector would (200, empty body) and keeps them. */
async function startCollector(): Promise<{ url: string; exports: Export[]; close(): Promise<void> }> {
  const exports: Export[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      exports.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let app: TestApp | undefined;
let collector: Awaited<ReturnType<typeof startCollector>> | undefined;
afterEach(async () => {
  await app?.close();
  await collector?.close();
  app = collector = undefined;
});

/** One traced event through an instance exporting to the collector; the stop flushes the spans. */
async function ingestAndStop(env: Record<string, string>): Promise<{ eventId: string; exports: Export[] }> {
  collector = await startCollector();
  app = await startTestApp({ OTEL_EXPORTER_OTLP_ENDPOINT: `${collector.url}/`, ...env });
  expect(app.postbox.tracing.enabled).toBe(true);
  const tenant = await app.createTenant('exported');
  const res = await app.request('POST', '/events', {
    key: tenant.apiKey,
    headers: { traceparent: PRODUCER },
    body: { type: 'order.exported', payload: {} },
  });
  expect(res.status).toBe(202);
  const stopping = app;
  app = undefined;
  await stopping.close();
  return { eventId: res.body.event_id, exports: collector.exports };
}

describe('OTLP/HTTP export', () => {
  it('sends protobuf to <endpoint>/v1/traces by default', async () => {
    const { eventId, exports } = await ingestAndStop({});
    expect(exports.length).toBeGreaterThan(0);
    expect(exports.every((e) => e.path === '/v1/traces')).toBe(true);
    expect(exports[0]!.headers['content-type']).toBe('application/x-protobuf');
    const all = Buffer.concat(exports.map((e) => e.body));
    // Strings travel as they are in protobuf; ids as their 16 and 8 raw bytes.
    expect(all.includes('POST /events')).toBe(true);
    expect(all.includes(eventId)).toBe(true);
    expect(all.includes('postbox')).toBe(true); // service.name
    expect(all.includes(Buffer.from(TRACE_ID, 'hex'))).toBe(true);
  });

  it('sends JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json', async () => {
    const { eventId, exports } = await ingestAndStop({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    expect(exports[0]!.headers['content-type']).toBe('application/json');
    type Kv = { key: string; value: { stringValue?: string } };
    const docs = exports.map(
      (e) =>
        JSON.parse(e.body.toString('utf8')) as {
          resourceSpans: {
            resource: { attributes: Kv[] };
            scopeSpans: { spans: { name: string; traceId: string; attributes: Kv[] }[] }[];
          }[];
        },
    );
    const resourceSpans = docs.flatMap((d) => d.resourceSpans);
    expect(resourceSpans[0]!.resource.attributes).toContainEqual({
      key: 'service.name',
      value: { stringValue: 'postbox' },
    });
    const spans = resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    const ingest = spans.find((s) => s.name === 'POST /events')!;
    expect(ingest.traceId).toBe(TRACE_ID);
    expect(ingest.attributes).toContainEqual({ key: 'postbox.event.id', value: { stringValue: eventId } });
  });
});

describe('the tracing configuration', () => {
  it('takes the traces endpoint as is, the base one with /v1/traces, and no endpoint as off', () => {
    expect(otlpTargetOf(loadConfig({}))).toBeUndefined();
    expect(otlpTargetOf(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }))).toEqual({
      url: 'http://c:4318/v1/traces',
      protocol: 'http/protobuf',
    });
    expect(
      otlpTargetOf(
        loadConfig({
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t.example/otlp/traces',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        }),
      ),
    ).toEqual({ url: 'https://t.example/otlp/traces', protocol: 'http/json' });
  });

  it('refuses gRPC and a non-URL endpoint at start-up, naming the variable', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(ConfigError);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
  });
});
