import { defineConfig } from 'vitest/config';

// Suites that hammer one guard process (load, faults, fuzzing, slow clients). They run in their own
// project, after the others, one file at a time, so that neither they nor the timing-sensitive
// integration files share the CPU with each other.
const RELIABILITY = ['test/reliability/**/*.test.ts', 'test/security/fuzz-*.test.ts', 'test/security/slow-*.test.ts'];
// Attack regression tests that judge a real daemon's state (dockerd, Podman): they need root and
// the integration project's private dockerd.
const DAEMON_SECURITY = ['test/security/redteam-*.test.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        // Examples import the package by its name, as users do; test them against the sources so a
        // stale or missing dist/ can neither fail nor fake them.
        resolve: {
          alias: [
            { find: /^docker-socket-filter\/express$/, replacement: new URL('./src/adapters/express.ts', import.meta.url).pathname },
            { find: /^docker-socket-filter\/config$/, replacement: new URL('./src/config/index.ts', import.meta.url).pathname },
            { find: /^docker-socket-filter\/koa$/, replacement: new URL('./src/adapters/koa.ts', import.meta.url).pathname },
            { find: /^docker-socket-filter$/, replacement: new URL('./src/index.ts', import.meta.url).pathname },
          ],
        },
        test: {
          name: 'unit',
          // examples/*.test.ts are daemon-less policy tests users copy into their projects.
          include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
          exclude: ['test/integration/**', ...RELIABILITY, ...DAEMON_SECURITY, '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', ...DAEMON_SECURITY],
          // One private dockerd for the whole run (test/helpers/global-setup.ts); the files share
          // it, so they run one after the other.
          globalSetup: ['test/helpers/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'reliability',
          include: RELIABILITY,
          // Its own private dockerd (the fault suite starts a second one it may stop and kill),
          // and the CLI built once: every file runs the guard as a child process.
          // DSF_RELIABILITY=full runs the full sizes (see test/README.md).
          globalSetup: ['test/helpers/global-setup-reliability.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
