/**
 * The import structure keeps its shape: no import cycle between modules, and no arrow from a lower
 * layer to a higher one (the SQL layer never reaches for delivery policy, observability never for the
 * engine, and so on). Imports are read with TypeScript's own pre-processor, type-only and dynamic
 * imports included: a type import is an arrow too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const root = join(dirname(new URL(import.meta.url).pathname), '..', '..');

/**
 * Lowest first. A module may import its own unit and any lower layer, nothing beside or above it.
 * A file belongs to the longest unit that holds it (src/api/openapi/ before src/api/).
 */
const LAYERS: readonly (readonly string[])[] = [
  ['src/errors.ts', 'src/logger.ts', 'src/ids.ts', 'src/paths.ts', 'src/config.ts'],
  ['db/schema.ts', 'src/db/', 'src/security/'],
  ['src/queries/'],
  ['src/observability/'],
  ['src/quotas/'],
  ['src/ingest/', 'src/delivery/', 'src/maintenance/', 'src/operational/'],
  ['src/api/'],
  ['src/console/'],
  ['src/app.ts'],
  ['src/runtime/'],
  ['src/main.ts', 'src/cli/'],
];

function unitOf(file: string): { unit: string; rank: number } {
  let found: { unit: string; rank: number } | undefined;
  for (const [rank, units] of LAYERS.entries())
    for (const unit of units)
      if (
        (file === unit || (unit.endsWith('/') && file.startsWith(unit))) &&
        unit.length > (found?.unit.length ?? 0)
      )
        found = { unit, rank };
  if (!found) throw new Error(`${file} is in no layer: add its folder to LAYERS`);
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'public' ? [] : sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** file → the project files it imports (relative specifiers only; packages are not arrows here). */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => relative(root, normalize(join(root, dirname(file), spec))).replace(/\.js$/, '.ts'));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Every import cycle, each as the path that closes it (Tarjan's strongly connected components). */
function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.reverse());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

const files = [...sourceFiles('src'), 'db/schema.ts'];
const graph = importGraph(files);

describe('import structure', () => {
  it('reads the imports it checks', () => {
    expect(graph.get('src/delivery/engine.ts')).toContain('src/delivery/claimer.ts');
    expect(graph.get('src/queries/claim.ts')).toContain('db/schema.ts'); // a type-only import counts
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    const cyclic = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(importCycles(cyclic)).toEqual([['a', 'b', 'c']]);
    expect(
      importCycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  it('has no arrow from a lower layer to a higher one or sideways between units', () => {
    const wrong: string[] = [];
    for (const [file, targets] of graph) {
      const from = unitOf(file);
      for (const target of targets) {
        const to = unitOf(target);
        if (to.unit !== from.unit && to.rank >= from.rank) wrong.push(`${file} → ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
