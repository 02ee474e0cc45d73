import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // 2 cores: a few files at once keeps real servers and child processes from starving each other.
    maxWorkers: 3,
    reporters: ['default'],
  },
});
