// The results of a run (bench/results.json), their table, and the targets of issue 6.
import { readFile, writeFile } from 'node:fs/promises';
import type { LoadResult } from './load.js';
import type { ProfileSummary } from './profile.js';

export interface SmallResult extends LoadResult {
  readonly request: string;
  readonly label: string;
  readonly target: string;
  readonly proxyCpuUsPerRequest: number | null;
  readonly dockerdCpuUsPerRequest: number;
  /** CPU (in cores) the rest of the machine used during the run: a measure of the noise. */
  readonly otherCpuCores: number;
  /** Which round of the run (1-based). */
  readonly round: number;
}

export interface StreamingResult {
  readonly transfer: 'get' | 'load';
  readonly target: string;
  readonly bytes: number;
  /** Median of the runs. */
  readonly mbPerSecond: number;
  readonly runs: readonly number[];
}

export interface ConcurrencyResult {
  readonly target: string;
  readonly streams: number;
  readonly open: number;
  readonly aliveAtEnd: number;
  readonly gotEvent: number;
  readonly rssIdleMb: number;
  readonly rssHeldMb: number;
  readonly rssAfterLoadMb: number;
  /** `process.memoryUsage()` of the library server with the streams open (MB), when it answered. */
  readonly heapWithStreamsMb: Record<string, number> | null;
  readonly pingWhileHeld: { generator: string; rps: number; p99Ms: number; failed: number };
}

export interface Results {
  kind: 'full' | 'smoke';
  date: string;
  command: string;
  machine: {
    nproc: number;
    cpu: string;
    memoryGiB: number;
    kernel: string;
    node: string;
    dockerd: string;
    haproxy: string;
    wrk: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd?: number[];
    /** CPU (cores) the rest of the machine used just before the run started. */
    otherCpuCoresAtStart?: number;
  };
  settings: {
    load: { connections: number; seconds: number };
    rounds: number;
    /** The client of the streaming transfers: curl when installed, else Node's http. */
    streamingClient: 'curl' | 'node';
    warmSeconds: number;
    bigImageMb: number;
    streamReps: number;
    eventStreams: number;
    heldLoadSeconds: number;
    containers: number;
  };
  /** The best round of each small-request measurement (what the table shows). */
  small: SmallResult[];
  /** Every round of every small-request measurement. */
  smallRuns: SmallResult[];
  streaming: StreamingResult[];
  concurrency: ConcurrencyResult[];
  evaluate: { decisionsPerSecond: number; runs: number[]; corpus: number } | null;
  /** VmHWM of the processes that served the small-request and streaming runs. */
  peakRssMb: Record<string, number>;
  profile: ({ file: string; rpsWhileProfiled: number } & ProfileSummary) | null;
  skipped: string[];
  durationSeconds: number;
  targets?: TargetCheck[];
}

/** One goal of issue 6, for one of our two targets. */
export interface TargetCheck {
  readonly goal: string;
  readonly target: 'library' | 'cli' | 'evaluate';
  readonly measured: string;
  readonly met: boolean | null;
}

const OURS = ['library', 'cli'] as const;

function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

function ratio(value: number | undefined, base: number | undefined): string {
  return value === undefined || base === undefined || base === 0 ? '—' : `${(value / base).toFixed(2)}x`;
}

