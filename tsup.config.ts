import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', express: 'src/adapters/express.ts', koa: 'src/adapters/koa.ts', config: 'src/config/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    target: 'node22',
    platform: 'node',
    sourcemap: true,
    // The CLI entry below builds in parallel into the same folder: leave its files alone.
    clean: ['!cli.js', '!cli.js.map'],
    splitting: false,
    treeshake: true,
    // import.meta.url in the CommonJS build (src/config loads `yaml` through createRequire).
    shims: true,
  },
  {
    // The `docker-socket-filter` bin: ESM only (it is run, never required). esbuild keeps the
    // source's `#!/usr/bin/env node` line at the top of the output.
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    dts: false,
    target: 'node22',
    platform: 'node',
    sourcemap: true,
    clean: false,
    splitting: false,
    treeshake: true,
  },
]);
