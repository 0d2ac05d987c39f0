import type { TestProject } from 'vitest/node';
import { startDockerd } from './dockerd.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The unix socket of the private dockerd shared by every integration test file. */
    dockerSocket: string;
    /** Its process id, to read its descriptors from `/proc`. */
    dockerdPid: number;
  }
}

/**
 * Starts one private dockerd for the whole run and removes it afterwards. Throws when dockerd cannot
 * start: the integration suite fails, it is never skipped.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Offline: a pull a client triggers (docker-compose, docker-py) fails at once instead of leaving the machine.
  const dockerd = await startDockerd({ offline: true });
  project.provide('dockerSocket', dockerd.socketPath);
  project.provide('dockerdPid', dockerd.pid as number);
  return () => dockerd.stop();
}
