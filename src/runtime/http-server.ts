/**
 * The process's HTTP server and its part of a graceful stop. On drain it stops accepting, closes idle
 * keep-alive connections, answers any request that still arrives on an open one (nginx reuses its
 * upstream connections) with a JSON 503 and `Connection: close`, and waits for requests already
 * running to finish — so no request reaches a closed database pool.
 */
import { createServer, type RequestListener, type Server } from 'node:http';

export interface HttpServer {
  server: Server;
  /** The port actually bound. */
  port: number;
  /** Stops taking requests and resolves when those in progress have finished (or after timeoutMs). */
  drain(timeoutMs: number): Promise<void>;
}

const UNAVAILABLE = JSON.stringify({
  error: { code: 'unavailable', message: 'shutting down; retry shortly' },
});

export async function startHttpServer(handler: RequestListener, port: number): Promise<HttpServer> {
  let draining = false;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  const server = createServer((req, res) => {
    if (draining) {
      res.writeHead(503, {
        'content-type': 'application/json; charset=utf-8',
        'retry-after': '5',
        connection: 'close',
      });
      res.end(UNAVAILABLE);
      return;
    }
    inFlight += 1;
    res.once('close', () => {
      inFlight -= 1;
      if (inFlight === 0) onIdle?.();
    });
    handler(req, res);
  });
  server.keepAliveTimeout = 65_000; // longer than nginx's upstream keepalive_timeout (60 s)
  await new Promise<void>((resolve) => server.listen(port, resolve));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;

  return {
    server,
    port: bound,
    async drain(timeoutMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      // What is left is idle keep-alive connections (or requests past the grace period).
      server.closeAllConnections();
      await closed;
    },
  };
}
