// ESM all the way (got 14 is ESM-only): ts-jest's ESM preset under node --experimental-vm-modules.
/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The container test builds an image: `npm run test:container` (jest.container.config.js). The fault
  // suite takes minutes under load: `npm run test:faults` (jest.faults.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/container/', '<rootDir>/test/faults/'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }],
  },
  // A file that leaves a server, child process or pg pool/client open fails (test/leak-environment.js).
  testEnvironment: '<rootDir>/test/leak-environment.js',
  setupFilesAfterEnv: ['<rootDir>/test/leak-tracking.ts'],
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  testTimeout: 30_000,
  // Two cores: two workers keep the embedded server and the suite from starving each other.
  maxWorkers: 2,
};