function thousands(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Checks the targets of issue 6 against a run (null when a comparison point is missing). */
export function checkTargets(results: Results): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const small = (request: string, target: string, generator: string): SmallResult | undefined =>
    results.small.find((row) => row.request === request && row.target === target && row.generator === generator);
  for (const request of ['ping', 'containers']) {
    for (const target of OURS) {
      const ours = small(request, target, 'wrk');
      const haproxy = small(request, 'haproxy', 'wrk');
      const known = ours !== undefined && haproxy !== undefined;
      checks.push({
        goal: `${request === 'ping' ? 'GET /_ping' : 'GET /containers/json'}: req/s >= 1.0x HAProxy (wrk)`,
        target,
        measured: known ? `${ratio(ours.rps, haproxy.rps)} (${thousands(ours.rps)} vs ${thousands(haproxy.rps)})` : '—',
        met: known ? ours.rps >= haproxy.rps : null,
      });
      checks.push({
        goal: `${request === 'ping' ? 'GET /_ping' : 'GET /containers/json'}: p99 <= HAProxy's (wrk)`,
        target,
        measured: known ? `${fixed(ours.p99Ms, 2)} ms vs ${fixed(haproxy.p99Ms, 2)} ms` : '—',
        met: known ? ours.p99Ms <= haproxy.p99Ms : null,
      });
    }
  }
  for (const target of OURS) {
    const ours = small('denied', target, 'wrk');
    const haproxy = small('denied', 'haproxy', 'wrk');
    const known = ours !== undefined && haproxy !== undefined;
    checks.push({
      goal: 'denials: req/s >= 2x HAProxy (wrk)',
      target,
      measured: known ? `${ratio(ours.rps, haproxy.rps)} (${thousands(ours.rps)} vs ${thousands(haproxy.rps)})` : '—',
      met: known ? ours.rps >= 2 * haproxy.rps : null,
    });
  }
  for (const transfer of ['get', 'load'] as const) {
    for (const target of OURS) {
      const ours = results.streaming.find((row) => row.transfer === transfer && row.target === target);
      const direct = results.streaming.find((row) => row.transfer === transfer && row.target === 'direct');
      const known = ours !== undefined && direct !== undefined;
      checks.push({
        goal: `${transfer === 'get' ? 'GET /images/<id>/get' : 'POST /images/load'}: MB/s >= 0.9x direct`,
        target,
        measured: known ? `${ratio(ours.mbPerSecond, direct.mbPerSecond)} (${fixed(ours.mbPerSecond, 0)} vs ${fixed(direct.mbPerSecond, 0)} MB/s)` : '—',
        met: known ? ours.mbPerSecond >= 0.9 * direct.mbPerSecond : null,
      });
    }
  }
  for (const target of OURS) {
    const row = results.concurrency.find((entry) => entry.target === target);
    checks.push({
      goal: `RSS with ${results.settings.eventStreams} idle events streams < 80 MB`,
      target,
      measured: row === undefined ? '—' : `${fixed(row.rssHeldMb, 1)} MB (${fixed(row.rssAfterLoadMb, 1)} MB after the /_ping load)`,
      met: row === undefined ? null : row.rssHeldMb < 80 && row.aliveAtEnd === row.streams,
    });
  }
  checks.push({
    goal: 'evaluate() > 5 M decisions/s',
    target: 'evaluate',
    measured: results.evaluate === null ? '—' : `${fixed(results.evaluate.decisionsPerSecond / 1e6, 2)} M/s`,
    met: results.evaluate === null ? null : results.evaluate.decisionsPerSecond > 5e6,
  });
  return checks;
}

