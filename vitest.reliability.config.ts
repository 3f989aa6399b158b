import { defineConfig } from 'vitest/config';

/**
 * The reliability and security battery (npm run test:reliability): the long variants
 * (PGML_RELIABILITY=1), one file at a time so load figures are not disturbed and the
 * system-PostgreSQL restart hits no other test.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts', 'test/security/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    env: { PGML_RELIABILITY: '1' },
    testTimeout: 300_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
