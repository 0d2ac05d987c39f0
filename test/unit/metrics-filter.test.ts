// The metrics of the filter's bounds follow its own counts at each scrape (src/metrics/index.ts).
import { describe, expect, test } from 'vitest';
import { createMetricsRecorder } from '../../src/metrics/index.js';
import type { HeldBytesStats } from '../../src/proxy/held.js';
import type { UpstreamPoolStats } from '../../src/proxy/pool.js';

describe('watchFilter', () => {
  test.each<[string, UpstreamPoolStats, HeldBytesStats[], Record<string, number>]>([
    ['nothing yet', { open: 0, idle: 0, detached: 0, waiting: 0, max: 512 }, [{ held: 0, max: 1 << 24, refused: 0 }], { held: 0, refused: 0 }],
    ['busy', { open: 7, idle: 2, detached: 3, waiting: 4, max: 512 }, [{ held: 4096, max: 1 << 24, refused: 0 }], { held: 4096, refused: 0 }],
    // The counter follows the filter's count across scrapes, never counting one refusal twice.
    ['refusals over scrapes', { open: 1, idle: 1, detached: 0, waiting: 0, max: 512 }, [{ held: 0, max: 1 << 24, refused: 2 }, { held: 0, max: 1 << 24, refused: 2 }, { held: 10, max: 1 << 24, refused: 5 }], { held: 10, refused: 5 }],
  ])('%s', async (_name, upstream, held, expected) => {
    const recorder = await createMetricsRecorder();
    let scrape = 0;
    recorder.watchFilter({ upstreamStats: () => upstream, heldStats: () => held[Math.min(scrape, held.length - 1)] as HeldBytesStats });
    let metrics = await recorder.register.getMetricsAsJSON();
    for (scrape = 1; scrape < held.length; scrape++) metrics = await recorder.register.getMetricsAsJSON();
    const value = (name: string, labels: Record<string, string> = {}) =>
      metrics.find((metric) => metric.name === name)?.values.find((sample) => Object.entries(labels).every(([k, v]) => sample.labels[k] === v))?.value;
    expect(value('docker_socket_filter_upstream_connections', { state: 'open' })).toBe(upstream.open);
    expect(value('docker_socket_filter_upstream_connections', { state: 'idle' })).toBe(upstream.idle);
    expect(value('docker_socket_filter_upstream_connections', { state: 'hijacked' })).toBe(upstream.detached);
    expect(value('docker_socket_filter_upstream_waiting')).toBe(upstream.waiting);
    expect(value('docker_socket_filter_held_bytes')).toBe(expected.held);
    expect(value('docker_socket_filter_held_bytes_max')).toBe(1 << 24);
    expect(value('docker_socket_filter_held_refused_total')).toBe(expected.refused);
  });

  test('without a filter watched, every bound reads 0', async () => {
    const recorder = await createMetricsRecorder();
    const metrics = await recorder.register.getMetricsAsJSON();
    expect(metrics.find((metric) => metric.name === 'docker_socket_filter_held_bytes_max')?.values[0]?.value).toBe(0);
  });
});
