// The results of a run (bench/results.json), their tables, and the targets of issue 17: each row of
// ours against the best peer of the same run.
import { readFile, writeFile } from 'node:fs/promises';
import type { LoadResult } from './load.js';
import type { Memory } from './processes.js';
import type { ProfileSummary } from './profile.js';

/** Our two servers, the peers, and dockerd itself, in the order of the tables. */
// `cli-2w`: the CLI with WORKERS=2, one worker per core of the benchmark machine.
export const OURS = ['cli', 'cli-2w', 'library'] as const;
export const PEERS = ['haproxy', 'nginx', 'http-proxy-3'] as const;
export const DIRECT = 'direct';
export const COLUMNS = [...OURS, ...PEERS, DIRECT] as const;

const TITLES: Record<string, string> = {
  cli: 'CLI',
  'cli-2w': 'CLI, 2 workers',
  library: 'library',
  haproxy: 'HAProxy',
  nginx: 'nginx',
  'http-proxy-3': 'http-proxy-3',
  direct: 'dockerd direct',
};

export interface SmallRun extends LoadResult {
  readonly request: string;
  readonly label: string;
  readonly target: string;
  readonly round: number;
  readonly proxyCpuUsPerRequest: number | null;
  readonly dockerdCpuUsPerRequest: number;
  /** CPU (in cores) the rest of the machine used during the run: a measure of the noise. */
  readonly otherCpuCores: number;
}

/** The median of the rounds of one request against one target (each field its own median). */
export interface SmallResult {
  readonly request: string;
  readonly label: string;
  readonly target: string;
  readonly rounds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly proxyCpuUsPerRequest: number | null;
  readonly dockerdCpuUsPerRequest: number;
  readonly otherCpuCores: number;
  /** Unexpected statuses and errors over all rounds (denials closed by HAProxy do not count). */
  readonly failures: number;
}

export interface StreamingResult {
  readonly transfer: 'get' | 'load';
  readonly target: string;
  readonly bytes: number;
  /** Median of the runs. */
  readonly mbPerSecond: number;
  readonly runs: readonly number[];
}

export interface MemoryResult {
  readonly target: string;
  /** A fresh process, a moment after it started listening, before any request. */
  readonly idle: Memory;
  /** The same process after every small-request and streaming run. */
  readonly afterLoad: Memory;
}

export interface ConcurrencyResult {
  readonly target: string;
  readonly streams: number;
  readonly open: number;
  /** Streams whose head came before any event was made. */
  readonly headsAtOnce: number;
  readonly aliveAtEnd: number;
  /** Streams that received the event made after the `/_ping` load. */
  readonly gotEvent: number;
  readonly idle: Memory;
  readonly held: Memory;
  readonly afterLoad: Memory;
  readonly pingWhileHeld: { rps: number; p99Ms: number; failed: number };
}

export interface ProfileResult extends ProfileSummary {
  readonly file: string;
  readonly request: string;
  readonly rpsWhileProfiled: number;
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
    nginx: string;
    wrk: string;
    httpProxy3: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd?: number[];
    /** CPU (cores) the rest of the machine used just before the run started. */
    otherCpuCoresAtStart?: number;
  };
  settings: {
    load: { connections: number; seconds: number };
    rounds: number;
    warmSeconds: number;
    bigImageMb: number;
    streamReps: number;
    eventStreams: number;
    heldLoadSeconds: number;
    /** How long a fresh server is left alone before its idle memory is read. */
    settleMs: number;
    containers: number;
    /** The client of the streaming transfers: curl when installed, else Node's http. */
    streamingClient: 'curl' | 'node';
  };
  /** Medians per request and target (what the tables show). */
  small: SmallResult[];
  /** Every round of every small-request measurement. */
  smallRuns: SmallRun[];
  streaming: StreamingResult[];
  memory: MemoryResult[];
  concurrency: ConcurrencyResult[];
  evaluate: { decisionsPerSecond: number; runs: number[]; corpus: number } | null;
  profiles: ProfileResult[];
  skipped: string[];
  durationSeconds: number;
  targets?: TargetCheck[];
}

