/**
 * .github/workflows: valid against GitHub's workflow schema (@action-validator/core), ci.yml doing
 * what .ci/run does (plus coverage), release.yml pushing the image and migrating before the rollout.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import validator from '@action-validator/core';
import { parse } from 'yaml';
import { projectRoot } from '../../src/paths.js';

const read = (path: string) => readFileSync(join(projectRoot, path), 'utf8');
const ciText = read('.github/workflows/ci.yml');
const releaseText = read('.github/workflows/release.yml');
const ci = parse(ciText);
const release = parse(releaseText);

/** Every `run:` of a job, in order. */
const runs = (job: { steps: { run?: string }[] }) => job.steps.flatMap((s) => (s.run ? [s.run] : []));

describe('the workflow schema', () => {
  it.each([
    ['ci.yml', ciText],
    ['release.yml', releaseText],
  ])('%s is a valid workflow', (_name, text) => {
    expect(validator.validateWorkflow(text).errors).toEqual([]);
  });

  it('rejects a workflow with a mistake in it (the validator is really checking)', () => {
    const broken = ciText.replace('runs-on: ubuntu-24.04', 'runs_on: ubuntu-24.04');
    expect(broken).not.toBe(ciText);
    expect(validator.validateWorkflow(broken).errors.length).toBeGreaterThan(0);
  });
});

describe('ci.yml', () => {
  it('runs every npm command .ci/run runs, npm test with coverage', () => {
    const ciRun = read('.ci/run')
      .split('\n')
      .filter((l) => /^npm /.test(l));
    expect(ciRun).toEqual(expect.arrayContaining(['npm ci', 'npm test', 'npm run test:container']));
    const all = Object.values(ci.jobs as Record<string, { steps: { run?: string }[] }>).flatMap(runs);
    for (const command of ciRun) {
      if (command === 'npm test')
        expect(all).toContain(
          'npm test -- --coverage --coverageReporters=text-summary --coverageReporters=lcov',
        );
      else expect(all.some((r) => r === command || r.includes(` ${command}`))).toBe(true);
    }
  });

  it('installs the Debian packages the suite drives', () => {
    const install = runs(ci.jobs.test).find((r) => r.includes('apt-get install'))!;
    for (const pkg of ['chromium', 'nginx', 'prometheus']) expect(install).toContain(pkg);
  });
});

describe('release.yml', () => {
  it('on a version tag builds the Containerfile and pushes the image', () => {
    expect(release.on.push.tags).toEqual(['v*']);
    const build = release.jobs.image.steps.find((s: any) =>
      String(s.uses).startsWith('docker/build-push-action'),
    );
    expect(build.with).toMatchObject({ file: 'Containerfile', push: true });
  });

  it('runs the migrations with the new image before the rollout', () => {
    expect(release.jobs.migrate.needs).toBe('image');
    expect(runs(release.jobs.migrate).join('\n')).toContain('node dist/src/cli/migrate.js');
    expect(release.jobs.rollout.needs).toEqual(expect.arrayContaining(['migrate']));
  });
});
