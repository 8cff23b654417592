/**
 * Worker-process faults under load: producers post through the API of an API-only instance while
 * real worker processes (node src/main.ts, POSTBOX_ROLE=worker) deliver to a receiver that answers
 * each request after a short delay, so attempts are always in flight. One worker is killed with
 * SIGKILL, or frozen with SIGSTOP past its lease and thawed. Each case ends with the ledger check.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { LOST_ATTEMPT_ERROR } from '../../src/queries/claim.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import {
  backendPidsOf,
  ENGINE_READY,
  killAllPostboxes,
  spawnPostbox,
  type PostboxProcess,
} from '../helpers/processes.js';
import { startTrackingReceiver, type TrackingReceiver } from '../helpers/tracking-receiver.js';
import { waitFor } from '../helpers/wait.js';
import { report, settle, startProducer } from './ledger.js';

let app: TestApp;
let tenantId: string;
let tenantKey: string;
let receiver: TrackingReceiver | undefined;

beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  const tenant = await app.createTenant('worker-faults', {
    max_events_per_sec: 1_000_000,
    max_concurrent_deliveries: 100_000,
  });
  tenantId = tenant.id;
  tenantKey = tenant.apiKey;
}, 60_000);

afterEach(async () => {
  await killAllPostboxes();
  await receiver?.close();
  receiver = undefined;
});

afterAll(async () => {
  await killAllPostboxes();
  await app.close();
});

const db = () => app.db.pool;
const seconds = (ms: number) => Math.round(ms / 100) / 10;
const workerIdOf = (w: PostboxProcess) => String(w.logs.find(ENGINE_READY)!.worker_id);

/** A receiver answering 200 after `delayMs`, and a webhook for `types` on it; the webhook's id. */
async function world(types: string, timeoutMs: number, delayMs: number) {
  const r = (receiver = await startTrackingReceiver());
  r.delayMs = delayMs;
  const res = await app.request('POST', '/webhooks', {
    key: tenantKey,
    body: {
      url: r.url,
      event_types: [types],
      timeout_ms: timeoutMs,
      max_concurrency: 50,
      retry_policy: { max_attempts: 10, initial_delay_ms: 100, max_delay_ms: 1000 },
    },
  });
  if (res.status !== 201) throw new Error(`POST /webhooks: ${res.status} ${JSON.stringify(res.body)}`);
  // Leases and crashes are under test, not the adaptive limit: start at the ceiling.
  await db().query('UPDATE webhooks SET concurrency_limit = max_concurrency WHERE id = $1', [res.body.id]);
  return { r, webhookId: res.body.id as string };
}

interface Held {
  id: string;
  status: string;
  attempts: number;
  completed_at: Date | null;
}

/** In-flight deliveries leased by `workerId` right now. */
async function heldBy(workerId: string): Promise<Held[]> {
  const { rows } = await db().query<Held>(
    `SELECT id, status, attempts, completed_at FROM deliveries
      WHERE status = 'in_flight' AND lease_owner = $1`,
    [workerId],
  );
  return rows;
}

async function deliveriesOf(ids: string[]): Promise<Held[]> {
  const { rows } = await db().query<Held>(
    'SELECT id, status, attempts, completed_at FROM deliveries WHERE id = ANY($1::uuid[]) ORDER BY id',
    [ids],
  );
  return rows;
}

/** Resolves with Date.now() once every delivery in `ids` has succeeded. */
async function succeededAt(ids: string[], timeoutMs: number): Promise<number> {
  await waitFor(async () => (await deliveriesOf(ids)).every((d) => d.status === 'succeeded'), {
    timeoutMs,
    intervalMs: 100,
    what: `${ids.length} held deliveries to succeed`,
  });
  return Date.now();
}

describe('a worker process killed with SIGKILL during delivery', () => {
  it('loses no acked event; a restarted worker delivers what the dead one held', async () => {
    // Timeouts well above the receiver's delay: a stall of this loaded process (the receiver's) must not
    // turn an answered attempt into a timeout, and so into a duplicate the crash did not cause.
    const { r } = await world('kill.*', 5000, 200);
    const w1 = await spawnPostbox(app.db.url, { name: 'w1' });
    const producer = startProducer(app, tenantId, { type: 'kill.item', concurrency: 2, paceMs: 10 });
    await producer.acks(100);
    await waitFor(() => r.open >= 3, { what: 'attempts in flight at the receiver' });

    w1.signal('SIGKILL');
    const killedAt = Date.now();
    expect((await w1.exited).signal).toBe('SIGKILL');
    const held = (await heldBy(workerIdOf(w1))).map((d) => d.id);
    // A supervisor would restart it: the restart's start-up time is part of the recovery. From here
    // on every arrival at the receiver is the successor's (w1's sockets closed with it).
    const restartFrom = Date.now();
    const w2 = await spawnPostbox(app.db.url, { name: 'w2' });
    const restartedAt = Date.now();
    const recoveredAt = await succeededAt(held, 30_000);
    await producer.acks(100);
    const tally = await producer.stop();
    const figures = await settle(db(), tally, r);
    const firstAfter = r.arrivals.find((a) => a.at >= restartFrom);
    report('worker_sigkill', {
      ...figures,
      held_at_kill: held.length,
      restart_s: seconds(restartedAt - killedAt),
      first_delivery_s: firstAfter ? seconds(firstAfter.at - killedAt) : null,
      recover_s: seconds(recoveredAt - killedAt),
    });

    expect(held.length).toBeGreaterThan(0);
    expect(figures.lost).toBe(0);
    expect(figures.delivered + figures.deadLettered).toBe(figures.deliveries);
    expect(r.overlaps).toEqual([]);
    // Only what the dead worker may have sent is sent twice.
    expect(figures.duplicates).toBeLessThanOrEqual(held.length);
    expect(w2.running).toBe(true);
  }, 120_000);
});

