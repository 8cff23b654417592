// `npm run test:faults`: the fault suite (test/faults): worker processes killed and frozen, the database
// stopped and its sessions killed, receivers hostile or away, each case ending with the ledger check. Kept
// out of `npm test` (about a minute on an idle machine, several under load); .ci/run calls both.
import base from './jest.config.js';

/** @type {import('jest').Config} */
export default {
  ...base,
  roots: ['<rootDir>/test/faults'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 180_000,
};
