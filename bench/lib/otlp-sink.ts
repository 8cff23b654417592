/**
 * An OTLP/HTTP endpoint on 127.0.0.1 that accepts every export (200) and counts requests and bytes:
 * a collector that costs Postbox nothing, so a bench with BENCH_TRACING=otlp measures what making and
 * exporting the spans costs the Postbox processes.
 */
import { createServer } from 'node:http';

export interface OtlpSink {
  /** http://127.0.0.1:<port>: what OTEL_EXPORTER_OTLP_ENDPOINT is set to. */
  url: string;
  readonly received: { requests: number; bytes: number };
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const received = { requests: 0, bytes: 0 };
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => (received.bytes += c.length));
    req.on('end', () => {
      received.requests++;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
