/**
 * The incident documents hold together: every alert rule links a runbook that exists, the incident
 * response page lists every alert with that same runbook, and every relative link in docs/ and
 * runbooks/ points at a file that exists.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';

const root = process.cwd();
const RULE_FILES = ['ops/prometheus/alerts.yml', 'ops/prometheus/slo.yml'];

interface AlertRule {
  alert?: string;
  annotations?: { runbook_url?: string };
}
const alerts = RULE_FILES.flatMap((f) =>
  parseYaml(readFileSync(join(root, f), 'utf8')).groups.flatMap((g: { rules: AlertRule[] }) => g.rules),
).filter((r: AlertRule) => r.alert);

const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** Markdown links [text](target) that are relative paths (no scheme, no pure anchor). */
function relativeLinks(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!.split('#')[0]!)
    .filter((t) => t && !/^[a-z]+:/i.test(t));
}

describe('incident documents', () => {
  it('exist', () => {
    for (const f of [
      'docs/incident-response.md',
      'docs/postmortem-template.md',
      'docs/incidents.md',
      'docs/slo.md',
    ])
      expect({ f, exists: existsSync(join(root, f)) }).toEqual({ f, exists: true });
  });

  it('every alert links a runbook that exists', () => {
    expect(alerts.length).toBeGreaterThan(10);
    for (const a of alerts) {
      const url = a.annotations?.runbook_url ?? '';
      expect({
        alert: a.alert,
        url: /^runbooks\/[\w-]+\.md$/.test(url),
        exists: existsSync(join(root, url)),
      }).toEqual({ alert: a.alert, url: true, exists: true });
    }
  });

  it('incident-response.md lists every alert with the runbook its rule links', () => {
    const page = read('docs/incident-response.md');
    const listed = new Map(
      [...page.matchAll(/^\| (Postbox\w+) \| \w+ \| \[[^\]]*\]\(\.\.\/(runbooks\/[\w-]+\.md)\) \|$/gm)].map(
        (m) => [m[1]!, m[2]!],
      ),
    );
    for (const a of alerts)
      expect({ alert: a.alert, runbook: listed.get(a.alert!) }).toEqual({
        alert: a.alert,
        runbook: a.annotations!.runbook_url,
      });
    // And nothing listed that no rule defines.
    expect([...listed.keys()].sort()).toEqual(alerts.map((a: AlertRule) => a.alert).sort());
  });

  it('the link check sees links (it is not vacuous)', () => {
    expect(relativeLinks('see [a](../runbooks/x.md#y), [b](https://e.com), [c](#z)')).toEqual([
      '../runbooks/x.md',
    ]);
  });

  it.each(
    ['docs', 'runbooks'].flatMap((dir) =>
      readdirSync(join(root, dir))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `${dir}/${f}`),
    ),
  )('every relative link in %s exists', (file) => {
    for (const target of relativeLinks(read(file))) {
      const path = normalize(join(dirname(file), target));
      expect({ file, target, exists: existsSync(join(root, path)) }).toEqual({ file, target, exists: true });
    }
  });
});
