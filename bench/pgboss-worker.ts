/**
 * The worker of the plain pg-boss design that bench/pgboss.ts compares Postbox with: one pg-boss job
 * per delivery, sent with got through Postbox's own keep-alive agents and signed as Postbox signs
 * (same envelope, same headers), so what differs is the queue, not the HTTP or the crypto.
 *
 * What a plain design does and Postbox does more of: it keeps no attempt history (pg-boss keeps the
 * job's state and output only), has no per-endpoint concurrency limit, circuit breaker or tenant quota,
 * and finds its webhooks in memory (BENCH_PGBOSS_WEBHOOKS: [{url, secret}], as a cache would hold them).
 *
 * Env: DATABASE_URL; PGBOSS_WORKERS pollers (default 4), each fetching PGBOSS_BATCH jobs (default 50) and
 * sending them at once; PGBOSS_POLL_SECONDS (default 0.5, pg-boss's minimum). Prints "ready" on stdout
 * once polling; SIGTERM stops it gracefully.
 */
import got from 'got';
import PgBoss from 'pg-boss';
import { createHttpAgents } from '../src/delivery/http-agents.js';
import { deliveryBody, deliveryHeaders } from '../src/delivery/sender.js';
import { hmacKeyOf } from '../src/security/webhook-secrets.js';
import { QUEUE, type DeliveryJob } from './lib/pgboss-jobs.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

async function main(): Promise<void> {
  const webhooks = (
    JSON.parse(process.env.BENCH_PGBOSS_WEBHOOKS ?? '[]') as { url: string; secret: string }[]
  ).map((w) => ({ url: w.url, keys: [hmacKeyOf(w.secret)] }));
  const agents = createHttpAgents({
    allowCidrs: ['127.0.0.0/8'],
    maxSocketsPerHost: 1000,
    maxFreeSocketsPerHost: 256,
  });
  const client = got.extend({
    agent: { http: agents.http, https: agents.https },
    followRedirect: false,
    throwHttpErrors: false,
    retry: { limit: 0 },
    decompress: false,
    timeout: { request: 15_000 },
  });
  const boss = new PgBoss({ connectionString: process.env.DATABASE_URL!, max: env('PGBOSS_POOL', 10) });
  boss.on('error', (err: Error) => console.error('[pgboss worker]', err.message));
  await boss.start();

  /** One attempt; true on a 2xx. */
  const send = async (job: PgBoss.Job<DeliveryJob>): Promise<boolean> => {
    const d = job.data;
    const webhook = webhooks[d.webhook]!;
    const body = deliveryBody({
      eventId: d.event_id,
      eventType: d.type,
      occurredAt: new Date(d.timestamp),
      payloadJson: JSON.stringify(d.payload),
    });
    const headers = deliveryHeaders(
      { id: job.id, eventType: d.type, attempt: 1, traceparent: null },
      body,
      webhook.keys,
      Math.floor(Date.now() / 1000),
    );
    try {
      const res = await client.post(webhook.url, { body, headers });
      return res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      return false;
    }
  };

  const options = {
    batchSize: env('PGBOSS_BATCH', 50),
    pollingIntervalSeconds: env('PGBOSS_POLL_SECONDS', 0.5),
  };
  for (let i = 0; i < env('PGBOSS_WORKERS', 4); i++)
    await boss.work<DeliveryJob>(QUEUE, options, async (jobs) => {
      const ok = await Promise.all(jobs.map(send));
      const failed = jobs.filter((_, k) => !ok[k]).map((j) => j.id);
      // pg-boss then completes the batch; only jobs still active are completed, so these stay failed
      // (and are retried by pg-boss's retry policy).
      if (failed.length > 0) await boss.fail(QUEUE, failed);
    });
  console.log('ready');

  process.on('SIGTERM', () => {
    void boss.stop({ graceful: true, timeout: 10_000, wait: true }).then(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
