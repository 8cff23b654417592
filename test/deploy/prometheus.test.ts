/**
 * Debian's prometheus with the shipped scrape config (deploy/prometheus/prometheus.yml) against real
 * Postbox processes, an API-only one and a worker-only one: both are scraped and a Postbox series
 * reads back through Prometheus's HTTP API. Only the targets change (compose's service names and
 * DNS discovery become this host's ports) and the intervals shrink; jobs, paths and rules stay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { freePort } from '../../src/db/embedded.js';
import { projectRoot } from '../../src/paths.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { killAllPostboxes, spawnPostbox } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

let db: TestDatabase;
let prometheus: ChildProcess | undefined;
let prometheusExited: Promise<unknown> | undefined;
let promPort: number;
let dir: string;
let promOutput = '';

beforeAll(async () => {
  db = await createTestDatabase();
  const apiPort = await freePort();
  const workerPort = await freePort();
  const listening = (line: { message?: string }) => line.message === 'listening';
  await Promise.all([
    spawnPostbox(db.url, {
      name: 'api',
      env: { POSTBOX_ROLE: 'api', PORT: String(apiPort) },
      readyMessage: listening,
    }),
    spawnPostbox(db.url, {
      name: 'worker',
      env: { PORT: String(workerPort) },
      readyMessage: listening,
      readyTimeoutMs: 120_000,
    }),
  ]);

  dir = mkdtempSync(join(tmpdir(), 'postbox-prometheus-'));
  chmodSync(dir, 0o755);
  const config = parse(readFileSync(join(projectRoot, 'deploy/prometheus/prometheus.yml'), 'utf8'));
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  const targets: Record<string, number> = { 'postbox-api': apiPort, 'postbox-worker': workerPort };
  for (const job of config.scrape_configs) {
    const port = targets[job.job_name];
    if (!port) throw new Error(`unexpected job ${job.job_name} in deploy/prometheus/prometheus.yml`);
    delete job.dns_sd_configs;
    job.static_configs = [{ targets: [`127.0.0.1:${port}`], labels: job.static_configs?.[0]?.labels ?? {} }];
  }
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  copyFileSync(join(projectRoot, 'ops/prometheus/alerts.yml'), join(dir, 'alerts.yml')); // as compose mounts it

  promPort = await freePort();
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout!.on('data', (c: Buffer) => (promOutput += c.toString()));
  prometheus.stderr!.on('data', (c: Buffer) => (promOutput += c.toString()));
  prometheusExited = new Promise((resolve) => prometheus!.on('exit', resolve));
}, 240_000);

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  await prometheusExited;
  await killAllPostboxes();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`).catch(
    () => undefined,
  );
  if (!res?.ok) return [];
  const body = (await res.json()) as { data: { result: any[] } };
  return body.data.result;
}

it('scrapes the API and the worker process and serves a Postbox series back', async () => {
  const up = await waitFor(
    async () => {
      if (prometheus?.exitCode !== null) throw new Error(`prometheus exited:\n${promOutput.slice(-3000)}`);
      const r = await query('up == 1');
      return r.length === 2 ? r : undefined;
    },
    { timeoutMs: 150_000, intervalMs: 250, what: 'both targets up' },
  );
  expect(up.map((r) => `${r.metric.job}/${r.metric.role}`).sort()).toEqual([
    'postbox-api/api',
    'postbox-worker/worker',
  ]);

  // postbox_queue_depth is served by every process, labelled by the job that scraped it.
  const depth = await waitFor(
    async () => {
      const r = await query('postbox_queue_depth');
      return new Set(r.map((s) => s.metric.job)).size === 2 ? r : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: 'postbox_queue_depth from both jobs' },
  );
  expect(depth.every((s) => Number.isFinite(Number(s.value[1])))).toBe(true);
}, 240_000);

it('loads the alert rules from where compose mounts them', async () => {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`);
  const body = (await res.json()) as { data: { groups: { name: string; rules: unknown[] }[] } };
  expect(body.data.groups.map((g) => g.name)).toContain('postbox-delivery');
  expect(body.data.groups.flatMap((g) => g.rules).length).toBeGreaterThan(3);
});
