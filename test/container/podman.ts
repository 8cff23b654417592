/**
 * Podman as these machines run it: as root with `--runtime runc` (crun fails on the hybrid cgroup
 * layout) and a containers.conf holding `default_ulimits = []`, passed with CONTAINERS_CONF.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const confDir = mkdtempSync(join(tmpdir(), 'postbox-podman-'));
const conf = join(confDir, 'containers.conf');
writeFileSync(conf, '[containers]\ndefault_ulimits = []\n');
const env = { ...process.env, CONTAINERS_CONF: conf };

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why podman cannot run containers here, or null when it can. */
export function podmanUnavailable(): string | null {
  const version = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) return 'podman is not installed';
  const info = spawnSync('podman', ['--runtime', 'runc', 'info', '--format', '{{.Host.OCIRuntime.Name}}'], {
    encoding: 'utf8',
    env,
  });
  if (info.status !== 0)
    return `podman cannot run here: ${(info.stderr || info.stdout).trim().slice(0, 300)}`;
  return null;
}

export function podman(
  args: string[],
  options: { timeoutMs?: number; allowFailure?: boolean } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      'podman',
      ['--runtime', 'runc', ...args],
      { env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        const run = { code, stdout: String(stdout), stderr: String(stderr) };
        if (code !== 0 && !options.allowFailure)
          reject(new Error(`podman ${args.join(' ')} exited ${code}:\n${run.stderr.slice(-2000)}`));
        else resolve(run);
      },
    );
  });
}

/** The test's stand-in for node:22-bookworm-slim, built once and cached (test/container/base-image.sh). */
export function baseImage(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script],
      { env, timeout: 30 * 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${script} failed: ${String(stderr).slice(-3000)}`));
        else resolve(String(stdout).trim().split('\n').at(-1)!);
      },
    );
  });
}
