/**
 * ops/grafana/postbox.json and ops/prometheus/alerts.yml: they parse, every PromQL expression is valid
 * PromQL (Prometheus's own lezer grammar), and every metric and label they select is one /metrics
 * really exports, so a renamed metric breaks this test instead of a dashboard or an alert.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { parseSamples } from '../helpers/prom.js';

const root = process.cwd();
const dashboard = JSON.parse(readFileSync(join(root, 'ops/grafana/postbox.json'), 'utf8'));
const RULE_FILES = ['ops/prometheus/alerts.yml', 'ops/prometheus/slo.yml'];
const groups = RULE_FILES.flatMap((f) => parseYaml(readFileSync(join(root, f), 'utf8')).groups);

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string; description?: string; runbook_url: string };
}
interface Recording {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}
const allRules: (Rule | Recording)[] = groups.flatMap((g: { rules: (Rule | Recording)[] }) => g.rules);
const rules = allRules.filter((r): r is Rule => 'alert' in r);
const recordings = allRules.filter((r): r is Recording => 'record' in r);
const panels: any[] = dashboard.panels.filter((p: any) => p.type !== 'row');
const dashboardExprs: { where: string; expr: string }[] = panels.flatMap((p) =>
  p.targets.map((t: any) => ({ where: `panel "${p.title}"`, expr: t.expr as string })),
);
const allExprs = [
  ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
  // The budgets are constants (vector(0.001)): nothing to select.
  ...recordings
    .filter((r) => !r.expr.startsWith('vector('))
    .map((r) => ({ where: `record ${r.record}{${JSON.stringify(r.labels ?? {})}}`, expr: r.expr })),
  ...dashboardExprs,
];

/** Grafana's interval variables are not PromQL; substitute a duration before parsing. */
const promql = (expr: string) => expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m');

interface Selector {
  metric: string;
  labels: { name: string; op: string; value: string }[];
}

/** Parses PromQL; returns the syntax errors (positions) and the vector selectors it reads. */
function analyse(expr: string): { errors: number[]; selectors: Selector[] } {
  const text = promql(expr);
  const errors: number[] = [];
  const selectors: Selector[] = [];
  parser.parse(text).iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
      if (node.name === 'VectorSelector') {
        const sel: Selector = { metric: '', labels: [] };
        const cursor = node.node.cursor();
        cursor.iterate((n) => {
          if (n.name === 'Identifier' && !sel.metric) sel.metric = text.slice(n.from, n.to);
          if (n.name === 'UnquotedLabelMatcher') {
            const m = /^(\w+)\s*(=~|!=|!~|=)\s*"(.*)"$/.exec(text.slice(n.from, n.to));
            if (m) sel.labels.push({ name: m[1]!, op: m[2]!, value: m[3]! });
          }
        });
        selectors.push(sel);
        return false;
      }
      return undefined;
    },
  });
  return { errors, selectors };
}

/** Families and the label names/values their samples carry, from a real registry's exposition. */
let exported: Map<string, Map<string, Set<string>>>;
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  const metrics = createMetrics({ pool: db.pool, queueStats: { ttlMs: 0 } });
  // One of everything, so every label appears.
  metrics.eventsIngested(1);
  for (const outcome of ['succeeded', 'failed_attempt', 'dead'] as const)
    metrics.deliveryOutcome(outcome, 10, 100);
  metrics.claimed(1, 1);
  metrics.httpRequest('/events', 'POST', 202, 1);
  const text = await metrics.render();
  exported = new Map();
  for (const name of text.matchAll(/^# TYPE (\S+) /gm)) exported.set(name[1]!, new Map());
  for (const s of parseSamples(text)) {
    const family = exported.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
    const labels = exported.get(family);
    if (!labels) continue;
    for (const [k, v] of Object.entries(s.labels)) {
      if (!labels.has(k)) labels.set(k, new Set());
      labels.get(k)!.add(v);
    }
  }
  // Series the rule files record are selectable too, with the labels the rules give them.
  for (const r of recordings) {
    if (!exported.has(r.record)) exported.set(r.record, new Map());
    const labels = exported.get(r.record)!;
    for (const [k, v] of Object.entries(r.labels ?? {})) {
      if (!labels.has(k)) labels.set(k, new Set());
      labels.get(k)!.add(v);
    }
  }
});
afterAll(async () => {
  await db?.drop();
});

