import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native traps, QEMU and KVM tests spawn processes; two cores, so keep files few at once.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // The skip reporter lists every skip with its reason (and fails CI on one).
    reporters: ['default', './test/helpers/skip-reporter.ts'],
  },
});
