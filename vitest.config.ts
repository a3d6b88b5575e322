import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Integration suites start their own buses and daemons; run files one at a time so
    // two CPU-heavy suites do not starve each other on a 2-core machine.
    fileParallelism: false,
    pool: 'forks',
  },
});
