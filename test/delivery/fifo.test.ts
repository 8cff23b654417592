/**
 * FIFO webhooks (ordering: "fifo"): deliveries arrive strictly in the order their events were queued,
 * one at a time, with three engines (as three worker processes) claiming from one database; a failing
 * head holds the queue until it succeeds; a dead-lettered head releases the next.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { waitFor } from '../helpers/wait.js';

interface Arrival {
  seq: number;
  attempt: number;
}

/** A receiver that records arrival order and the most requests it ever had open at once. */
async function orderReceiver(failFirst: (seq: number, attempt: number) => boolean) {
  const arrivals: Arrival[] = [];
  let open = 0;
  let maxOpen = 0;
  const server: Server = createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { data: { seq: number } };
      const attempt = Number(req.headers['x-webhook-attempt']);
      arrivals.push({ seq: body.data.seq, attempt });
      // Answer a little later, so a second delivery in flight would overlap this one.
      setTimeout(() => {
        open--;
        res.writeHead(failFirst(body.data.seq, attempt) ? 500 : 200).end();
      }, 5);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/fifo`,
    arrivals,
    maxOpen: () => maxOpen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let app: TestApp;
let engines: EngineStarter;
let tenant: { id: string; apiKey: string };

beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  tenant = await app.createTenant('fifo', { max_events_per_sec: 100_000 });
  engines = engineStarter(app, { pollIntervalMs: 50, concurrency: 20, claimBatchSize: 20 });
});
afterEach(async () => {
  await engines.stopAll();
});
afterAll(async () => {
  await app.close();
});

async function fifoWebhook(url: string, maxAttempts: number) {
  const res = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: {
      url,
      ordering: 'fifo',
      max_concurrency: 20,
      retry_policy: { max_attempts: maxAttempts, initial_delay_ms: 100, max_delay_ms: 200 },
    },
  });
  expect([res.status, res.body.ordering]).toEqual([201, 'fifo']);
  return res.body.id as string;
}

async function queue(from: number, count: number) {
  const res = await app.request('POST', '/events/batch', {
    key: tenant.apiKey,
    body: {
      events: Array.from({ length: count }, (_, i) => ({ type: 'seq.next', payload: { seq: from + i } })),
    },
  });
  expect(res.status).toBe(202);
}

describe('a FIFO webhook', () => {
  it('gets every delivery in order, one at a time, across three engines, a failing head holding the rest', async () => {
    // Event 7 fails twice before it succeeds: 8 and later must wait for it.
    const receiver = await orderReceiver((seq, attempt) => seq === 7 && attempt < 3);
    try {
      await fifoWebhook(receiver.url, 5);
      await queue(0, 20);
      for (let i = 0; i < 3; i++) await engines.start();
      for (let seq = 20; seq < 30; seq++) await queue(seq, 1);
      await waitFor(() => receiver.arrivals.filter((a) => a.seq !== 7 || a.attempt === 3).length === 30, {
        timeoutMs: 60_000,
        what: '30 deliveries',
      });
      const successes = receiver.arrivals.filter((a) => a.seq !== 7 || a.attempt === 3).map((a) => a.seq);
      expect(successes).toEqual(Array.from({ length: 30 }, (_, i) => i));
      // The retries of 7 came right before 7's success: nothing overtook them.
      const seven = receiver.arrivals.findIndex((a) => a.seq === 7);
      expect(receiver.arrivals.slice(seven, seven + 3)).toEqual(
        [1, 2, 3].map((attempt) => ({ seq: 7, attempt })),
      );
      expect(receiver.maxOpen()).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  it('releases the next delivery when the head is dead-lettered, and the DLQ shows the break', async () => {
    const receiver = await orderReceiver((seq) => seq === 102);
    try {
      const hook = await fifoWebhook(receiver.url, 2);
      await queue(100, 6);
      await engines.start();
      await engines.start();
      await waitFor(() => receiver.arrivals.filter((a) => a.seq > 102).length === 3, {
        timeoutMs: 60_000,
        what: 'the deliveries after the dead head',
      });
      expect(receiver.arrivals.map((a) => a.seq)).toEqual([100, 101, 102, 102, 103, 104, 105]);
      const dlq = await app.request('GET', `/dlq?webhook_id=${hook}`, { key: tenant.apiKey });
      expect(dlq.body.data).toHaveLength(1);
      expect(dlq.body.data[0]).toMatchObject({
        webhook_id: hook,
        event_type: 'seq.next',
        attempts: 2,
        fifo_order_broken: true,
      });
    } finally {
      await receiver.close();
    }
  });
});
