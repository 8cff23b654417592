/**
 * A worker that is slow, not dead: its lease runs out, a rescue records the attempt as lost and, on
 * the last attempt, dead-letters the delivery; then the slow worker's result arrives. A late 2xx
 * means the receiver has the event: the delivery succeeded and leaves the DLQ. A late failure leaves
 * it dead. Failed before the fix (docs/reliability.md, "Findings"): the 2xx replaced the placeholder
 * in the history while the delivery stayed failed and in the DLQ.
 *
 * The lease cannot run out while the receiver is still answering (it is at least timeout + 5 s), so
 * the slowness is the worker's: its recorder holds the result (recordFlushMs) past the lease, as a
 * worker stalled, or cut off from the database, between the answer and its write would.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import winston from 'winston';
import { createMetrics } from '../../src/observability/metrics.js';
import { LOST_ATTEMPT_ERROR } from '../../src/queries/claim.js';
import type { AttemptResult } from '../../src/queries/deliveries.js';
import { deliveryMetricsHooks } from '../../src/runtime/delivery-metrics.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { attemptRows, deliveryState, queueEvent } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { sampleValue } from '../helpers/prom.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const lines: Record<string, unknown>[] = [];
const logger = winston.createLogger({
  level: 'info',
  format: winston.format.json(),
  transports: [
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      }),
    }),
  ],
});

let app: TestApp;
let receiver: Receiver;
let engines: EngineStarter;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' }); // POSTBOX_ROLE=api: the engines are ours
  // LEASE_SECONDS 1: the lease is then the webhook's timeout (1 s) + 5 s.
  engines = engineStarter(app, { leaseSeconds: 1, pollIntervalMs: 50, logger });
});
afterAll(async () => {
  await engines.stopAll();
  await app.close();
  await receiver.close();
});

const db = () => app.db.pool;
const inDlq = async (id: string) =>
  (await db().query('SELECT 1 FROM dead_letter_queue WHERE delivery_id = $1', [id])).rowCount === 1;

it('a late 2xx after a rescue dead-lettered the last attempt marks the delivery succeeded and takes it out of the DLQ; a late failure leaves it dead', async () => {
  receiver.on('/ok', { status: 200, body: 'got it' });
  receiver.on('/refuses', { status: 500 });
  const { id: tenantId } = await sqlTenant(db());
  const policy = { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 };
  const ok = await sqlWebhook(db(), tenantId, {
    url: receiver.url('/ok'),
    retryPolicy: policy,
    timeoutMs: 1000,
  });
  const refuses = await sqlWebhook(db(), tenantId, {
    url: receiver.url('/refuses'),
    retryPolicy: policy,
    timeoutMs: 1000,
  });

  // The slow worker: it sends at once, but holds its results far past the lease before writing them.
  const finished: AttemptResult[] = [];
  const metrics = createMetrics({ defaultMetrics: false });
  const slow = await engines.start({
    workerId: 'slow-worker',
    recordFlushMs: 10 * 60_000,
    pollIntervalMs: 10 * 60_000, // claims on the ingest's NOTIFY; the rescue is left to the other worker
    hooks: { ...deliveryMetricsHooks(metrics), onAttempt: (_d, r) => finished.push(r) },
  });
  const {
    deliveryIds: [late2xx, late500],
  } = await queueEvent(db(), tenantId, [ok.id, refuses.id]);
  await waitFor(() => finished.length === 2, { what: 'both attempts answered, results held' });
  expect(finished.map((r) => r.statusCode).sort()).toEqual([200, 500]);

  // Another worker rescues both once the lease runs out: the lost attempt used up max_attempts.
  await engines.start({ workerId: 'rescuer' });
  for (const id of [late2xx!, late500!])
    await waitFor(async () => (await deliveryState(db(), id)).status === 'failed' && (await inDlq(id)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'the rescue to dead-letter the delivery',
    });
  expect(await deliveryState(db(), late2xx!)).toMatchObject({ attempts: 1, last_error: LOST_ATTEMPT_ERROR });

  // The slow worker finally writes its results (stop drains the recorder).
  await slow.stop(0);

  expect(await deliveryState(db(), late2xx!)).toMatchObject({
    status: 'succeeded',
    attempts: 1,
    last_status_code: 200,
    last_error: null,
    completed_at: expect.any(Date),
  });
  expect(await inDlq(late2xx!)).toBe(false);
  // The late answer took the placeholder's place: one attempt, the one the receiver answered.
  expect(await attemptRows(db(), late2xx!)).toEqual([
    expect.objectContaining({ attempt: 1, status_code: 200, error: null, response_excerpt: 'got it' }),
  ]);
  const revivedLines = lines.filter((l) => l.message === 'late success revived a dead-lettered delivery');
  expect(revivedLines).toEqual([
    expect.objectContaining({ delivery_id: late2xx, webhook_id: ok.id, tenant_id: tenantId, attempt: 1 }),
  ]);
  expect(sampleValue(await metrics.render(), 'postbox_deliveries_revived_total')).toBe(1);

  // A late failure: still dead, still in the DLQ; its history has the real answer instead of the placeholder.
  expect(await deliveryState(db(), late500!)).toMatchObject({
    status: 'failed',
    last_error: LOST_ATTEMPT_ERROR,
  });
  expect(await inDlq(late500!)).toBe(true);
  expect(await attemptRows(db(), late500!)).toEqual([
    expect.objectContaining({ attempt: 1, status_code: 500, error: 'HTTP 500' }),
  ]);
}, 60_000);
