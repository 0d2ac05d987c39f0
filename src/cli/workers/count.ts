import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

/**
 * The CPU quota of the process's cgroup, in cores (`docker run --cpus 1.5` gives 1.5), or
 * `undefined` when there is none: cgroup v2's `cpu.max`, else v1's `cpu.cfs_quota_us`.
 */
async function cgroupCores(): Promise<number | undefined> {
  const read = (path: string): Promise<string | undefined> => readFile(path, 'utf8').then((text) => text.trim(), () => undefined);
  const v2 = await read('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    return quota === 'max' || quota === undefined ? undefined : Number(quota) / Number(period);
  }
  const quota = Number(await read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(await read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/**
 * How many processes `--workers` means: the number given, or for `auto` one per core the process
 * may use (its CPU affinity, and its cgroup's CPU quota rounded down, at least one).
 *
 * @example
 * ```ts
 * await workerCount('auto'); // 2 on a two-core host, 1 under `docker run --cpus 1.5`
 * ```
 */
export async function workerCount(setting: number | 'auto'): Promise<number> {
  if (setting !== 'auto') return setting;
  const cores = availableParallelism();
  const quota = await cgroupCores();
  const allowed = quota === undefined || !Number.isFinite(quota) ? cores : Math.min(cores, Math.floor(quota));
  return Math.max(1, allowed);
}
