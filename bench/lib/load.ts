// The two load generators, driven the same way for every target: `wrk` (C, TCP only) and autocannon
// (Node, TCP or a unix socket, run in this process). Every run is bounded by its duration.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

const run = promisify(execFile);
const WRK_SCRIPT = fileURLToPath(new URL('../wrk-report.lua', import.meta.url));

/** Where a load generator sends its requests. */
export type Endpoint = { readonly kind: 'tcp'; readonly port: number } | { readonly kind: 'unix'; readonly socketPath: string };

/** One load run: throughput, latency percentiles (ms) and what went wrong. */
export interface LoadResult {
  readonly generator: 'wrk' | 'autocannon';
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
   * counted and a read error). Always 0 for autocannon, whose errors are in `errors`.
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

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/**
 * autocannon with `connections` connections for `seconds`, in this process. Latencies are recorded
 * from every response (not autocannon's integer-millisecond histogram), so denials get percentiles too.
 */
export function runAutocannon(
  endpoint: Endpoint,
  path: string,
  settings: LoadSettings,
  expectStatus: number,
): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let count = 0;
    let unexpected = 0;
    const url = endpoint.kind === 'tcp' ? `http://127.0.0.1:${endpoint.port}${path}` : `http://localhost${path}`;
    const started = process.hrtime.bigint();
    const instance = autocannon(
      {
        url,
        ...(endpoint.kind === 'unix' ? { socketPath: endpoint.socketPath } : {}),
        connections: settings.connections,
        duration: settings.seconds,
        timeout: 5,
      },
      (error, result) => {
        if (error !== null) {
          reject(error);
          return;
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const sorted = latencies.subarray(0, count).sort();
        resolve({
          generator: 'autocannon',
          requests: count,
          seconds,
          rps: count / seconds,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          unexpectedStatus: unexpected,
          errors: result.errors + result.timeouts,
          readErrors: 0,
        });
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
      if (statusCode !== expectStatus) unexpected++;
    });
  });
}
