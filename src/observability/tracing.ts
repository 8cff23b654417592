/**
 * OpenTelemetry tracing of one Postbox instance. Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then the SDK and the OTLP/HTTP exporter are loaded
 * with dynamic imports, so a process that does not trace never loads them, and its hot paths test
 * one boolean (`enabled`) and create no span at all. Spans: src/observability/spans.ts.
 *
 * Each instance has a provider of its own, never registered globally (tests run several instances,
 * with in-memory exporters, in one process).
 */
import { ProxyTracerProvider, type Tracer } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { otlpTargetOf, type Config, type OtlpTarget } from '../config.js';

export interface Tracing {
  /** false: nothing is traced; callers skip span work entirely. */
  readonly enabled: boolean;
  /** The SDK's tracer when enabled; otherwise @opentelemetry/api's no-op tracer. */
  readonly tracer: Tracer;
  /** Where spans go, when they are exported over OTLP. */
  readonly target: OtlpTarget | undefined;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** A provider with no delegate hands out the API's no-op tracer: nothing recorded, nothing loaded. */
export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  tracer: new ProxyTracerProvider().getTracer('postbox'),
  target: undefined,
  forceFlush: async () => {},
  shutdown: async () => {},
});

export interface TracingOptions {
  /** Extra processors (tests: an InMemorySpanExporter); with them, tracing is on even without OTLP. */
  spanProcessors?: SpanProcessor[];
  /** service.version of the resource. */
  version?: string;
}

/**
 * The instance's tracing as the configuration says. The resource's service.name is `postbox` unless
 * OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise; OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_* and OTEL_TRACES_SAMPLER are read by the SDK itself.
 */
export async function startTracing(config: Config, options: TracingOptions = {}): Promise<Tracing> {
  const target = otlpTargetOf(config);
  const processors = [...(options.spanProcessors ?? [])];
  if (!target && processors.length === 0) return TRACING_OFF;

  const [sdk, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ]);
  if (target) {
    const { OTLPTraceExporter } =
      target.protocol === 'http/json'
        ? await import('@opentelemetry/exporter-trace-otlp-http')
        : await import('@opentelemetry/exporter-trace-otlp-proto');
    // Batched: a span costs a buffer push on the hot path; export happens on a timer, off it.
    processors.push(new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url: target.url })));
  }
  const resource = resources
    .resourceFromAttributes({
      'service.name': 'postbox',
      ...(options.version ? { 'service.version': options.version } : {}),
    })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.BasicTracerProvider({ resource, spanProcessors: processors });
  return {
    enabled: true,
    tracer: provider.getTracer('postbox', options.version),
    target,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