describe('PromQL in the dashboard and the alerts', () => {
  it('the grammar catches a broken expression (the check below is not vacuous)', () => {
    expect(analyse('sum(rate(postbox_events_ingested_total[5m])').errors.length).toBeGreaterThan(0);
    expect(analyse('max(postbox_queue_depth{state="due"}) > 0')).toEqual({
      errors: [],
      selectors: [{ metric: 'postbox_queue_depth', labels: [{ name: 'state', op: '=', value: 'due' }] }],
    });
  });

  it.each(allExprs.map((e) => [e.where, e.expr]))('%s parses as PromQL', (_where, expr) => {
    expect(analyse(expr).errors).toEqual([]);
  });

  it.each(allExprs.map((e) => [e.where, e.expr]))(
    '%s selects only metrics and labels that exist',
    (_where, expr) => {
      const { selectors } = analyse(expr);
      expect(selectors.length).toBeGreaterThan(0);
      for (const sel of selectors) {
        const family = exported.has(sel.metric) ? sel.metric : sel.metric.replace(/_(bucket|sum|count)$/, '');
        expect({ metric: sel.metric, exported: exported.has(family) }).toEqual({
          metric: sel.metric,
          exported: true,
        });
        for (const l of sel.labels) {
          const values = exported.get(family)!.get(l.name);
          expect({ metric: family, label: l.name, known: values !== undefined }).toEqual({
            metric: family,
            label: l.name,
            known: true,
          });
          // An exact match must name a value that occurs (a typo like outcome="success" matches nothing).
          if (l.op === '=' && !['status', 'route', 'method'].includes(l.name))
            expect({
              metric: family,
              label: l.name,
              value: l.value,
              known: values!.has(l.value),
            }).toMatchObject({
              known: true,
            });
        }
      }
    },
  );
});

describe('ops/prometheus alert rules (alerts.yml, slo.yml)', () => {
  it('has the alerts the runbooks rely on', () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'PostboxDLQGrowing',
        'PostboxOldestDueTooOld',
        'PostboxDeliveryLagHigh',
        'PostboxWorkersNotClaiming',
        'PostboxHTTP5xxRate',
      ]),
    );
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('every rule is complete: a duration, a severity, a summary and a runbook that exists', () => {
    for (const r of rules) {
      expect({ alert: r.alert, for: r.for }).toEqual({
        alert: r.alert,
        for: expect.stringMatching(/^\d+[smh]$/),
      });
      expect(['info', 'warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary).toBeTruthy();
      expect({ alert: r.alert, runbook: existsSync(join(root, r.annotations.runbook_url)) }).toEqual({
        alert: r.alert,
        runbook: true,
      });
    }
  });

  it('every alert a runbook names exists', () => {
    const names = new Set(rules.map((r) => r.alert));
    for (const file of readdirSync(join(root, 'runbooks'))) {
      const text = readFileSync(join(root, 'runbooks', file), 'utf8');
      for (const [name] of text.matchAll(/\bPostbox[A-Z]\w+/g))
        expect({ file, alert: name, exists: names.has(name) }).toEqual({ file, alert: name, exists: true });
    }
  });
});

describe('ops/grafana/postbox.json', () => {
  it('is an importable dashboard with the panels operators need', () => {
    expect(dashboard).toMatchObject({
      uid: 'postbox-overview',
      title: 'Postbox',
      schemaVersion: expect.any(Number),
    });
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' }),
    ]);
    const titles = panels.map((p) => p.title);
    for (const t of [
      'Ingest rate',
      'Delivery success rate',
      'Delivery lag',
      'Queue depth',
      'Oldest due',
      'DLQ size',
      'Latency by route (p95)',
      'Error budget remaining (30 d)',
      'Burn rate (1 h)',
    ])
      expect(titles).toContain(t);
  });

  it('panels have unique ids, fit the 24-column grid and each query something', () => {
    const ids = dashboard.panels.map((p: any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.targets.length).toBeGreaterThan(0);
      for (const t of p.targets) expect(t.datasource.uid).toBe('${DS_PROMETHEUS}');
    }
  });
});
