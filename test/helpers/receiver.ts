/**
 * A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records every request and
 * answers as told, per path and per request (status, delay, an answer held until a promise settles,
 * headers, body size, endless body, redirect, dropped or reset connection, an answer dripped a byte
 * at a time).
 *
 *   const receiver = await startReceiver();
 *   receiver.on('/flaky', (_req, n) => (n < 2 ? { status: 500 } : { status: 200 }));
 *   const url = receiver.url('/flaky');
 *   await receiver.waitForRequests(3, '/flaky');
 *
 * Why tracking-receiver.ts exists beside this one: crash and load tests need what happens while a
 * request is open (arrival before the body, concurrent requests per webhook-id, connections dropped
 * before an answer, answers held until release()). This receiver records a request once its body is
 * complete and answers per path; adding open-request bookkeeping here would complicate every test
 * that only wants "record and answer as told".
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { waitFor } from './wait.js';

export interface ReceivedRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** Lower-cased names, as node parses them. */
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when the body was complete. */
  at: number;
}

export interface Behaviour {
  /** Default 200. */
  status?: number;
  /** Answer only after this long (the connection stays open meanwhile). */
  delayMs?: number;
  headers?: Record<string, string>;
  /** Response body (default empty). */
  body?: string;
  /** A body of this many bytes ('x' repeated) instead of `body`. */
  bodyBytes?: number;
  /** Stream a body that never ends, until the client goes away. */
  endless?: boolean;
  /** Answer 302 (or `status` when given) with this Location. */
  redirectTo?: string;
  /** Destroy the connection without answering. */
  drop?: boolean;
  /** Answer only once this settles (after `delayMs`, if given): a request held open while a test looks. */
  until?: Promise<unknown>;
  /** Reset the connection (TCP RST) without answering. */
  reset?: boolean;
  /** Write the raw answer one byte every this many ms (a slow-drip receiver; headers included). */
  dripMs?: number;
}

/** `n`: 0-based count of earlier requests to the same path. */
export type Responder = Behaviour | ((req: ReceivedRequest, n: number) => Behaviour);

export interface Receiver {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  /** The absolute URL of `path` on this receiver (default '/hook'). */
  url(path?: string): string;
  /** Every request received so far, in arrival order. */
  readonly requests: ReceivedRequest[];
  /** Requests received on `path` (path without query). */
  requestsTo(path: string): ReceivedRequest[];
  /** How `path` answers from now on; `on('*', ...)` sets the default for unconfigured paths. */
  on(path: string, responder: Responder): void;
  /** Waits until at least `count` requests arrived (on `path`, when given). */
  waitForRequests(count: number, path?: string, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /** Bytes written by endless / large answers so far (to show a client stopped reading). */
  readonly bytesSent: number;
  /** Answers (on `path`, when given) whose connection is still open and not yet finished. */
  openAnswers(path?: string): number;
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const responders = new Map<string, Responder>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const open = new Map<ServerResponse, string>();
  let bytesSent = 0;

  const pathOf = (p: string) => p.split('?')[0]!;

  function answer(res: ServerResponse, b: Behaviour): void {
    if (b.drop) {
      res.socket?.destroy();
      return;
    }
    if (b.reset) {
      res.socket?.resetAndDestroy();
      return;
    }
    const headers = { ...b.headers };
    if (b.redirectTo) headers.location = b.redirectTo;
    const status = b.status ?? (b.redirectTo ? 302 : 200);
    if (b.dripMs)
      return drip(res, Buffer.from(`HTTP/1.1 ${status} Dripping\r\ncontent-length: 0\r\n\r\n`), b.dripMs);
    if (b.endless) {
      res.writeHead(status, headers);
      const pump = () => {
        while (!res.destroyed && res.write(CHUNK)) bytesSent += CHUNK.length;
        if (!res.destroyed) bytesSent += CHUNK.length;
      };
      res.on('drain', pump);
      pump();
      return;
    }
    const body = b.bodyBytes !== undefined ? filler(b.bodyBytes) : Buffer.from(b.body ?? '');
    bytesSent += body.length;
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  }

  // One buffer per size, shared by every answer: megabytes allocated and filled per request cost a
  // loaded test process enough CPU to delay everything else it serves.
  const fillers = new Map<number, Buffer>();
  function filler(bytes: number): Buffer {
    let buffer = fillers.get(bytes);
    if (!buffer) fillers.set(bytes, (buffer = Buffer.alloc(bytes, 'x')));
    return buffer;
  }

  // Raw bytes on the socket, bypassing ServerResponse: the status line itself arrives slowly.
  function drip(res: ServerResponse, bytes: Buffer, intervalMs: number): void {
    const socket = res.socket;
    if (!socket) return;
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || sent >= bytes.length) {
        clearInterval(timer);
        timers.delete(timer);
        return;
      }
      socket.write(bytes.subarray(sent, ++sent));
      bytesSent++;
    }, intervalMs);
    timers.add(timer);
  }

  const server: Server = createServer((req, res) => {
    open.set(res, pathOf(req.url ?? ''));
    res.on('close', () => open.delete(res)); // answered, or the connection went away
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      const path = pathOf(received.path);
      const n = requests.filter((r) => pathOf(r.path) === path).length;
      requests.push(received);
      const responder = responders.get(path) ?? responders.get('*') ?? {};
      const behaviour = typeof responder === 'function' ? responder(received, n) : responder;
      const reply = () => {
        const go = () => void (res.destroyed || answer(res, behaviour));
        if (behaviour.until) void behaviour.until.then(go, go);
        else go();
      };
      if (behaviour.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          reply();
        }, behaviour.delayMs);
        timers.add(timer);
      } else reply();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const requestsTo = (path: string) => requests.filter((r) => pathOf(r.path) === path);

  return {
    origin,
    url: (path = '/hook') => origin + path,
    requests,
    requestsTo,
    on: (path, responder) => void responders.set(path, responder),
    waitForRequests: (count, path, timeoutMs = 10_000) =>
      waitFor(
        () => {
          const list = path ? requestsTo(path) : requests;
          return list.length >= count ? list : undefined;
        },
        { timeoutMs, what: `${count} request(s)${path ? ' to ' + path : ''}` },
      ),
    get bytesSent() {
      return bytesSent;
    },
    openAnswers: (path) => [...open.values()].filter((p) => path === undefined || p === path).length,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
