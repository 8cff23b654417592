/**
 * The real Containerfile, built and run: the image runs as non-root and holds no local data or
 * tests; a container on a named volume becomes healthy (its own HEALTHCHECK), delivers signed events
 * to a receiver on the host, drains on `podman stop` (exit 0), and a new container on the same volume
 * finds the data and the keys. Run with `npm run test:container` (.ci/run does).
 *
 * No image registry is reachable here, so the build's BASE is a local equivalent of
 * node:22-bookworm-slim (test/container/base-image.sh, cached). POSTBOX_CONTAINER_BASE overrides it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { freePort } from '../../src/db/embedded.js';
import { projectRoot } from '../../src/paths.js';
import { rawRequest, type RawResponse } from '../helpers/http.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';
import { baseImage, podman, podmanUnavailable } from './podman.js';

const unavailable = podmanUnavailable();
if (unavailable) console.log(`container tests skipped: ${unavailable}`);
const describeIfPodman = unavailable ? describe.skip : describe;

const suffix = randomBytes(4).toString('hex');
// One stable tag: each build replaces it, and its layers stay cached for the next run.
const IMAGE = 'localhost/postbox:test';
const VOLUME = `postbox-test-data-${suffix}`;
const containers: string[] = [];
const figures: Record<string, string> = {};

let receiver: Receiver;
let port: number;

/** Starts a container of the image on the volume (host network: it reaches the host's receiver). */
async function runContainer(name: string): Promise<{ name: string; healthyAfterMs: number }> {
  const started = Date.now();
  await podman([
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '-e',
    `PORT=${port}`,
    '-e',
    'SSRF_ALLOW_CIDRS=127.0.0.0/8',
    '-e',
    'REQUIRE_HTTPS=false', // the receiver here is plain HTTP on loopback
    '-e',
    'SHUTDOWN_GRACE_MS=10000',
    '-v',
    `${VOLUME}:/data`,
    IMAGE,
  ]);
  containers.push(name);
  // Podman runs HEALTHCHECKs from systemd timers, which a machine without systemd lacks: run the
  // image's own check command until it passes, as the timer would.
  await waitFor(
    async () => {
      const state = (await podman(['inspect', name, '--format', '{{.State.Status}}'])).stdout.trim();
      if (state !== 'running') throw new Error(`container ${state}:\n${await logsOf(name)}`);
      return (await podman(['healthcheck', 'run', name], { allowFailure: true })).code === 0;
    },
    { timeoutMs: 180_000, intervalMs: 500, what: `${name} to become healthy` },
  );
  const status = (await podman(['inspect', name, '--format', '{{.State.Health.Status}}'])).stdout.trim();
  expect(status).toBe('healthy');
  return { name, healthyAfterMs: Date.now() - started };
}

async function logsOf(name: string): Promise<string> {
  const { stdout, stderr } = await podman(['logs', name], { allowFailure: true });
  return (stdout + stderr).split('\n').slice(-40).join('\n');
}