/** The Markdown report of a run: machine, settings, the four tables, the targets. */
export function renderMarkdown(results: Results): string {
  const { machine, settings } = results;
  const lines: string[] = [];
  const push = (...text: string[]): void => {
    lines.push(...text);
  };
  push(
    `Run of ${results.date.slice(0, 16).replace('T', ' ')} UTC (\`${results.command}\`, ${results.durationSeconds} s)` +
      (results.kind === 'smoke' ? ' — **smoke run: too short to compare, checks the harness only**' : ''),
    '',
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB, ${machine.kernel}; Node ${machine.node}; ` +
      `${machine.dockerd}; ${machine.haproxy.replace(/ - https?:\S+/, '')}; ${machine.wrk.replace(/ \[.*$/, '')}; ` +
      `load average ${machine.loadAverageAtStart.join(' ')} at start, ${(machine.loadAverageAtEnd ?? []).join(' ')} at end` +
      (machine.otherCpuCoresAtStart === undefined ? '.' : `; other processes used ${machine.otherCpuCoresAtStart} cores just before the start.`),
    '',
    `Each server runs in its own process; the targets are measured one after the other with the same settings: ` +
      `${settings.load.connections} connections, ${settings.load.seconds} s after a ${settings.warmSeconds} s warm-up` +
      (settings.rounds > 1 ? `, best of ${settings.rounds} rounds (targets interleaved within each round; every round is in bench/results.json). ` : '. ') +
      '"other CPU" is what the rest of the machine used meanwhile, in cores (of 2): above ~0.2 a row was disturbed. ' +
      '**wrk** is `wrk -t1` over TCP (the issue\'s generator); **autocannon** runs in the harness process and is the only one ' +
      'that reaches dockerd **direct**ly on its unix socket, so ratios to direct use autocannon numbers only. ' +
      '`library` is `createSocketFilter` in `http.createServer` (bench/servers/library.mjs), `cli` is `node dist/cli.js` ' +
      '(default log level), both run with `node --max-semi-space-size=2` as the image runs the CLI and the README recommends; ' +
      '`haproxy` is Debian\'s haproxy with bench/haproxy.cfg (the Tecnativa rules, `option http-server-close`, ' +
      'per-request log at info). All enforce `CONTAINERS=1 IMAGES=1 POST=1`. `node-hello` (Node\'s http server answering ' +
      'by itself), `node-proxy` (http.request + keep-alive agent + pipe, no checks) and `node-defaults-library` (the library ' +
      'server with Node\'s default young generation) are reference points, not products.',
    '',
  );
  if (results.skipped.length > 0) push(`Skipped: ${results.skipped.join(', ')}.`, '');

  push(
    '#### Small requests',
    '',
    '| request | target | generator | req/s | p50 ms | p99 ms | vs HAProxy (same generator) | vs direct (autocannon) | proxy CPU µs/req | dockerd CPU µs/req | other CPU (cores) |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const row of results.small) {
    const haproxy = results.small.find((other) => other.request === row.request && other.target === 'haproxy' && other.generator === row.generator);
    const direct = results.small.find((other) => other.request === row.request && other.target === 'direct' && other.generator === 'autocannon');
    const readErrors = row.request === 'denied' ? 0 : row.readErrors;
    const flagged = row.unexpectedStatus + row.errors + readErrors > 0 ? ` (${row.unexpectedStatus} bad status, ${row.errors + readErrors} errors)` : '';
    push(
      `| ${row.label} | ${row.target.startsWith('node-') ? `${row.target} (reference)` : row.target} | ${row.generator} | ${thousands(row.rps)}${flagged} | ${fixed(row.p50Ms, 2)} | ${fixed(row.p99Ms, 2)} | ` +
        `${row.target === 'haproxy' ? '1.00x' : ratio(row.rps, haproxy?.rps)} | ` +
        `${row.generator === 'autocannon' ? ratio(row.rps, direct?.rps) : '—'} | ${row.proxyCpuUsPerRequest ?? '—'} | ${row.dockerdCpuUsPerRequest} | ` +
        `${fixed(row.otherCpuCores, 2)} |`,
    );
  }
  push('');

  const streamTargets = [...new Set(results.streaming.map((row) => row.target))];
  const bytes = results.streaming[0]?.bytes ?? 0;
  push(
    `#### Streaming (${(bytes / 1e6).toFixed(0)} MB image, median of ${settings.streamReps}, ` +
      `${settings.streamingClient === 'curl' ? 'curl' : "Node's http client in the harness"})`,
    '',
    `| transfer | ${streamTargets.map((target) => `${target} MB/s`).join(' | ')} |`,
    `| --- | ${streamTargets.map(() => '---:').join(' | ')} |`,
  );
  for (const transfer of ['get', 'load'] as const) {
    const direct = results.streaming.find((row) => row.transfer === transfer && row.target === 'direct');
    const cells = streamTargets.map((target) => {
      const row = results.streaming.find((entry) => entry.transfer === transfer && entry.target === target);
      if (row === undefined) return '—';
      return target === 'direct' ? fixed(row.mbPerSecond, 0) : `${fixed(row.mbPerSecond, 0)} (${ratio(row.mbPerSecond, direct?.mbPerSecond)})`;
    });
    push(`| ${transfer === 'get' ? 'GET /images/<id>/get' : 'POST /images/load'} | ${cells.join(' | ')} |`);
  }
  push('');

  push(
    `#### ${settings.eventStreams.toLocaleString('en-US')} idle \`GET /events\` streams (fresh process each)`,
    '',
    '| target | streams open | got an event | RSS idle MB | RSS with streams MB | RSS after /_ping load MB | GET /_ping req/s while held | failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const row of results.concurrency) {
    // node-hold answers the streams itself: there is no dockerd behind it to send an event.
    const reference = row.target.startsWith('node-');
    push(
      `| ${reference ? `${row.target} (reference: Node's http server holding the responses itself)` : row.target} | ${row.open} | ${reference ? '—' : row.gotEvent} | ${fixed(row.rssIdleMb, 1)} | ${fixed(row.rssHeldMb, 1)} | ${fixed(row.rssAfterLoadMb, 1)} | ` +
        `${thousands(row.pingWhileHeld.rps)} (${row.pingWhileHeld.generator}, ${settings.heldLoadSeconds} s) | ${row.pingWhileHeld.failed} |`,
    );
  }
  for (const row of results.concurrency) {
    if (row.heapWithStreamsMb !== null) {
      const heap = row.heapWithStreamsMb;
      push(
        '',
        `${row.target} with the streams open, \`process.memoryUsage()\`: heapUsed ${heap.heapUsed} MB, heapTotal ${heap.heapTotal} MB, ` +
          `external ${heap.external} MB, rss ${heap.rss} MB.`,
      );
    }
  }
  const peaks = Object.entries(results.peakRssMb);
  if (peaks.length > 0) {
    push('', `Peak RSS of the processes that served the runs above: ${peaks.map(([name, mb]) => `${name} ${fixed(mb, 1)} MB`).join(', ')}.`);
  }
  push('');

  if (results.evaluate !== null) {
    push(
      '#### `evaluate()`',
      '',
      `${fixed(results.evaluate.decisionsPerSecond / 1e6, 2)} M decisions/s (bench/evaluate.mjs: mixed corpus of ${results.evaluate.corpus} targets, ` +
        `${results.evaluate.runs.length === 1 ? 'one short run' : `median of ${results.evaluate.runs.length} runs of 2 s`}).`,
      '',
    );
  }

  const checks = results.targets ?? checkTargets(results);
  push('#### Targets of issue 6', '', '| goal | target | measured | met |', '| --- | --- | --- | --- |');
  for (const check of checks) {
    push(`| ${check.goal} | ${check.target} | ${check.measured} | ${check.met === null ? '—' : check.met ? 'yes' : '**no**'} |`);
  }

  if (results.profile !== null) {
    const profile = results.profile;
    push(
      '',
      `#### Profile of the library server under \`GET /_ping\` (\`node --cpu-prof\`, wrk, ${thousands(profile.rpsWhileProfiled)} req/s under the profiler)`,
      '',
      '| component | self % | total % |',
      '| --- | ---: | ---: |',
      ...profile.components.slice(0, 14).map((row) => `| ${row.name} | ${row.selfPct} | ${row.totalPct} |`),
      '',
      '| function (self time) | where | self % | total % |',
      '| --- | --- | ---: | ---: |',
      ...profile.functions.slice(0, 15).map((row) => `| ${row.name} | ${row.where} | ${row.selfPct} | ${row.totalPct} |`),
      '',
      '| our code and packages (total time) | where | self % | total % |',
      '| --- | --- | ---: | ---: |',
      ...profile.inclusive.slice(0, 10).map((row) => `| ${row.name} | ${row.where} | ${row.selfPct} | ${row.totalPct} |`),
      '',
      `Percentages are of the samples where the process was busy (${profile.busyPct}% of the profile's ${profile.durationMs} ms). ` +
        `Profile file: ${profile.file} (Chrome DevTools, speedscope).`,
    );
  }
  return lines.join('\n');
}

const START = '<!-- bench:results:start (written by bench/run.ts) -->';
const END = '<!-- bench:results:end -->';

/** Replaces the generated block of docs/bench.md (between the markers) with `markdown`. */
export async function updateDocs(file: string, markdown: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = `# Benchmarks\n\n${START}\n${END}\n`;
  }
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  const block = `${START}\n\n${markdown}\n\n${END}`;
  text = start === -1 || end === -1 ? `${text.trimEnd()}\n\n${block}\n` : `${text.slice(0, start)}${block}${text.slice(end + END.length)}`;
  await writeFile(file, text);
}
