import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Servers on loopback (gRPC, HTTP, redis-server) start per file; files run in parallel
    // on the machine's two cores.
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // After the run: no gateway log line of any test may hold a key or an e-mail address.
    globalSetup: ['test/helpers/logAudit.ts'],
  },
});