/** One goal of issue 17 for one of our servers. */
export interface TargetCheck {
  readonly goal: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

function ratio(value: number | undefined, base: number | undefined): string {
  return value === undefined || base === undefined || base === 0 ? '—' : `${(value / base).toFixed(2)}x`;
}

function thousands(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** One measurement of the summary: a value per column, which way is better, how to print it. */
interface Row {
  readonly label: string;
  readonly values: Partial<Record<string, number>>;
  /** A second number printed beside the value (p99, or the share of direct). */
  readonly notes?: Partial<Record<string, string>>;
  readonly higherIsBetter: boolean;
  readonly format: (value: number) => string;
}

/** The best peer of a row: the highest (or lowest) value among the peers that produced one. */
export function bestPeer(values: Partial<Record<string, number>>, higherIsBetter: boolean): { name: string; value: number } | undefined {
  let best: { name: string; value: number } | undefined;
  for (const name of PEERS) {
    const value = values[name];
    if (value === undefined || !Number.isFinite(value)) continue;
    if (best === undefined || (higherIsBetter ? value > best.value : value < best.value)) best = { name, value };
  }
  return best;
}

function small(results: Results, request: string, target: string): SmallResult | undefined {
  return results.small.find((row) => row.request === request && row.target === target);
}

function streaming(results: Results, transfer: 'get' | 'load', target: string): StreamingResult | undefined {
  return results.streaming.find((row) => row.transfer === transfer && row.target === target);
}

/** The rows of the summary table, from a run. */
export function summaryRows(results: Results): Row[] {
  const rows: Row[] = [];
  const requests = [...new Map(results.small.map((row) => [row.request, row.label])).entries()];
  for (const [request, label] of requests) {
    const values: Record<string, number> = {};
    const notes: Record<string, string> = {};
    for (const target of COLUMNS) {
      const row = small(results, request, target);
      if (row === undefined) continue;
      values[target] = row.rps;
      notes[target] = `${fixed(row.p99Ms, 1)} ms`;
    }
    rows.push({ label: `${label}, req/s (p99)`, values, notes, higherIsBetter: true, format: thousands });
  }
  for (const transfer of ['get', 'load'] as const) {
    const direct = streaming(results, transfer, DIRECT);
    const values: Record<string, number> = {};
    const notes: Record<string, string> = {};
    for (const target of COLUMNS) {
      const row = streaming(results, transfer, target);
      if (row === undefined) continue;
      values[target] = row.mbPerSecond;
      if (target !== DIRECT) notes[target] = `${ratio(row.mbPerSecond, direct?.mbPerSecond)} of direct`;
    }
    const mb = ((results.streaming[0]?.bytes ?? 0) / 1e6).toFixed(0);
    const label = transfer === 'get' ? `\`GET /images/<id>/get\`, ${mb} MB, MB/s` : `\`POST /images/load\`, ${mb} MB, MB/s`;
    rows.push({ label, values, notes, higherIsBetter: true, format: (value) => value.toFixed(0) });
  }
  const mb = (value: number): string => value.toFixed(1);
  const memoryRow = (label: string, pick: (row: MemoryResult) => number): Row => ({
    label,
    values: Object.fromEntries(results.memory.map((row) => [row.target, pick(row)])),
    higherIsBetter: false,
    format: mb,
  });
  if (results.memory.length > 0) {
    rows.push(memoryRow('idle RSS, MB (all processes of the server)', (row) => row.idle.rssMb));
    rows.push(memoryRow('RSS after the loads above, MB', (row) => row.afterLoad.rssMb));
  }
  if (results.concurrency.length > 0) {
    rows.push({
      label: `RSS with ${results.settings.eventStreams.toLocaleString('en-US')} idle \`events\` streams, MB`,
      values: Object.fromEntries(results.concurrency.filter((row) => !row.target.startsWith('node-')).map((row) => [row.target, row.held.rssMb])),
      higherIsBetter: false,
      format: mb,
    });
  }
  return rows;
}

/**
 * The summary: one line per measurement, every server of the run, the best peer, and each of ours
 * against it. `columns` picks the servers (the README's shorter table leaves the library out).
 */
export function renderSummary(results: Results, columns: readonly string[] = COLUMNS, ours: readonly string[] = OURS): string {
  const lines = [
    `| measurement | ${columns.map((name) => TITLES[name] ?? name).join(' | ')} | best peer | ${ours.map((name) => `${TITLES[name] ?? name} vs best peer`).join(' | ')} |`,
    `| --- | ${columns.map(() => '---:').join(' | ')} | --- | ${ours.map(() => '---:').join(' | ')} |`,
  ];
  for (const row of summaryRows(results)) {
    const best = bestPeer(row.values, row.higherIsBetter);
    const cells = columns.map((name) => {
      const value = row.values[name];
      if (value === undefined) return '—';
      const text = `${row.format(value)}${row.notes?.[name] === undefined ? '' : ` (${row.notes[name]})`}`;
      return best !== undefined && name === best.name ? `**${text}**` : text;
    });
    const versus = ours.map((name) => ratio(row.values[name], best?.value));
    lines.push(`| ${row.label} | ${cells.join(' | ')} | ${best === undefined ? '—' : (TITLES[best.name] ?? best.name)} | ${versus.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Checks the targets of issue 17 against a run (null when a comparison point is missing). */
export function checkTargets(results: Results): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const requests = [...new Map(results.small.map((row) => [row.request, row.label])).entries()];
  for (const [request, label] of requests) {
    const peers = Object.fromEntries(PEERS.flatMap((name) => {
      const row = small(results, request, name);
      return row === undefined ? [] : [[name, row.rps]];
    }));
    const best = bestPeer(peers, true);
    const bestRow = best === undefined ? undefined : small(results, request, best.name);
    for (const target of OURS) {
      const ours = small(results, request, target);
      const known = ours !== undefined && bestRow !== undefined && best !== undefined;
      checks.push({
        goal: `${label}: req/s >= 1.0x the best peer`,
        target,
        measured: known ? `${ratio(ours.rps, bestRow.rps)} (${thousands(ours.rps)} vs ${best.name} ${thousands(bestRow.rps)})` : '—',
        met: known ? ours.rps >= bestRow.rps : null,
      });
      checks.push({
        goal: `${label}: p99 <= the best peer's`,
        target,
        measured: known ? `${fixed(ours.p99Ms, 2)} ms vs ${fixed(bestRow.p99Ms, 2)} ms` : '—',
        met: known ? ours.p99Ms <= bestRow.p99Ms : null,
      });
    }
  }
  for (const transfer of ['get', 'load'] as const) {
    const direct = streaming(results, transfer, DIRECT);
    for (const target of OURS) {
      const ours = streaming(results, transfer, target);
      const known = ours !== undefined && direct !== undefined;
      checks.push({
        goal: `${transfer === 'get' ? 'GET /images/<id>/get' : 'POST /images/load'}: MB/s >= 0.95x direct`,
        target,
        measured: known ? `${ratio(ours.mbPerSecond, direct.mbPerSecond)} (${fixed(ours.mbPerSecond, 0)} vs ${fixed(direct.mbPerSecond, 0)} MB/s)` : '—',
        met: known ? ours.mbPerSecond >= 0.95 * direct.mbPerSecond : null,
      });
    }
  }
  for (const target of OURS) {
    const memory = results.memory.find((row) => row.target === target);
    checks.push({
      goal: 'idle RSS <= 45 MB',
      target,
      measured: memory === undefined ? '—' : `${fixed(memory.idle.rssMb, 1)} MB`,
      met: memory === undefined ? null : memory.idle.rssMb <= 45,
    });
    const held = results.concurrency.find((row) => row.target === target);
    checks.push({
      goal: `RSS with ${results.settings.eventStreams.toLocaleString('en-US')} idle events streams <= 80 MB`,
      target,
      measured: held === undefined ? '—' : `${fixed(held.held.rssMb, 1)} MB`,
      met: held === undefined ? null : held.held.rssMb <= 80 && held.aliveAtEnd === held.streams,
    });
  }
  return checks;
}

