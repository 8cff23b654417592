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

async function fifoWebhook(url: string, maxAttempts: number, ordering = 'fifo') {
  const res = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: {
      url,
      ordering,
      max_concurrency: 20,
      retry_policy: { max_attempts: maxAttempts, initial_delay_ms: 100, max_delay_ms: 200 },
    },
  });
  expect([res.status, res.body.ordering]).toEqual([201, ordering]);
  return res.body.id as string;
}

async function patch(hook: string, body: Record<string, unknown>) {
  const res = await app.request('PATCH', `/webhooks/${hook}`, { key: tenant.apiKey, body });
  expect(res.status).toBe(200);
}

/** Waits until `n` of the webhook's deliveries have succeeded (their results written, not only sent). */
async function succeeded(hook: string, n: number) {
  await waitFor(
    async () =>
      (
        await app.db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM deliveries WHERE webhook_id = $1 AND status = 'succeeded'`,
          [hook],
        )
      ).rows[0]!.n === n,
    { timeoutMs: 30_000, what: `${n} deliveries succeeded` },
  );
}

/** The webhook's unfinished rows in queue order: FIFO position set, and waiting at 'infinity'. */
async function unfinished(hook: string) {
  const { rows } = await app.db.pool.query<{ fifo: boolean; waiting: boolean }>(
    `SELECT fifo_seq IS NOT NULL AS fifo, next_attempt_at = 'infinity' AS waiting FROM deliveries
      WHERE webhook_id = $1 AND status IN ('pending', 'in_flight') ORDER BY fifo_seq, id`,
    [hook],
  );
  return rows;
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

  it('puts a dead head retried from the DLQ back at its position, ahead of what is queued behind it', async () => {
    let failing = true;
    const receiver = await orderReceiver((seq) => seq === 200 && failing);
    try {
      const hook = await fifoWebhook(receiver.url, 1);
      await queue(200, 2);
      await engines.start();
      await succeeded(hook, 1); // 201, past the dead 200
      await engines.stopAll();
      await queue(202, 3); // queued behind, while no engine runs
      const dlq = await app.request('GET', `/dlq?webhook_id=${hook}`, { key: tenant.apiKey });
      expect(dlq.body.data.map((d: { fifo_order_broken: boolean }) => d.fifo_order_broken)).toEqual([true]);
      failing = false;
      const retry = await app.request('POST', `/dlq/${dlq.body.data[0].delivery_id}/retry`, {
        key: tenant.apiKey,
      });
      expect(retry.status).toBe(202);
      await engines.start();
      await waitFor(() => receiver.arrivals.length === 6, {
        what: 'the retried head and the three behind it',
      });
      expect(receiver.arrivals.map((a) => a.seq)).toEqual([200, 201, 200, 202, 203, 204]);
    } finally {
      await receiver.close();
    }
  });

  it('keeps its queue through a switch to FIFO, a disable and an enable, and releases it when switched back', async () => {
    const receiver = await orderReceiver(() => false);
    try {
      const hook = await fifoWebhook(receiver.url, 5, 'none');
      await queue(300, 5); // no engine runs: all five wait, due now
      expect((await unfinished(hook)).map((r) => [r.fifo, r.waiting])).toEqual(Array(5).fill([false, false]));
      // The first is the head, due; the others wait behind it.
      const queued = [[true, false], ...Array(4).fill([true, true])];
      await patch(hook, { ordering: 'fifo' });
      expect((await unfinished(hook)).map((r) => [r.fifo, r.waiting])).toEqual(queued);
      await patch(hook, { enabled: false });
      expect((await unfinished(hook)).map((r) => [r.fifo, r.waiting])).toEqual(Array(5).fill([true, true]));
      await patch(hook, { enabled: true });
      expect((await unfinished(hook)).map((r) => [r.fifo, r.waiting])).toEqual(queued);
      await engines.start();
      await engines.start();
      await succeeded(hook, 5);
      expect(receiver.arrivals.map((a) => a.seq)).toEqual([300, 301, 302, 303, 304]);
      expect(receiver.maxOpen()).toBe(1);

      await engines.stopAll();
      await queue(305, 5);
      await patch(hook, { ordering: 'none' });
      expect((await unfinished(hook)).map((r) => [r.fifo, r.waiting])).toEqual(Array(5).fill([false, false]));
      await engines.start();
      await waitFor(() => receiver.arrivals.length === 10, { what: 'the five released' });
      expect(new Set(receiver.arrivals.slice(5).map((a) => a.seq))).toEqual(
        new Set([305, 306, 307, 308, 309]),
      );
    } finally {
      await receiver.close();
    }
  });
});