async function api(method: string, path: string, key: string, body?: unknown): Promise<RawResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return rawRequest({
    port,
    method,
    path,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describeIfPodman('the container image', () => {
  beforeAll(async () => {
    receiver = await startReceiver();
    port = await freePort();
    const base =
      process.env.POSTBOX_CONTAINER_BASE ??
      (await baseImage(join(projectRoot, 'test/container/base-image.sh')));
    const t0 = Date.now();
    await podman(
      [
        'build',
        '--format',
        'docker',
        '--network',
        'host',
        '--build-arg',
        `BASE=${base}`,
        '-t',
        IMAGE,
        '-f',
        'Containerfile',
        projectRoot,
      ],
      { timeoutMs: 30 * 60_000 },
    );
    figures.build_s = ((Date.now() - t0) / 1000).toFixed(1);
    const size = Number((await podman(['image', 'inspect', IMAGE, '--format', '{{.Size}}'])).stdout.trim());
    figures.image_mb = (size / 1e6).toFixed(0);
    await podman(['volume', 'create', VOLUME]);
  }, 40 * 60_000);

  afterAll(async () => {
    for (const name of containers) await podman(['rm', '-f', '-t', '0', name], { allowFailure: true });
    await podman(['volume', 'rm', '-f', VOLUME], { allowFailure: true });
    await receiver?.close();
    console.log(`container figures: ${JSON.stringify(figures)}`);
  }, 120_000);

  it('is configured as the contract says: non-root, HEALTHCHECK, SIGTERM, tini, /data volume, port 3000', async () => {
    const [config] = JSON.parse((await podman(['image', 'inspect', IMAGE])).stdout) as [any];
    const c = config.Config;
    expect(c.User).toBe('node');
    expect((config.Healthcheck ?? c.Healthcheck).Test.join(' ')).toContain('/ready'); // kept by --format docker
    expect(c.StopSignal).toBe('SIGTERM');
    expect(c.Entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(Object.keys(c.Volumes)).toEqual(['/data']);
    expect(Object.keys(c.ExposedPorts)).toEqual(['3000/tcp']);
    expect(c.Env).toEqual(
      expect.arrayContaining(['DATA_DIR=/data', 'PORT=3000', 'NODE_ENV=production', 'REQUIRE_HTTPS=true']),
    );
  });

  it('runs as a non-root user and holds no local data, tests, sources of secrets or dev tools', async () => {
    const script = [
      'id -u',
      // Anything that must not be there prints its name.
      'for p in /app/.data /app/test /app/coverage /app/.git /app/node_modules/jest /app/.env; do [ -e "$p" ] && echo "found $p"; done',
      'find /app -path /app/node_modules -prune -o \\( -name "*.test.ts" -o -name "admin-api-key" -o -name "secrets-key" -o -name "PG_VERSION" \\) -print | sed "s/^/found /"',
      'touch /app/x 2>/dev/null && echo "found writable /app"',
      'ls /app',
      'true',
    ].join('; ');
    const { stdout } = await podman(['run', '--rm', '--entrypoint', 'sh', IMAGE, '-c', script]);
    const lines = stdout.trim().split('\n');
    expect(Number(lines[0])).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('found'))).toEqual([]);
    expect(lines.slice(1)).toEqual(
      expect.arrayContaining(['db', 'dist', 'node_modules', 'package.json', 'src']),
    );
  }, 120_000);

  it(
    'delivers, drains on podman stop, and keeps its data and keys across a new container on the volume',
    async () => {
      const first = await runContainer(`postbox-test-1-${suffix}`);
      figures.first_start_healthy_s = (first.healthyAfterMs / 1000).toFixed(1);
      const adminKey = (await podman(['exec', first.name, 'cat', '/data/admin-api-key'])).stdout.trim();
      expect(adminKey).toMatch(/^pbadmin_/);
      const mode = (
        await podman(['exec', first.name, 'stat', '-c', '%a %U', '/data/admin-api-key'])
      ).stdout.trim();
      expect(mode).toBe('600 node');

      const tenant = await api('POST', '/tenants', adminKey, { name: 'container' });
      expect(tenant.status).toBe(201);
      const tenantKey = tenant.json.api_key as string;
      const hook = await api('POST', '/webhooks', tenantKey, {
        url: receiver.url('/container'),
        retry_policy: { max_attempts: 5, initial_delay_ms: 100, max_delay_ms: 1000 },
      });
      expect(hook.status).toBe(201);
      const verifier = new Webhook(hook.json.secret as string);

      const sent = await api('POST', '/events/batch', tenantKey, {
        events: Array.from({ length: 20 }, (_, i) => ({ type: 'container.test', payload: { i } })),
      });
      expect(sent.status).toBe(202);
      const received = await receiver.waitForRequests(20, '/container', 60_000);
      for (const r of received)
        expect(() => verifier.verify(r.body, r.headers as Record<string, string>)).not.toThrow();

      // One delivery in flight when the stop comes: the receiver answers it 2 s later, within the grace.
      receiver.on('/container', { status: 200, delayMs: 2000 });
      const slow = await api('POST', '/events', tenantKey, {
        type: 'container.slow',
        payload: { slow: true },
      });
      expect(slow.status).toBe(202);
      await waitFor(() => receiver.requestsTo('/container').length === 21, {
        timeoutMs: 30_000,
        what: 'the slow request',
      });
      const t0 = Date.now();
      await podman(['stop', '-t', '30', first.name]);
      figures.stop_drain_s = ((Date.now() - t0) / 1000).toFixed(1);
      expect((await podman(['inspect', first.name, '--format', '{{.State.ExitCode}}'])).stdout.trim()).toBe(
        '0',
      );
      const logs = await logsOf(first.name);
      expect(logs).toContain('"message":"stopped"');
      // Drained, not cut: the in-flight attempt finished, nothing was aborted or left to another process.
      expect(logs).toMatch(/"aborted":0[^\n]*"message":"delivery engine stopped"/);
      receiver.on('/container', { status: 200 });

      const second = await runContainer(`postbox-test-2-${suffix}`);
      figures.restart_healthy_s = (second.healthyAfterMs / 1000).toFixed(1);
      // The same keys: the generated admin key still works, and the sealed webhook secret still signs.
      expect((await podman(['exec', second.name, 'cat', '/data/admin-api-key'])).stdout.trim()).toBe(
        adminKey,
      );
      const slowDelivery = await api('GET', `/deliveries/${slow.json.delivery_ids[0]}`, tenantKey);
      expect(slowDelivery.json.status).toBe('succeeded');
      const events = await api('GET', '/events?limit=100', tenantKey);
      expect(events.json.data).toHaveLength(21);
      const again = await api('POST', '/events', tenantKey, {
        type: 'container.after',
        payload: { after: true },
      });
      expect(again.status).toBe(202);
      const [after] = (await receiver.waitForRequests(22, '/container', 60_000)).slice(21);
      expect(JSON.parse(after!.body).data).toEqual({ after: true });
      expect(() => verifier.verify(after!.body, after!.headers as Record<string, string>)).not.toThrow();
      // The slow delivery was sent once: the drain finished it, the restart did not send it again.
      const slowSends = receiver
        .requestsTo('/container')
        .filter((r) => JSON.parse(r.body).type === 'container.slow');
      expect(slowSends).toHaveLength(1);
      await podman(['stop', '-t', '30', second.name]);
    },
    10 * 60_000,
  );
});