describe('a worker frozen with SIGSTOP past its lease', () => {
  it('another worker takes over; thawed, the frozen one changes nothing it no longer holds', async () => {
    // timeout 3 s: the lease is max(LEASE_SECONDS 5, timeout + 5 s) = 8 s.
    const { r, webhookId } = await world('freeze.*', 3000, 300);
    const [w1, w2] = await Promise.all([
      spawnPostbox(app.db.url, { name: 'w1' }),
      spawnPostbox(app.db.url, { name: 'w2' }),
    ]);
    const w1Id = workerIdOf(w1);
    const w1StatementsDone = async () => {
      const backends = await backendPidsOf(db(), w1.pid);
      expect(backends.length).toBeGreaterThan(0);
      await waitFor(
        async () => {
          const { rows } = await db().query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state = 'active'`,
            [backends],
          );
          return rows[0].n === 0;
        },
        { timeoutMs: 10_000, intervalMs: 5, what: 'the statements w1 sent before it froze to finish' },
      );
    };
    const producer = startProducer(app, tenantId, { type: 'freeze.item', concurrency: 2, paceMs: 10 });
    await producer.acks(100);

    // Freeze w1 at a moment it holds deliveries (thaw and try again if it held none).
    let held: Held[] = [];
    let stoppedAt = 0;
    await waitFor(
      async () => {
        w1.signal('SIGSTOP');
        stoppedAt = Date.now();
        // A statement w1 sent just before it froze (a recorder's write, say) still runs and commits:
        // what w1 holds is read once its backends have nothing left running.
        await w1StatementsDone();
        held = await heldBy(w1Id);
        if (held.length === 0) w1.signal('SIGCONT');
        return held.length > 0;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'w1 frozen while holding deliveries' },
    );
    const heldIds = held.map((d) => d.id);
    const recoveredAt = await succeededAt(heldIds, 30_000);
    const before = await deliveriesOf(heldIds);
    const attemptsBefore = await attemptRows(heldIds);

    w1.signal('SIGCONT');
    const thawedAt = Date.now();
    // The thawed worker finishes the attempts it had started and tries to record them.
    await waitFor(
      () =>
        heldIds.every((id) => w1.logs.some((l) => l.message === 'delivery attempt' && l.delivery_id === id)),
      { timeoutMs: 20_000, what: 'the thawed worker to finish its stale attempts' },
    );
    await producer.acks(100);
    const tally = await producer.stop();
    const figures = await settle(db(), tally, r);
    const after = await deliveriesOf(heldIds);
    const attemptsAfter = await attemptRows(heldIds);
    const { rows: hook } = await db().query(
      'SELECT breaker_state, consecutive_failures FROM webhooks WHERE id = $1',
      [webhookId],
    );
    report('worker_sigstop', {
      ...figures,
      held_at_stop: held.length,
      frozen_s: seconds(thawedAt - stoppedAt),
      recover_s: seconds(recoveredAt - stoppedAt),
      placeholders_replaced: attemptsBefore.filter((a) => a.error === LOST_ATTEMPT_ERROR).length,
      attempt_rows_added_by_thaw: attemptsAfter.length - attemptsBefore.length,
      breaker: hook[0].breaker_state,
      consecutive_failures: hook[0].consecutive_failures,
    });

    expect(figures.lost).toBe(0);
    expect(figures.delivered + figures.deadLettered).toBe(figures.deliveries);
    // w2 took them over after the lease: each was claimed again (attempt counted, lost one recorded).
    for (const d of before) expect(d.attempts).toBeGreaterThanOrEqual(2);
    expect(attemptsBefore.filter((a) => a.error === LOST_ATTEMPT_ERROR).length).toBeGreaterThanOrEqual(
      heldIds.length,
    );
    // Thawed, w1 changed none of them: same status, attempts and completion time; one attempt row per
    // attempt number (its late result took the placeholder's place, nothing recorded twice).
    expect(after).toEqual(before);
    expect(attemptsAfter).toHaveLength(attemptsBefore.length);
    const perAttempt = new Set(attemptsAfter.map((a) => `${a.delivery_id}/${a.attempt}`));
    expect(perAttempt.size).toBe(attemptsAfter.length);
    expect(figures.duplicates).toBeLessThanOrEqual(held.length);
    // Late 200s are good news about the receiver: its breaker stays closed.
    expect(hook[0].breaker_state).toBe('closed');
    expect(w2.running && w1.running).toBe(true);
  }, 150_000);
});

async function attemptRows(ids: string[]) {
  const { rows } = await db().query<{ delivery_id: string; attempt: number; error: string | null }>(
    `SELECT delivery_id, attempt, status_code, error FROM delivery_attempts
      WHERE delivery_id = ANY($1::uuid[]) ORDER BY id`,
    [ids],
  );
  return rows;
}
