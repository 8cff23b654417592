/**
 * The benches' receiver: a node:http server on 127.0.0.1 that answers 200 at once and records, per
 * delivery, the lag from the event's timestamp to its arrival, and duplicates (by webhook-id).
 * It shares the machine's cores with Postbox, so it does as little as it can: no JSON parse of the
 * body, only the timestamp cut out of the envelope's head.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface Receiver {
  url: string;
  /** Lag of each delivery in arrival order, ms. */
  readonly lagsMs: number[];
  readonly delivered: number;
  readonly duplicates: number;
  /** Date.now() of the last delivery. */
  readonly lastAt: number;
  /** Called on every first delivery of an id (after it was counted). */
  onDelivery?: (delivered: number) => void;
  close(): Promise<void>;
}

const TIMESTAMP = '"timestamp":"';

/** The envelope's timestamp (src/delivery/sender.ts deliveryBody puts it before the payload). */
function timestampOf(body: string): number {
  const at = body.indexOf(TIMESTAMP);
  return at < 0
    ? NaN
    : Date.parse(body.slice(at + TIMESTAMP.length, body.indexOf('"', at + TIMESTAMP.length)));
}

export async function startReceiver(): Promise<Receiver> {
  const lagsMs: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let lastAt = 0;
  const receiver: Receiver = {
    url: '',
    lagsMs,
    get delivered() {
      return seen.size;
    },
    get duplicates() {
      return duplicates;
    },
    get lastAt() {
      return lastAt;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let head = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      if (head.length < 256) head += chunk;
    });
    req.on('end', () => {
      res.writeHead(200).end();
      const now = Date.now();
      lastAt = now;
      const id = String(req.headers['webhook-id']);
      if (seen.has(id)) {
        duplicates++;
        return;
      }
      seen.add(id);
      lagsMs.push(now - timestampOf(head));
      receiver.onDelivery?.(seen.size);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  return receiver;
}
