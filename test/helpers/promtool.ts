/**
 * Prometheus's own rule tester, run on written or generated series: `promtool test rules`. The
 * Debian package `prometheus` provides it (.ci/run installs it when missing).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

const run = promisify(execFile);

export interface PromtoolResult {
  ok: boolean;
  output: string;
}

/** Runs promtool with `args`; a non-zero exit is a result (ok false), not a throw. */
export async function promtool(args: string[], cwd?: string): Promise<PromtoolResult> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd, timeout: 170_000 });
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool not found: apt-get install prometheus (see .ci/run)');
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export interface SeriesTest {
  name: string;
  /** `series` selector text → promtool's expanding notation (e.g. '0x30'). */
  series: Record<string, string>;
  /** Alert name → eval times (e.g. '20m') at which it must not be firing. */
  silentAt: Record<string, string[]>;
}

/** Writes a test file for `ruleFile` (absolute path) and runs it. */
export async function testRules(ruleFile: string, tests: SeriesTest[]): Promise<PromtoolResult> {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-promtool-'));
  try {
    const file = join(dir, 'generated.test.yml');
    writeFileSync(
      file,
      stringify({
        rule_files: [ruleFile],
        evaluation_interval: '1m',
        tests: tests.map((t) => ({
          name: t.name,
          interval: '1m',
          input_series: Object.entries(t.series).map(([series, values]) => ({ series, values })),
          alert_rule_test: Object.entries(t.silentAt).flatMap(([alertname, times]) =>
            times.map((eval_time) => ({ eval_time, alertname, exp_alerts: [] })),
          ),
        })),
      }),
    );
    return await promtool(['test', 'rules', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The names of the alerts promtool reported as firing where none was expected. */
export function firingAlerts(output: string): Set<string> {
  return new Set([...output.matchAll(/alertname="(\w+)"/g)].map((m) => m[1]!));
}
