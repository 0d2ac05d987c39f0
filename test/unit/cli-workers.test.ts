import { describe, expect, test } from 'vitest';
import { workerCount } from '../../src/cli/workers/count.js';
import { canReusePort, shareOf } from '../../src/cli/workers/plan.js';

describe('canReusePort', () => {
  test.each([
    ['v24.22.3', 'linux', true],
    ['v23.1.0', 'linux', true],
    ['v23.0.0', 'linux', false],
    ['v22.12.0', 'linux', true],
    ['v22.11.0', 'linux', false],
    ['v22.23.5', 'freebsd', true],
    ['v24.22.3', 'darwin', false],
    ['v24.22.3', 'win32', false],
  ] as const)('%s on %s: %s', (version, platform, expected) => {
    expect(canReusePort(version, platform)).toBe(expected);
  });
});

describe('shareOf', () => {
  test.each([
    [512, 2, 256],
    [513, 2, 256],
    [4096, 3, 1365],
    [2, 2, 1],
    [0, 4, 0],
  ])('%d shared by %d workers: %d each, never more than the whole together', (total, workers, share) => {
    expect(shareOf(total, workers, 'MAX_CONNECTIONS', '--max-connections')).toBe(share);
    expect(share * workers).toBeLessThanOrEqual(total);
  });

  test('a limit smaller than the workers is refused with the line to print', () => {
    expect(shareOf(3, 4, 'MAX_UPSTREAM_CONNECTIONS', '--max-upstream-connections')).toBe(
      '--max-upstream-connections/MAX_UPSTREAM_CONNECTIONS is 3, less than one connection for each of the 4 workers: raise it or lower --workers/WORKERS',
    );
  });

  const MiB = 1024 * 1024;
  const OneMiB = { amount: MiB, words: '1MiB' };
  test.each([
    [16 * MiB, 1, 16 * MiB],
    [16 * MiB, 4, 4 * MiB],
    [16 * MiB, 3, Math.floor((16 * MiB) / 3)],
    [16 * MiB, 16, MiB],
  ])('the budget of held bytes: %d shared by %d workers, %d each', (total, workers, share) => {
    expect(shareOf(total, workers, 'MAX_HELD_BYTES', '--max-held-bytes', OneMiB)).toBe(share);
    expect(share * workers).toBeLessThanOrEqual(total);
  });

  test('a budget that leaves a worker less than 1 MiB (the largest checked body) is refused', () => {
    expect(shareOf(16 * MiB, 17, 'MAX_HELD_BYTES', '--max-held-bytes', OneMiB)).toBe(
      '--max-held-bytes/MAX_HELD_BYTES is 16777216, less than 1MiB for each of the 17 workers: raise it or lower --workers/WORKERS',
    );
  });
});

describe('workerCount', () => {
  test('a number is that number', async () => {
    expect(await workerCount(3)).toBe(3);
  });

  test('auto is at least one and at most the cores this process may use', async () => {
    const { availableParallelism } = await import('node:os');
    const count = await workerCount('auto');
    expect(count).toBeGreaterThanOrEqual(1);
    expect(count).toBeLessThanOrEqual(availableParallelism());
  });
});
