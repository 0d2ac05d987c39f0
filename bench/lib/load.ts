// The load generator, driven the same way for every target: `wrk -t1` (C, TCP), the issue's
// generator. Every run is bounded by its duration.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const WRK_SCRIPT = fileURLToPath(new URL('../wrk-report.lua', import.meta.url));

/** One load run: throughput, latency percentiles (ms) and what went wrong. */
export interface LoadResult {
  readonly generator: 'wrk';
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses whose status was not the expected one (wrk: any non-2xx/3xx). */
  readonly unexpectedStatus: number;
  /** Connect and write errors, and timeouts. */
  readonly errors: number;
  /**
   * wrk's read errors: a connection that ended before wrk saw a complete response, or that ended a
   * close-delimited one (HAProxy's HTTP/1.0 error pages have no Content-Length: each denial is both
   * counted and a read error).
   */
  readonly readErrors: number;
}

export interface LoadSettings {
  readonly connections: number;
  readonly seconds: number;
}

/**
 * `wrk -t1 -c<connections> -d<seconds>s` against `http://127.0.0.1:<port><path>`, reported through
 * bench/wrk-report.lua. wrk counts any status >= 400 as a status error, so for denials
 * `unexpectedStatus` counts the *other* answers: `requests - statusErrors`.
 */
export async function runWrk(port: number, path: string, settings: LoadSettings, expectStatus: number): Promise<LoadResult> {
  const { stdout } = await run(
    'wrk',
    ['-t1', `-c${settings.connections}`, `-d${settings.seconds}s`, '--timeout', '5s', '-s', WRK_SCRIPT, `http://127.0.0.1:${port}${path}`],
    { timeout: (settings.seconds + 30) * 1000, maxBuffer: 1 << 20 },
  );
  const line = stdout.split('\n').find((text) => text.startsWith('WRK_JSON '));
  if (line === undefined) throw new Error(`wrk printed no report:\n${stdout}`);
  const report = JSON.parse(line.slice('WRK_JSON '.length)) as {
    requests: number;
    durationUs: number;
    connectErrors: number;
    readErrors: number;
    writeErrors: number;
    statusErrors: number;
    timeouts: number;
    p50Us: number;
    p99Us: number;
  };
  const seconds = report.durationUs / 1e6;
  const statusErrors = expectStatus >= 400 ? report.requests - report.statusErrors : report.statusErrors;
  return {
    generator: 'wrk',
    requests: report.requests,
    seconds,
    rps: report.requests / seconds,
    p50Ms: report.p50Us / 1000,
    p99Ms: report.p99Us / 1000,
    unexpectedStatus: statusErrors,
    errors: report.connectErrors + report.writeErrors + report.timeouts,
    readErrors: report.readErrors,
  };
}
