/** compose.yaml as data, with its anchors and merge keys resolved, and the bind mounts it declares. */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { projectRoot } from '../../src/paths.js';

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  network_mode?: string;
  stop_grace_period?: string;
  deploy?: { replicas?: number };
}

export interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function loadCompose(): Compose {
  return parse(readFileSync(join(projectRoot, 'compose.yaml'), 'utf8'), { merge: true }) as Compose;
}

export interface BindMount {
  service: string;
  /** Absolute path on the host (inside the repository). */
  source: string;
  target: string;
}

/** The `./path:/container/path[:ro]` volumes of every service (named volumes are left out). */
export function bindMounts(compose: Compose): BindMount[] {
  return Object.entries(compose.services).flatMap(([service, s]) =>
    (s.volumes ?? [])
      .map((v) => v.split(':'))
      .filter(([source]) => source!.startsWith('.') || isAbsolute(source!))
      .map(([source, target]) => ({ service, source: join(projectRoot, source!), target: target! })),
  );
}
