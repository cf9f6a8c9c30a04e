import { defineConfig } from 'vitest/config';

// Integration tests share one PostgreSQL, Redis and Mosquitto, and the machine has two cores:
// files run one at a time, each in its own process.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['tests/helpers/global-setup.ts'],
  },
});
