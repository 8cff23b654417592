/**
 * A receiver for crash and load tests: counts arrivals per webhook-id, tracks which ids are being
 * handled right now (from the request's arrival until the answer is sent or the connection drops),
 * and flags any id that arrives while an earlier request with the same id is still open: that would
 * be one delivery in flight twice at once.
 *
 * `hold = true` keeps new requests open (no answer) until `release()`, so a test can kill or stop a
 * worker while attempts are provably in flight; `delayMs` answers each request that long after it
 * arrived, so a steady load always has some attempts in flight. `down()` stops listening (connections
 * are refused) and `up()` listens on the same port again: a receiver that is away for a while.
 *
 * Why not receiver.ts: that one records a request when its body is complete and answers per path
 * (status, delay, redirect, large or endless bodies), and knows nothing of open requests; the
 * process tests (processes.test.ts) need only this bookkeeping. One receiver doing both jobs would
 * be harder to read than two that each do one.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface Arrival {
  id: string;
  attempt: number;
  at: number;
}

export interface TrackingReceiver {
  url: string;
  /** Every request, in arrival order. */
  readonly arrivals: Arrival[];
  /** webhook-id → requests received. */
  readonly counts: Map<string, number>;
  /** Ids that arrived while a request with the same id was still open. */
  readonly overlaps: string[];
  /** Requests open right now, and the most ever open at once. */
  readonly open: number;
  readonly maxOpen: number;
  /** Requests whose connection closed before an answer was sent (the client went away). */
  readonly abandoned: string[];
  /** While true, requests get no answer until release(). */
  hold: boolean;
  /** Requests held right now. */
  readonly held: number;
  /** Answers every held request with `status`. */
  release(status?: number): void;
  /** Answer each request (not held) this long after it arrived; default 0. */
  delayMs: number;
  /** Closes the listener and every open connection: new connections are refused until up(). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTrackingReceiver(): Promise<TrackingReceiver> {
  const arrivals: Arrival[] = [];
  const counts = new Map<string, number>();
  const openIds = new Map<string, number>();
  const overlaps: string[] = [];
  const abandoned: string[] = [];
  const heldResponses = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let open = 0;
  let port = 0;
  let maxOpen = 0;

  const answer = (res: ServerResponse, status: number) => {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { 'content-length': '0' });
    res.end();
  };

  const receiver = {
    url: '',
    arrivals,
    counts,
    overlaps,
    abandoned,
    hold: false,
    get open() {
      return open;
    },
    get maxOpen() {
      return maxOpen;
    },
    get held() {
      return heldResponses.size;
    },
    release(status = 200) {
      for (const res of heldResponses) answer(res, status);
      heldResponses.clear();
    },
    delayMs: 0,
    async down() {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async up() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      await receiver.down();
    },
  };

  const server = createServer((req, res) => {
    const id = String(req.headers['webhook-id'] ?? '');
    // In progress from the moment the request arrives: a second arrival before this one is
    // answered (or its connection dropped) means two workers hold the delivery at once.
    if ((openIds.get(id) ?? 0) > 0) overlaps.push(id);
    openIds.set(id, (openIds.get(id) ?? 0) + 1);
    open++;
    maxOpen = Math.max(maxOpen, open);
    arrivals.push({ id, attempt: Number(req.headers['x-webhook-attempt']), at: Date.now() });
    counts.set(id, (counts.get(id) ?? 0) + 1);
    res.on('close', () => {
      open--;
      openIds.set(id, openIds.get(id)! - 1);
      heldResponses.delete(res);
      if (!res.writableFinished) abandoned.push(id);
    });
    req.resume();
    req.on('end', () => {
      if (receiver.hold) heldResponses.add(res);
      else if (receiver.delayMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer(res, 200);
        }, receiver.delayMs);
        timers.add(timer);
      } else answer(res, 200);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : 0;
  receiver.url = `http://127.0.0.1:${port}/hook`;
  return receiver;
}
