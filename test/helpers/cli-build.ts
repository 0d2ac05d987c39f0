import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'tsup';
import tsupConfig from '../../tsup.config.js';

/**
 * Builds the `docker-socket-filter` bin from the current sources with the project's own tsup entry,
 * into a folder of its own inside the project (so its dependencies resolve from node_modules): a
 * stale or missing dist/ can neither fail nor fake a suite, and a concurrent `npm run build` is not
 * disturbed.
 *
 * @example
 * ```ts
 * const cli = await buildCli('reliability');
 * spawn(process.execPath, [cli.path, '--listen', '127.0.0.1:0']);
 * await cli.dispose();
 * ```
 */
export async function buildCli(name: string): Promise<{ readonly path: string; dispose(): Promise<void> }> {
  const outDir = resolve('node_modules/.cache', `dsf-cli-${name}-${process.pid}`);
  const configs = Array.isArray(tsupConfig) ? tsupConfig : [tsupConfig];
  const cliConfig = configs.find((c) => typeof c === 'object' && c.entry !== undefined && 'cli' in (c.entry as object));
  if (cliConfig === undefined || typeof cliConfig !== 'object') throw new Error('tsup.config.ts has no `cli` entry');
  await build({ ...cliConfig, outDir, config: false, silent: true, clean: true, sourcemap: false });
  return {
    path: join(outDir, 'cli.js'),
    dispose: () => rm(outDir, { recursive: true, force: true }),
  };
}
