import type { TestProject } from 'vitest/node';
import { buildCli } from './cli-build.js';
import dockerdSetup from './global-setup.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The `docker-socket-filter` bin built from the current sources, for the reliability suites. */
    guardCli: string;
  }
}

/**
 * The reliability project's global setup: the same private dockerd as the integration project
 * (`inject('dockerSocket')`), and the CLI built once (`inject('guardCli')`), because every file
 * runs the guard as a child process to count its file descriptors and heap.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cli = await buildCli('reliability');
  let teardownDockerd: (() => Promise<void>) | undefined;
  try {
    teardownDockerd = await dockerdSetup(project);
  } catch (error) {
    await cli.dispose();
    throw error;
  }
  project.provide('guardCli', cli.path);
  return async () => {
    await teardownDockerd?.();
    await cli.dispose();
  };
}
