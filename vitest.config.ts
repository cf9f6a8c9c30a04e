import { defineConfig } from 'vitest/config';

// Two projects, run by `npm test` one after the other (unit first), each file once:
// - unit: fakes and fake timers, no services, no global setup; files run in parallel.
// - integration (everything else under tests/): real PostgreSQL, Redis and Mosquitto, shared by
//   every file on a two-core machine, so files run one at a time, each in its own process; the
//   global setup fails the run loudly when a service is down.
// `npm run test:unit` runs the first alone (`--project unit`).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          pool: 'forks',
          fileParallelism: true,
          // One worker per core (vitest's default leaves one core to the main process, which here
          // would mean one file at a time on a two-core machine).
          maxWorkers: '100%',
          testTimeout: 30_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/**/*.test.ts'],
          exclude: ['tests/unit/**'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 60_000,
          globalSetup: ['tests/helpers/global-setup.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
