// `npm run test:container`: the container image built and run with podman (test/container). Kept out
// of `npm test` (the build takes minutes); .ci/run calls both.
import base from './jest.config.js';

/** @type {import('jest').Config} */
export default {
  ...base,
  roots: ['<rootDir>/test/container'],
  testPathIgnorePatterns: ['/node_modules/'],
  // The container runs its own embedded PostgreSQL; the suite's shared one is not needed.
  globalSetup: undefined,
  globalTeardown: undefined,
  testTimeout: 600_000,
  maxWorkers: 1,
};
