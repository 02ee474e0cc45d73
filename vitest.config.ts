import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Find (or, on a Debian-like machine as root, install) the browser test/browser/ drives and
    // the redis-server the Redis tests start.
    globalSetup: ['test/setup/browser.ts', 'test/setup/redis.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // 2 cores: a few files at once keeps real servers and child processes from starving each other.
    maxWorkers: 3,
    reporters: ['default'],
  },
});
