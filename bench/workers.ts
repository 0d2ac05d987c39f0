// How two worker processes should share the listen addresses (issue 17, point 2): SO_REUSEPORT
// (a TCP socket per worker, the kernel spreading connections) against node:cluster's two ways
// (the primary accepting and handing each connection over in turn; one shared socket every worker
// accepts from), with one process for scale. The filter and its policy are the same in each
// (bench/servers/sharing.mjs); TCP is loaded by wrk, a unix socket by bench/lib/unix-load.mjs.
//
//   npm run bench:workers          # tsup && tsx bench/workers.ts   (root; about 3 minutes)
//
// Prints a markdown table of medians over 3 alternating rounds and writes bench/workers-results.json.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDockerd } from '../test/helpers/dockerd.js';
import { runWrk } from './lib/load.js';
import { cpuSecondsOf, freePort, NODE_FLAGS } from './lib/processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const execFileAsync = promisify(execFile);
const MODES = ['single', 'reuseport', 'cluster-rr', 'cluster-none'] as const;
const REQUESTS = [
  { id: 'ping', path: '/_ping', status: 200 },
  { id: 'denied', path: '/v1.41/info', status: 403 },
] as const;
const ROUNDS = 3;
const LOAD = { connections: 32, seconds: 3 };

interface Row {
  readonly mode: (typeof MODES)[number];
  readonly transport: 'tcp' | 'unix';
  readonly request: string;
  readonly round: number;
  readonly rps: number;
  readonly p99Ms: number;
  /** CPU of the server's processes (primary and workers) per request: what the sharing costs, steadier than req/s on a busy machine. */
  readonly cpuUsPerRequest: number;
}

async function start(mode: string, socketPath: string, port: number, unixPath: string): Promise<ChildProcess> {
  await rm(unixPath, { force: true });
  const child = spawn(process.execPath, [...NODE_FLAGS, join(ROOT, 'bench', 'servers', 'sharing.mjs'), mode, socketPath, String(port), unixPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  if (!chunk.toString().includes('"ready":true')) throw new Error(`${mode} did not start: ${chunk.toString()}`);
  return child;
}

async function unixLoad(unixPath: string, path: string): Promise<{ rps: number; p99Ms: number }> {
  const { stdout } = await execFileAsync(process.execPath, [
    join(ROOT, 'bench', 'lib', 'unix-load.mjs'),
    unixPath,
    path,
    String(LOAD.connections),
    String(LOAD.seconds),
  ]);
  const result = JSON.parse(stdout) as { rps: number; p99Ms: number; errors: number };
  if (result.errors > 0) throw new Error(`unix load had ${result.errors} errors`);
  return result;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark starts a private dockerd: run it as root');
  const work = await mkdtemp('/tmp/dsf-bench-workers-');
  const dockerd = await startDockerd({});
  const rows: Row[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of MODES) {
        const port = await freePort();
        const unixPath = join(work, `${mode}.sock`);
        const server = await start(mode, dockerd.socketPath, port, unixPath);
        try {
          await runWrk(port, '/_ping', { connections: LOAD.connections, seconds: 1 }, 200);
          const pid = server.pid as number;
          for (const request of REQUESTS) {
            let cpu = await cpuSecondsOf(pid);
            const tcp = await runWrk(port, request.path, LOAD, request.status);
            const tcpCpu = (await cpuSecondsOf(pid)) - cpu;
            rows.push({ mode, transport: 'tcp', request: request.id, round, rps: tcp.rps, p99Ms: tcp.p99Ms, cpuUsPerRequest: (tcpCpu * 1e6) / (tcp.rps * tcp.seconds) });
            cpu = await cpuSecondsOf(pid);
            const unix = await unixLoad(unixPath, request.path);
            const unixCpu = (await cpuSecondsOf(pid)) - cpu;
            rows.push({ mode, transport: 'unix', request: request.id, round, rps: unix.rps, p99Ms: unix.p99Ms, cpuUsPerRequest: (unixCpu * 1e6) / (unix.rps * LOAD.seconds) });
          }
        } finally {
          server.kill('SIGTERM');
          await once(server, 'exit');
        }
        process.stdout.write(`[round ${round}] ${mode} done\n`);
      }
    }
  } finally {
    await dockerd.stop();
    await rm(work, { recursive: true, force: true });
  }

  const lines = [
    `Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, \`npm run bench:workers\`, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, load average at the end ${os.loadavg()[0]?.toFixed(2)}; medians of ${ROUNDS} rounds, ${LOAD.connections} connections, ${LOAD.seconds} s each.`,
    '',
    'Each cell: req/s (p99 ms; CPU µs per request of the server\'s processes).',
    '',
    '| sharing | TCP `/_ping` | TCP denied | unix `/_ping` | unix denied |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const mode of MODES) {
    const cell = (transport: Row['transport'], request: string): string => {
      const runs = rows.filter((row) => row.mode === mode && row.transport === transport && row.request === request);
      return `${Math.round(median(runs.map((row) => row.rps))).toLocaleString('en-US')} (${median(runs.map((row) => row.p99Ms)).toFixed(1)}; ${Math.round(median(runs.map((row) => row.cpuUsPerRequest)))})`;
    };
    lines.push(`| ${mode} | ${cell('tcp', 'ping')} | ${cell('tcp', 'denied')} | ${cell('unix', 'ping')} | ${cell('unix', 'denied')} |`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
  await writeFile(join(ROOT, 'bench', 'workers-results.json'), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rows }, null, 2)}\n`);
}

await main();
