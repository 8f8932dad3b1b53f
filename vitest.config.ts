import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const api = (name: string) => fileURLToPath(new URL(`./src/api/${name}.ts`, import.meta.url));

export default defineConfig({
  // A user's module loaded in a test resolves muxvisor/... to the sources, as the CLI's hook does
  // (src/bin/own-modules-hook.mjs); the package's own exports point at dist/, built when packed.
  resolve: {
    alias: [
      { find: /^muxvisor$/, replacement: api('index') },
      { find: /^muxvisor\/(define|policy|device)$/, replacement: fileURLToPath(new URL('./src/api/$1.ts', import.meta.url)) },
    ],
  },
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
