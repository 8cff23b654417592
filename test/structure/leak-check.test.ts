/**
 * The leak check itself (test/leak-environment.js, test/leak-tracking.ts): jest run on two fixture
 * files in a child process, with the suite's own configuration. The file that leaves a server, a child
 * process, a pg pool and a pg client open fails and names each; the one that closes them passes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from '@jest/globals';

const root = process.cwd();
const out = mkdtempSync(join(tmpdir(), 'postbox-leak-check-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface JestJson {
  testResults: { name: string; status: string; message: string }[];
}

async function runJestOnFixtures(): Promise<{ code: number; results: JestJson['testResults'] }> {
  const { default: base } = (await import(pathToFileURL(join(root, 'jest.config.js')).href)) as {
    default: Record<string, unknown>;
  };
  // The suite's configuration on the fixtures; no globalSetup: they use this run's database server.
  const config = {
    ...base,
    rootDir: root,
    roots: ['<rootDir>/test/structure/leak-fixtures'],
    testMatch: ['**/*.fixture.ts'],
    testPathIgnorePatterns: ['/node_modules/'],
    globalSetup: undefined,
    globalTeardown: undefined,
  };
  const outputFile = join(out, 'result.json');
  const args = ['--experimental-vm-modules', join(root, 'node_modules/jest/bin/jest.js')];
  args.push('--config', JSON.stringify(config), '--runInBand', '--ci', '--json', '--outputFile', outputFile);
  const code = await new Promise<number>((resolve) => {
    execFile(process.execPath, args, { cwd: root, env: process.env }, (err) =>
      resolve(err ? Number((err as { code?: number }).code ?? 1) : 0),
    );
  });
  return { code, results: (JSON.parse(readFileSync(outputFile, 'utf8')) as JestJson).testResults };
}

it('a file that leaves handles open fails the run and names them; a tidy one passes', async () => {
  const { code, results } = await runJestOnFixtures();
  expect(code).not.toBe(0);
  const byFile = Object.fromEntries(results.map((r) => [r.name.split('/').pop(), r]));
  expect(byFile['tidy.fixture.ts']).toMatchObject({ status: 'passed' });
  const leaky = byFile['leaky.fixture.ts']!;
  expect(leaky.status).toBe('failed');
  expect(leaky.message).toContain('this test file left 4 handle(s) open');
  for (const kind of ['server', 'child process', 'pg.Pool', 'pg.Client'])
    expect(leaky.message).toMatch(
      new RegExp(`- ${kind}.*opened at test/structure/leak-fixtures/leaky.fixture.ts:\\d+`),
    );
}, 120_000);