function renderProfile(profile: ProfileResult): string[] {
  return [
    `##### Profile of the CLI under \`${profile.request}\` (\`node --cpu-prof\`, wrk, ${thousands(profile.rpsWhileProfiled)} req/s under the profiler)`,
    '',
    '| component | self % | total % |',
    '| --- | ---: | ---: |',
    ...profile.components.slice(0, 12).map((row) => `| ${row.name} | ${row.selfPct} | ${row.totalPct} |`),
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
    '',
  ];
}

/** The Markdown report of a run: machine and method, the summary, the details, the targets. */
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
      `${machine.dockerd}; ${machine.haproxy.replace(/ - https?:\S+/, '')}; ${machine.nginx}; ${machine.wrk.replace(/ \[.*$/, '')}; ` +
      `http-proxy-3 ${machine.httpProxy3}; load average ${machine.loadAverageAtStart.join(' ')} at start, ${(machine.loadAverageAtEnd ?? []).join(' ')} at end` +
      (machine.otherCpuCoresAtStart === undefined ? '.' : `; other processes used ${machine.otherCpuCoresAtStart} cores just before the start.`),
    '',
    `Every server runs in its own process (nginx: a master and its workers, counted together), started by the harness, ` +
      `and all enforce the same policy (the Tecnativa defaults plus \`CONTAINERS=1 IMAGES=1 POST=1\`). Small requests: ` +
      `\`wrk -t1 -c${settings.load.connections}\`, ${settings.load.seconds} s` +
      (settings.warmSeconds > 0 ? ` after a ${settings.warmSeconds} s warm-up` : '') +
      `, ${settings.rounds === 1 ? 'one round' : `median of ${settings.rounds} rounds, the servers alternating within each round`}; ` +
      `streaming: ${settings.streamingClient === 'curl' ? 'curl' : "Node's http client"}, median of ${settings.streamReps}; ` +
      '**dockerd direct** is wrk or curl on dockerd\'s own TCP listener. **Bold**: the best peer of the row. "vs best peer" ' +
      'is ours divided by the best peer: above 1 is better for req/s and MB/s, worse for RSS.',
    '',
  );
  if (results.skipped.length > 0) push(`Skipped: ${results.skipped.join('; ')}.`, '');

  push('#### Summary', '', renderSummary(results), '');

  push(
    '#### Small requests, per server (medians; every round is in bench/results.json)',
    '',
    '| request | server | req/s | p50 ms | p99 ms | req/s of each round | server CPU µs/req | dockerd CPU µs/req | other CPU (cores) |',
    '| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
  );
  for (const row of results.small) {
    const rounds = results.smallRuns.filter((run) => run.request === row.request && run.target === row.target).map((run) => thousands(run.rps));
    const flagged = row.failures > 0 ? ` (${row.failures} failed)` : '';
    push(
      `| ${row.label} | ${row.target.startsWith('node-') ? `${row.target} (reference)` : (TITLES[row.target] ?? row.target)} | ${thousands(row.rps)}${flagged} | ` +
        `${fixed(row.p50Ms, 2)} | ${fixed(row.p99Ms, 2)} | ${rounds.join(', ')} | ${row.proxyCpuUsPerRequest ?? '—'} | ${row.dockerdCpuUsPerRequest} | ${fixed(row.otherCpuCores, 2)} |`,
    );
  }
  push('');

  const streamTargets = COLUMNS.filter((name) => results.streaming.some((row) => row.target === name));
  push(
    `#### Streaming, MB/s (median of ${settings.streamReps}; each run in brackets)`,
    '',
    `| transfer | ${streamTargets.map((name) => TITLES[name] ?? name).join(' | ')} |`,
    `| --- | ${streamTargets.map(() => '---:').join(' | ')} |`,
  );
  for (const transfer of ['get', 'load'] as const) {
    const cells = streamTargets.map((name) => {
      const row = streaming(results, transfer, name);
      return row === undefined ? '—' : `${fixed(row.mbPerSecond, 0)} [${row.runs.map((run) => run.toFixed(0)).join(', ')}]`;
    });
    push(`| ${transfer === 'get' ? 'GET /images/<id>/get' : 'POST /images/load'} | ${cells.join(' | ')} |`);
  }
  push('');

  push(
    '#### Memory of the servers measured above (MB; RSS, PSS, processes)',
    '',
    '| server | idle RSS | idle PSS | RSS after the loads | PSS after the loads | peak RSS | processes |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const row of results.memory) {
    push(
      `| ${TITLES[row.target] ?? row.target} | ${fixed(row.idle.rssMb, 1)} | ${fixed(row.idle.pssMb, 1)} | ${fixed(row.afterLoad.rssMb, 1)} | ` +
        `${fixed(row.afterLoad.pssMb, 1)} | ${fixed(row.afterLoad.peakMb, 1)} | ${row.afterLoad.processes} |`,
    );
  }
  push('');

  push(
    `#### ${settings.eventStreams.toLocaleString('en-US')} idle \`GET /events\` streams (a fresh process each)`,
    '',
    '| server | streams open | heads within 1 s, before any event | got the event after the load | RSS idle | RSS with streams | PSS with streams | RSS after the `/_ping` load | `/_ping` req/s while held (p99) | failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const row of results.concurrency) {
    const reference = row.target.startsWith('node-');
    push(
      `| ${reference ? `${row.target} (reference)` : (TITLES[row.target] ?? row.target)} | ${row.open} | ${row.headsAtOnce} | ${reference ? '—' : row.gotEvent} | ` +
        `${fixed(row.idle.rssMb, 1)} | ${fixed(row.held.rssMb, 1)} | ${fixed(row.held.pssMb, 1)} | ${fixed(row.afterLoad.rssMb, 1)} | ` +
        `${thousands(row.pingWhileHeld.rps)} (${fixed(row.pingWhileHeld.p99Ms, 1)} ms) | ${row.pingWhileHeld.failed} |`,
    );
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
  push('#### Targets of issue 17', '', '| goal | server | measured | met |', '| --- | --- | --- | --- |');
  for (const check of checks) {
    push(`| ${check.goal} | ${check.target} | ${check.measured} | ${check.met === null ? '—' : check.met ? 'yes' : '**no**'} |`);
  }
  push('');

  if (results.profiles.length > 0) {
    push('#### Profiles', '');
    for (const profile of results.profiles) push(...renderProfile(profile));
  }
  return lines.join('\n').trimEnd();
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
