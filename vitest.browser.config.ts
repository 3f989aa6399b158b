import { defineConfig } from 'vitest/config';

/**
 * The real-browser tests (npm run test:browser): the dashboard page in the system's Chromium
 * (Debian's `chromium`; .ci/install-browser.sh). Without Chromium they fail, they do not skip.
 */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
