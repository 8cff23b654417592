/**
 * compose.yaml: the services a deployment needs, wired to each other by name, every file it mounts
 * present, and the Prometheus config valid (promtool) in the layout compose mounts it in.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { projectRoot } from '../../src/paths.js';
import { bindMounts, loadCompose } from '../helpers/compose.js';

const compose = loadCompose();
const services = compose.services;
const postboxServices = ['migrate', 'api', 'worker'] as const;
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);

describe('compose.yaml', () => {
  it('has Postbox (migrate, api, workers), PostgreSQL, nginx, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'grafana', 'migrate', 'nginx', 'postgres', 'prometheus', 'worker'].sort(),
    );
  });

  it('builds every Postbox service from the Containerfile and points it at the postgres service', () => {
    for (const name of postboxServices) {
      const s = services[name]!;
      expect(s.build?.dockerfile).toBe('Containerfile');
      expect(existsSync(join(projectRoot, s.build!.context, s.build!.dockerfile))).toBe(true);
      const env = s.environment!;
      expect(new URL(env.DATABASE_URL!).hostname).toBe('postgres');
      expect(env.SECRETS_KEY).toMatch(/^\$\{SECRETS_KEY:\?/); // required, the same for every process
      expect(env.ADMIN_API_KEY).toMatch(/^\$\{ADMIN_API_KEY:\?/);
    }
    expect(services.api!.environment!.POSTBOX_ROLE).toBe('api');
    expect(services.worker!.environment!.POSTBOX_ROLE).toBe('worker');
    expect(services.migrate!.command).toEqual(['node', 'dist/src/cli/migrate.js']);
    expect(existsSync(join(projectRoot, 'src/cli/migrate.ts'))).toBe(true);
  });

  it('starts api and workers after the migrations, and gives them longer than the drain to stop', () => {
    for (const name of ['api', 'worker']) {
      const s = services[name]!;
      expect(s.depends_on).toEqual({ migrate: { condition: 'service_completed_successfully' } });
      expect(seconds(s.stop_grace_period!)).toBeGreaterThan(10); // SHUTDOWN_GRACE_MS default 10 s
    }
    expect(services.migrate!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  it("runs nginx with the shipped config in the api's network, so its 127.0.0.1:3000 upstream is the API", () => {
    const nginx = services.nginx!;
    expect(nginx.network_mode).toBe('service:api');
    expect(nginx.volumes).toContain('./deploy/nginx/postbox.conf:/etc/nginx/conf.d/postbox.conf:ro');
    expect(readFileSync(join(projectRoot, 'deploy/nginx/postbox.conf'), 'utf8')).toContain(
      'server 127.0.0.1:3000;',
    );
    expect(services.api!.ports).toEqual(['8080:8080']);
  });

  it('mounts only files that exist', () => {
    const mounts = bindMounts(compose);
    expect(mounts.length).toBeGreaterThanOrEqual(6);
    for (const m of mounts)
      expect({ ...m, exists: existsSync(m.source) && statSync(m.source).isFile() }).toMatchObject({
        exists: true,
      });
  });

  it('names only volumes it declares', () => {
    for (const s of Object.values(services))
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (!source.startsWith('.')) expect(Object.keys(compose.volumes ?? {})).toContain(source);
      }
  });

  it('scrapes every Postbox process that serves /metrics: the api and each worker replica', () => {
    const config = parse(readFileSync(join(projectRoot, 'deploy/prometheus/prometheus.yml'), 'utf8'));
    const jobs = config.scrape_configs as any[];
    const api = jobs.find((j) => j.job_name === 'postbox-api');
    const worker = jobs.find((j) => j.job_name === 'postbox-worker');
    expect(api.static_configs[0].targets).toEqual(['api:3000']);
    expect(worker.dns_sd_configs[0]).toMatchObject({ names: ['worker'], type: 'A', port: 3000 });
    expect(config.rule_files).toEqual(['alerts.yml']);
    // Where compose puts the rules file is where the config looks for it.
    const mounts = bindMounts(compose).filter((m) => m.service === 'prometheus');
    expect(mounts.map((m) => m.target)).toEqual(
      expect.arrayContaining(['/etc/prometheus/prometheus.yml', '/etc/prometheus/alerts.yml']),
    );
  });

  it('provisions Grafana with the Prometheus service and the dashboard compose mounts', () => {
    const ds = parse(
      readFileSync(join(projectRoot, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
    );
    expect(ds.datasources[0]).toMatchObject({
      type: 'prometheus',
      url: 'http://prometheus:9090',
      isDefault: true,
    });
    expect(services.prometheus!.ports).toEqual(['9090:9090']);
    const provider = parse(
      readFileSync(join(projectRoot, 'deploy/grafana/provisioning/dashboards/postbox.yml'), 'utf8'),
    );
    const dashboard = bindMounts(compose).find(
      (m) => m.service === 'grafana' && m.source.endsWith('postbox.json'),
    )!;
    expect(dirname(dashboard.target)).toBe(provider.providers[0].options.path);
    // The dashboard's ${DS_PROMETHEUS} resolves to a data source variable, so a provisioned copy works.
    const board = JSON.parse(readFileSync(dashboard.source, 'utf8'));
    expect(board.templating.list).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource' })]),
    );
  });

  it('passes promtool check config, laid out as compose mounts it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'postbox-compose-'));
    try {
      for (const m of bindMounts(compose).filter((m) => m.service === 'prometheus')) {
        const target = join(root, m.target);
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(m.source, target);
      }
      const { stdout, stderr } = await promisify(execFile)('promtool', [
        'check',
        'config',
        join(root, 'etc/prometheus/prometheus.yml'),
      ]);
      expect(stdout + stderr).toMatch(/SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
      expect(stdout + stderr).toMatch(/SUCCESS: \d+ rules found/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
