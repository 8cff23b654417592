/**
 * FIFO order with real worker processes (node src/main.ts, POSTBOX_ROLE=worker): two of them claim
 * from one database while events keep coming in through the API, and the process holding a FIFO
 * webhook's head in flight is killed with SIGKILL. The receiver records arrival order per webhook.
 *
 * What must hold per webhook: events arrive in strictly increasing order, except that an attempt the
 * kill interrupted arrives again (the head again, before anything behind it). Those repeats are
 * counted: exactly one for the webhook whose head was held, at most one for the other (its head may
 * have been in flight on the killed process too).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { killAllPostboxes, spawnPostbox, type PostboxProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const EVENTS = 60;
/** The event whose first attempt to webhook A is held open until its worker is killed. */
const HELD_SEQ = 10;

interface Arrival {
  seq: number;
  attempt: number;
  deliveryId: string;
}

/** Records arrivals per path in order; holds A's first attempt of HELD_SEQ open (never answered). */
async function orderReceiver() {
  const arrivals = new Map<string, Arrival[]>([
    ['/a', []],
    ['/b', []],
  ]);
  const open = new Map<string, number>();
  const maxOpen = new Map<string, number>();
  const held: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = req.url!;
    open.set(path, (open.get(path) ?? 0) + 1);
    maxOpen.set(path, Math.max(maxOpen.get(path) ?? 0, open.get(path)!));
    res.on('close', () => open.set(path, open.get(path)! - 1));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seq = (JSON.parse(Buffer.concat(chunks).toString()) as { data: { seq: number } }).data.seq;
      const attempt = Number(req.headers['x-webhook-attempt']);
      arrivals.get(path)!.push({ seq, attempt, deliveryId: String(req.headers['webhook-id']) });
      if (path === '/a' && seq === HELD_SEQ && attempt === 1) held.push(res);
      else res.writeHead(200).end();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    arrivals: (path: string) => arrivals.get(path)!,
    open: (path: string) => open.get(path) ?? 0,
    maxOpen: (path: string) => maxOpen.get(path) ?? 0,
    held,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let app: TestApp;
let tenantKey: string;
let receiver: Awaited<ReturnType<typeof orderReceiver>>;

beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  tenantKey = (
    await app.createTenant('fifo-processes', { max_events_per_sec: 100_000, max_concurrent_deliveries: 1000 })
  ).apiKey;
  receiver = await orderReceiver();
}, 60_000);

afterAll(async () => {
  await killAllPostboxes();
  await receiver?.close();
  await app.close();
});

async function fifoWebhook(path: string): Promise<string> {
  const res = await app.request('POST', '/webhooks', {
    key: tenantKey,
    body: {
      url: receiver.url(path),
      event_types: ['fifo.*'],
      ordering: 'fifo',
      // The lease is timeout + 5 s = 35 s: only noticing that the worker is gone brings the head back
      // in time, as it would in production.
      timeout_ms: 30_000,
      retry_policy: { max_attempts: 10, initial_delay_ms: 100, max_delay_ms: 500 },
    },
  });
  expect([res.status, res.body.ordering]).toEqual([201, 'fifo']);
  return res.body.id as string;
}

async function queue(from: number, count: number): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => ({ type: 'fifo.seq', payload: { seq: from + i } }));
  const res = await app.request('POST', '/events/batch', { key: tenantKey, body: { events } });
  expect(res.status).toBe(202);
}

const succeeded = async (webhookId: string) =>
  (
    await app.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries WHERE webhook_id = $1 AND status = 'succeeded'`,
      [webhookId],
    )
  ).rows[0]!.n;

/** Arrivals with consecutive repeats of one delivery folded, and the repeats counted per seq. */
function fold(arrivals: Arrival[]) {
  const order: number[] = [];
  const repeats = new Map<number, number>();
  for (const a of arrivals) {
    if (order.at(-1) === a.seq) repeats.set(a.seq, (repeats.get(a.seq) ?? 0) + 1);
    else order.push(a.seq);
  }
  return { order, repeats };
}

describe('FIFO webhooks with two worker processes', () => {
  it('keep strict order per webhook when the worker holding the head is killed (kill -9)', async () => {
    const hookA = await fifoWebhook('/a');
    const hookB = await fifoWebhook('/b');
    const spawnWorker = (name: string) => spawnPostbox(app.db.url, { name });
    const workers: PostboxProcess[] = await Promise.all([spawnWorker('w1'), spawnWorker('w2')]);

    await queue(0, 30);
    await waitFor(() => receiver.held.length === 1, {
      timeoutMs: 60_000,
      what: `A's attempt of ${HELD_SEQ}`,
    });
    const [head] = receiver.arrivals('/a').filter((a) => a.seq === HELD_SEQ);
    const { rows } = await app.db.pool.query<{ status: string; lease_owner: string }>(
      'SELECT status, lease_owner FROM deliveries WHERE id = $1',
      [head!.deliveryId],
    );
    expect(rows[0]!.status).toBe('in_flight');
    const owner = workers.find((w) => w.logs.some((l) => l.worker_id === rows[0]!.lease_owner));
    expect(owner).toBeDefined();

    owner!.signal('SIGKILL');
    expect((await owner!.exited).signal).toBe('SIGKILL');
    // Events keep coming while the other process rescues the head; then a replacement starts.
    for (let seq = 30; seq < 45; seq += 5) await queue(seq, 5);
    workers.push(await spawnWorker('w3'));
    for (let seq = 45; seq < EVENTS; seq += 5) await queue(seq, 5);

    for (const hook of [hookA, hookB])
      await waitFor(async () => (await succeeded(hook)) === EVENTS, {
        timeoutMs: 90_000,
        intervalMs: 200,
        what: `${EVENTS} deliveries to ${hook}`,
      });

    const expected = Array.from({ length: EVENTS }, (_, i) => i);
    const a = fold(receiver.arrivals('/a'));
    const b = fold(receiver.arrivals('/b'));
    expect(a.order).toEqual(expected);
    expect(b.order).toEqual(expected);
    // A: the held attempt, repeated once as attempt 2 right after the kill, and nothing else.
    expect([...a.repeats]).toEqual([[HELD_SEQ, 1]]);
    expect(
      receiver
        .arrivals('/a')
        .filter((x) => x.seq === HELD_SEQ)
        .map((x) => x.attempt),
    ).toEqual([1, 2]);
    // B: its head may have been in flight on the killed process too; then it is repeated once.
    expect([...b.repeats.values()].reduce((n, r) => n + r, 0)).toBeLessThanOrEqual(1);
    // One request at a time per webhook, across processes and through the kill.
    expect([receiver.maxOpen('/a'), receiver.maxOpen('/b')]).toEqual([1, 1]);
    expect(workers.filter((w) => w.running)).toHaveLength(2);
  }, 180_000);
});
