/**
 * Sizes of the reliability suites. CI runs them scaled down; `DSF_RELIABILITY=full` runs the sizes
 * the issue asks for (see test/README.md for the command and the durations).
 */
export const FULL = process.env.DSF_RELIABILITY === 'full';

export const SIZE = Object.freeze(
  FULL
    ? { loadConnections: 2_000, loadSeconds: 30, eventStreams: 500, eventSeconds: 60, fuzzHeads: 50_000 }
    : { loadConnections: 500, loadSeconds: 8, eventStreams: 200, eventSeconds: 15, fuzzHeads: 10_000 },
);
