/**
 * Fairness: an endpoint that times out on every request, with a backlog of thousands of due
 * deliveries queued ahead of everything else, must not delay the healthy endpoints of its own tenant
 * or of another tenant. Two engines (as two worker processes), a real receiver on 127.0.0.1, events
 * queued through ingest (the backlog in one statement, the trickle with the wake-up after commit). Lag is measured from the queue
 * insert to the request's arrival at the receiver. Numbers: docs/perf.md, "Fairness".
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { RetryPolicy } from '../../src/delivery/retry-policy.js';
import { DEFAULT_HEALTH_POLICY } from '../../src/config.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { queueEvent, queueMany } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTrackingReceiver, type TrackingReceiver } from '../helpers/tracking-receiver.js';
import { waitFor } from '../helpers/wait.js';

const BACKLOG = 10_000;
const TRICKLE_EVERY_MS = 100;

const retries: RetryPolicy = { max_attempts: 50, initial_delay_ms: 100, max_delay_ms: 1000 };

let app: TestApp;
let receiver: Receiver;
let engines: EngineStarter;
const db = () => app.db.pool;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'api' });
  engines = engineStarter(app, { concurrency: 40, claimBatchSize: 20, pollIntervalMs: 500 });
});
const closeAfter: TrackingReceiver[] = [];
afterEach(async () => {
  await engines.stopAll();
  await Promise.all(closeAfter.splice(0).map((r) => r.close()));
  await db().query(`UPDATE deliveries SET status = 'cancelled' WHERE status IN ('pending', 'in_flight')`);
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Scenario {
  /** Path prefix, so the two tests' receivers do not mix. */
  name: string;
  /** Consecutive failures that open the dead endpoint's breaker. */
  failureThreshold: number;
  /** How long the healthy endpoints get a steady trickle (one event each per TRICKLE_EVERY_MS). */
  trickleMs: number;
}

/** Runs the scenario; returns the healthy endpoints' lags (ms) and the dead endpoint's peak concurrency. */
async function run(s: Scenario) {
  // The dead endpoint never answers: every attempt ends at its 1 s timeout. It counts requests open
  // from arrival until the client hangs up.
  const deadEnd = await startTrackingReceiver();
  deadEnd.hold = true;
  closeAfter.push(deadEnd);
  receiver.on(`/${s.name}/same-tenant`, { status: 200 });
  receiver.on(`/${s.name}/other-tenant`, { status: 200 });

  const busy = (await sqlTenant(db(), 'busy')).id;
  const other = (await sqlTenant(db(), 'other')).id;
  // Event types keep the two endpoints of the busy tenant apart: the backlog is the dead one's alone.
  const dead = await sqlWebhook(db(), busy, {
    url: deadEnd.url,
    timeoutMs: 1000,
    retryPolicy: retries,
    eventTypes: ['bulk.test'],
  });
  const sameTenant = await sqlWebhook(db(), busy, {
    url: receiver.url(`/${s.name}/same-tenant`),
    eventTypes: ['order.created'],
  });
  const otherTenant = await sqlWebhook(db(), other, { url: receiver.url(`/${s.name}/other-tenant`) });
  // The backlog is older than every trickled event: it fills the head of the due queue throughout.
  await queueMany(db(), busy, dead.id, BACKLOG);

  const health = { ...DEFAULT_HEALTH_POLICY, failureThreshold: s.failureThreshold };
  await Promise.all([engines.start({ health }), engines.start({ health })]);
  await waitFor(() => deadEnd.held >= 10, { what: 'the dead endpoint to be at its max_concurrency' });

  const queuedAt = new Map<string, number>();
  const end = Date.now() + s.trickleMs;
  while (Date.now() < end) {
    const t = Date.now();
    const [a, b] = await Promise.all([
      queueEvent(db(), busy, [sameTenant.id]),
      queueEvent(db(), other, [otherTenant.id]),
    ]);
    queuedAt.set(a.deliveryIds[0]!, t);
    queuedAt.set(b.deliveryIds[0]!, t);
    await new Promise((r) => setTimeout(r, Math.max(0, t + TRICKLE_EVERY_MS - Date.now())));
  }
  const healthy = () => [
    ...receiver.requestsTo(`/${s.name}/same-tenant`),
    ...receiver.requestsTo(`/${s.name}/other-tenant`),
  ];
  await waitFor(() => healthy().length >= queuedAt.size, { timeoutMs: 5000, what: 'the trickle' });
  expect(healthy()).toHaveLength(queuedAt.size); // each once
  const lags = healthy()
    .map((r) => r.at - queuedAt.get(r.headers['webhook-id'] as string)!)
    .sort((x, y) => x - y);
  const { rows } = await db().query(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, max(attempts)::int AS max_attempts
       FROM deliveries WHERE webhook_id = $1`,
    [dead.id],
  );
  const { rows: breaker } = await db().query(
    `SELECT breaker_state, floor(concurrency_limit)::int AS concurrency_limit FROM webhooks WHERE id = $1`,
    [dead.id],
  );
  const summary = {
    scenario: s.name,
    trickled: lags.length,
    p50: percentile(lags, 50),
    p95: percentile(lags, 95),
    p99: percentile(lags, 99),
    max: lags[lags.length - 1],
    deadPeak: deadEnd.maxOpen,
    deadRequests: deadEnd.arrivals.length,
    deadPending: rows[0].pending,
    deadBreaker: breaker[0].breaker_state,
    deadLimit: breaker[0].concurrency_limit,
  };
  console.log(JSON.stringify(summary));
  return { deadPeak: deadEnd.maxOpen, summary };
}

it(`a timing-out endpoint with ${BACKLOG} queued does not delay healthy endpoints (concurrency limits alone)`, async () => {
  // A breaker that never opens: only its concurrency limit keeps the dead endpoint to 10 slots at most
  // (the adaptive limit starts there and its timeouts cut it), and only the claim's per-webhook
  // candidates let the trickle past its backlog.
  const { deadPeak, summary } = await run({ name: 'limits', failureThreshold: 1_000_000, trickleMs: 12_000 });
  expect(deadPeak).toBe(10); // at its starting limit at first, never above
  expect(summary.deadLimit).toBeLessThan(10); // then cut by its timeouts
  expect(summary.deadPending).toBeGreaterThan(BACKLOG - 500); // the backlog stayed in the way
  expect(summary.max).toBeLessThan(2000);
  expect(summary.p95).toBeLessThan(1000);
}, 40_000);

it('with the breaker (default threshold), the dead endpoint is deferred after 5 failures', async () => {
  const { summary } = await run({
    name: 'breaker',
    failureThreshold: DEFAULT_HEALTH_POLICY.failureThreshold,
    trickleMs: 4000,
  });
  expect(summary.deadBreaker).toBe('open');
  // The ones in flight when it opened, and no more (the cool-down is 30 s).
  expect(summary.deadRequests).toBeLessThanOrEqual(5 + 2 * 10);
  expect(summary.max).toBeLessThan(2000);
}, 40_000);
