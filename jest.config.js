// ESM all the way (got 14 is ESM-only): ts-jest's ESM preset under node --experimental-vm-modules.
/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The container test builds an image: `npm run test:container` (jest.container.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/container/'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }],
  },
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  testTimeout: 30_000,
  // Two cores: two workers keep the embedded server and the suite from starving each other.
  maxWorkers: 2,
};
