// The benchmark of issue 17: one run that starts a private dockerd, our filter (the CLI, and as a
// library in a server) and every peer that runs here: Debian's HAProxy with Tecnativa's rules
// (bench/haproxy.cfg), Debian's nginx as the tutorials configure it (bench/nginx.conf), and the
// naive http-proxy-3 filter a Node user writes by hand (bench/servers/naive-http-proxy-3.mjs);
// then measures each the same way, one server at a time, in alternating rounds. Prints the tables,
// writes bench/results.json and the tables in docs/bench.md.
//
//   npm run bench                 # tsup && tsx bench/run.ts   (root; 8-9 minutes)
//   npm run bench:smoke           # short runs: every server starts and every number is produced
//   tsx bench/run.ts --no-profile # skip the CPU profiles of the CLI
//   tsx bench/run.ts --smoke --allow-missing   # a smoke run on a machine without some peer
//
// Needs: root (dockerd), dockerd + docker CLI, /bin/busybox, `wrk`, `haproxy` and `nginx` (Debian
// packages wrk, haproxy, nginx-light: .ci/run installs them), a built dist/ (`npx tsup`).
// A missing tool fails the run, the smoke run included, unless `--allow-missing` (then the run
// names what it left out).
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildRootfsTar, dockerRequest, importImage, startDockerd, BUSYBOX_IMAGE, type Dockerd } from '../test/helpers/dockerd.js';
import { runWrk, type LoadResult, type LoadSettings } from './lib/load.js';
import {
  cpuSecondsOf,
  freePort,
  machineBusySeconds,
  memoryOf,
  NODE_FLAGS,
  selfAndChildrenSeconds,
  startCli,
  startHaproxy,
  startLibrary,
  startNaive,
  startNginx,
  startReference,
  type Target,
} from './lib/processes.js';
import { summariseProfile } from './lib/profile.js';
import {
  checkTargets,
  DIRECT,
  renderMarkdown,
  renderSummary,
  updateDocs,
  type ConcurrencyResult,
  type MemoryResult,
  type ProfileResult,
  type Results,
  type SmallResult,
  type SmallRun,
} from './lib/report.js';
import { curlTransfer, download, openEventStreams, upload, type Endpoint, type Transfer } from './lib/streams.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const argv = new Set(process.argv.slice(2));
const SMOKE = argv.has('--smoke');
const ALLOW_MISSING = argv.has('--allow-missing');
const PROFILE = !SMOKE && !argv.has('--no-profile');

// Small requests: `rounds` rounds, the servers alternating within each, and the median of the
// rounds reported (the issue's method). The best round would flatter whoever was luckiest with the
// rest of the machine; a median of 3 survives one disturbed round. Every round is in results.json.
const PLAN = SMOKE
  ? { load: { connections: 32, seconds: 1 }, rounds: 1, warmSeconds: 0, bigImageMb: 16, streamReps: 1, eventStreams: 100, heldLoadSeconds: 1, settleMs: 500 }
  : { load: { connections: 32, seconds: 3 }, rounds: 3, warmSeconds: 1, bigImageMb: 210, streamReps: 5, eventStreams: 1000, heldLoadSeconds: 3, settleMs: 2_000 };

/** How long a full run waits, at most, for the rest of the machine to go quiet before it starts. */
const QUIET_WAIT_MS = 60_000;
const QUIET_CORES = 0.25;

const CONTAINERS = 20;
const SMALL_REQUESTS = [
  { id: 'ping', label: '`GET /_ping`', path: '/_ping', status: 200 },
  { id: 'containers', label: `\`GET /containers/json\` (${CONTAINERS} containers)`, path: '/v1.41/containers/json?all=1', status: 200 },
  { id: 'denied', label: 'denied (`GET /v1.41/info`, `INFO=0`)', path: '/v1.41/info', status: 403 },
] as const;

/** The servers of the README's summary table (the library's numbers are in docs/bench.md). */
const README_COLUMNS = ['cli', 'cli-2w', 'haproxy', 'nginx', 'http-proxy-3', DIRECT] as const;

/** dockerd itself, reached on its own TCP listener by the same clients. */
interface Direct {
  readonly name: typeof DIRECT;
  readonly port: number;
  readonly pid: null;
}
type Server = Target | Direct;

function say(text: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

async function has(command: string): Promise<boolean> {
  try {
    await execFileAsync('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

async function version(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args);
    return `${stdout}${stderr}`.split('\n').find((line) => line.trim() !== '')?.trim() ?? '?';
  } catch (error) {
    // wrk -v exits 1 after printing its version.
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return `${stdout}${stderr}`.split('\n').find((line) => line.trim() !== '')?.trim() ?? 'not installed';
  }
}

async function machine(): Promise<Results['machine']> {
  const httpProxy3 = JSON.parse(await readFile(join(ROOT, 'node_modules', 'http-proxy-3', 'package.json'), 'utf8').catch(() => '{}')) as { version?: string };
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    dockerd: await version('dockerd', ['--version']),
    haproxy: await version('haproxy', ['-v']),
    nginx: (await version('nginx', ['-v'])).replace(/^nginx version: /, ''),
    wrk: await version('wrk', ['-v']),
    httpProxy3: httpProxy3.version ?? 'not installed',
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

/** dockerd's own pid (for its CPU time), from the pidfile test/helpers/dockerd.ts passes it. */
async function dockerdPid(dockerd: Dockerd): Promise<number> {
  return Number((await readFile(join(dockerd.directory, 'docker.pid'), 'utf8')).trim());
}

/** 20 stopped containers, an image of `sizeMb` MB (random data, so nothing compresses) and its saved tar. */
async function fixtures(dockerd: Dockerd, work: string, sizeMb: number): Promise<{ imageId: string; imageTar: string }> {
  for (let index = 0; index < CONTAINERS; index++) {
    const { status, body } = await dockerRequest(dockerd.socketPath, 'POST', `/v1.41/containers/create?name=bench-${index}`, {
      Image: BUSYBOX_IMAGE,
      Cmd: ['true'],
      HostConfig: { NetworkMode: 'none' },
    });
    if (status !== 201) throw new Error(`container create answered ${status}: ${body}`);
  }
  const random = Buffer.allocUnsafe(sizeMb * 1024 * 1024);
  for (let offset = 0; offset < random.length; offset += 64 * 1024 * 1024) {
    randomFillSync(random, offset, Math.min(64 * 1024 * 1024, random.length - offset));
  }
  const rootfs = await buildRootfsTar(work, { 'data/random.bin': random });
  const configDir = join(work, 'docker-config');
  await importImage(dockerd.socketPath, rootfs, 'dsf-bench-big:latest', configDir);
  await rm(rootfs, { force: true });
  const inspect = await dockerRequest(dockerd.socketPath, 'GET', '/v1.41/images/dsf-bench-big:latest/json');
  const imageId = (JSON.parse(inspect.body) as { Id: string }).Id;
  // The tar `images/load` is fed with: what `images/<id>/get` produces (also warms the page cache).
  const imageTar = join(work, 'image.tar');
  await new Promise<void>((resolve, reject) => {
    const req = request({ socketPath: dockerd.socketPath, path: `/v1.41/images/${imageId}/get` }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`images/get answered ${res.statusCode}`));
      pipeline(res, createWriteStream(imageTar)).then(resolve, reject);
    });
    req.on('error', reject);
    req.end();
  });
  return { imageId, imageTar };
}

/** One measured wrk run, with the CPU the server and dockerd spent per request during it. */
async function measureLoad(
  server: Server,
  path: string,
  status: number,
  settings: LoadSettings,
  dockerd: number,
  warm: boolean,
): Promise<LoadResult & { proxyCpuUsPerRequest: number | null; dockerdCpuUsPerRequest: number; otherCpuCores: number }> {
  if (warm && PLAN.warmSeconds > 0) await runWrk(server.port, path, { ...settings, seconds: PLAN.warmSeconds }, status);
  const proxyBefore = server.pid === null ? 0 : await cpuSecondsOf(server.pid);
  const dockerdBefore = await cpuSecondsOf(dockerd);
  const machineBefore = await machineBusySeconds();
  const selfBefore = await selfAndChildrenSeconds();
  const result = await runWrk(server.port, path, settings, status);
  const proxyCpu = server.pid === null ? null : (await cpuSecondsOf(server.pid)) - proxyBefore;
  const dockerdCpu = (await cpuSecondsOf(dockerd)) - dockerdBefore;
  // What the rest of the machine (other people's work, containerd, the kernel's own threads) took
  // meanwhile: the run competed with it for the same 2 CPUs. wrk is a child of this process.
  const other = (await machineBusySeconds()) - machineBefore - ((await selfAndChildrenSeconds()) - selfBefore) - (proxyCpu ?? 0) - dockerdCpu;
  const per = (seconds: number): number => Math.round((seconds * 1e6) / Math.max(1, result.requests));
  return {
    ...result,
    proxyCpuUsPerRequest: proxyCpu === null ? null : per(proxyCpu),
    dockerdCpuUsPerRequest: per(dockerdCpu),
    otherCpuCores: Math.max(0, Math.round((other / result.seconds) * 100) / 100),
  };
}

/** CPU (cores) the machine uses over 2 s apart from this process. */
async function otherLoad(): Promise<number> {
  const machineBefore = await machineBusySeconds();
  const selfBefore = await selfAndChildrenSeconds();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  return Math.max(0, ((await machineBusySeconds()) - machineBefore - ((await selfAndChildrenSeconds()) - selfBefore)) / 2);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** A denial may close the connection (HAProxy's error pages do): wrk then also counts a read error. */
function failuresOf(run: SmallRun): number {
  return run.unexpectedStatus + run.errors + (run.request === 'denied' ? 0 : run.readErrors);
}

/** Each field the median of its own rounds, per request and server. */
function medians(runs: readonly SmallRun[]): SmallResult[] {
  const groups = new Map<string, SmallRun[]>();
  for (const run of runs) {
    const key = `${run.request} ${run.target}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups.values()].map((group) => {
    const first = group[0] as SmallRun;
    const proxy = group.map((run) => run.proxyCpuUsPerRequest).filter((value): value is number => value !== null);
    return {
      request: first.request,
      label: first.label,
      target: first.target,
      rounds: group.length,
      rps: median(group.map((run) => run.rps)),
      p50Ms: median(group.map((run) => run.p50Ms)),
      p99Ms: median(group.map((run) => run.p99Ms)),
      proxyCpuUsPerRequest: proxy.length === 0 ? null : median(proxy),
      dockerdCpuUsPerRequest: median(group.map((run) => run.dockerdCpuUsPerRequest)),
      otherCpuCores: median(group.map((run) => run.otherCpuCores)),
      failures: group.reduce((total, run) => total + failuresOf(run), 0),
    };
  });
}

async function triggerEvent(socketPath: string): Promise<void> {
  const name = `bench-event-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const { status, body } = await dockerRequest(socketPath, 'POST', `/v1.41/containers/create?name=${name}`, {
    Image: BUSYBOX_IMAGE,
    Cmd: ['true'],
    HostConfig: { NetworkMode: 'none' },
  });
  if (status !== 201) throw new Error(`container create answered ${status}: ${body}`);
  await dockerRequest(socketPath, 'DELETE', `/v1.41/containers/${name}?force=1`);
}

/** Starters of every server under test, by name, for the main run and for fresh processes. */
function starters(socketPath: string, work: string): Record<string, (name?: string) => Promise<Target>> {
  return {
    cli: (name) => startCli(socketPath, work, name),
    'cli-2w': (name = 'cli-2w') => startCli(socketPath, work, name, NODE_FLAGS, { WORKERS: '2' }),
    library: (name) => startLibrary(socketPath, work, NODE_FLAGS, name),
    haproxy: (name) => startHaproxy(socketPath, work, name),
    nginx: (name) => startNginx(socketPath, work, name),
    'http-proxy-3': (name) => startNaive(socketPath, work, name),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  if (process.getuid?.() !== 0) throw new Error('the benchmark starts a private dockerd: run it as root');
  for (const file of ['dist/index.js', 'dist/cli.js']) {
    if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run \`npx tsup\` (npm run bench does)`);
  }
  if (!(await has('wrk'))) throw new Error('the benchmark needs `wrk` (apt-get install -y wrk)');
  const peersMissing: string[] = [];
  if (!(await has('haproxy'))) peersMissing.push('haproxy');
  if (!(await has('nginx'))) peersMissing.push('nginx');
  if (!existsSync(join(ROOT, 'node_modules', 'http-proxy-3'))) peersMissing.push('http-proxy-3');
  if (peersMissing.length > 0 && !ALLOW_MISSING) {
    throw new Error(
      `missing peers: ${peersMissing.join(', ')} (apt-get install -y haproxy nginx-light; npm install). ` +
        'Every peer is part of the comparison; `--allow-missing` runs without them and says so.',
    );
  }
  const haveCurl = await has('curl');
  const skipped = peersMissing.map((name) => `${name} (not installed; --allow-missing)`);

  const results: Results = {
    kind: SMOKE ? 'smoke' : 'full',
    date: new Date().toISOString(),
    command: SMOKE ? 'npm run bench:smoke' : 'npm run bench',
    machine: await machine(),
    settings: { ...PLAN, containers: CONTAINERS, streamingClient: haveCurl ? 'curl' : 'node' },
    small: [],
    smallRuns: [],
    streaming: [],
    memory: [],
    concurrency: [],
    evaluate: null,
    profiles: [],
    skipped,
    durationSeconds: 0,
  };

  if (!SMOKE) {
    const deadline = Date.now() + QUIET_WAIT_MS;
    let other = await otherLoad();
    while (other > QUIET_CORES && Date.now() < deadline) {
      say(`the rest of the machine is using ${other.toFixed(2)} cores; waiting for it to go quiet (at most ${QUIET_WAIT_MS / 1000} s in all)`);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      other = await otherLoad();
    }
    results.machine.otherCpuCoresAtStart = Math.round(other * 100) / 100;
    if (other > QUIET_CORES) say(`starting anyway with ${other.toFixed(2)} cores busy elsewhere: the numbers will be noisy`);
  }

  const work = await mkdtemp('/tmp/dsf-bench-');
  say(`work directory ${work}; starting a private dockerd`);
  const directPort = await freePort();
  const dockerd = await startDockerd({ tcpPort: directPort });
  const targets: Target[] = [];
  try {
    const pidOfDockerd = await dockerdPid(dockerd);
    say(`fixtures: ${CONTAINERS} containers, a ${PLAN.bigImageMb} MB image`);
    const { imageId, imageTar } = await fixtures(dockerd, work, PLAN.bigImageMb);
    const listed = JSON.parse((await dockerRequest(dockerd.socketPath, 'GET', '/v1.41/containers/json?all=1')).body) as unknown[];
    if (listed.length !== CONTAINERS) throw new Error(`expected ${CONTAINERS} containers, dockerd lists ${listed.length}`);

    const start = starters(dockerd.socketPath, work);
    const names = Object.keys(start).filter((name) => !peersMissing.includes(name));
    for (const name of names) targets.push(await (start[name] as () => Promise<Target>)());
    // Idle memory: fresh processes that have served nothing yet, once start-up has settled.
    await new Promise((resolve) => setTimeout(resolve, PLAN.settleMs));
    const idle = new Map<string, Awaited<ReturnType<typeof memoryOf>>>();
    for (const target of targets) idle.set(target.name, await memoryOf(target.pid));
    const direct: Direct = { name: DIRECT, port: directPort, pid: null };
    say(`servers: direct :${directPort}, ${targets.map((target) => `${target.name} :${target.port}`).join(', ')}`);

    // 1. Small requests, one server at a time, the same settings for all, in rounds.
    const warmed = new Set<string>();
    for (let round = 1; round <= PLAN.rounds; round++) {
      for (const spec of SMALL_REQUESTS) {
        // dockerd would answer the denial row's request (200): it has no denial to compare.
        const servers: Server[] = spec.status === 200 ? [direct, ...targets] : [...targets];
        for (const server of servers) {
          const key = `${spec.id} ${server.name}`;
          const result = await measureLoad(server, spec.path, spec.status, PLAN.load, pidOfDockerd, !warmed.has(key));
          warmed.add(key);
          const run: SmallRun = { request: spec.id, label: spec.label, target: server.name, round, ...result };
          say(
            `r${round} ${spec.id.padEnd(10)} ${server.name.padEnd(12)} ${Math.round(result.rps)} req/s ` +
              `p50 ${result.p50Ms.toFixed(2)} ms p99 ${result.p99Ms.toFixed(2)} ms, other CPU ${result.otherCpuCores.toFixed(2)}` +
              (failuresOf(run) > 0 ? ` (${result.unexpectedStatus} unexpected status, ${result.errors} errors, ${result.readErrors} read errors)` : ''),
          );
          results.smallRuns.push(run);
        }
      }
    }
    // A reference for GET /_ping: Node's http server answering by itself (the ceiling of a Node server).
    {
      const hello = await startReference('hello', dockerd.socketPath, work);
      try {
        for (let round = 1; round <= PLAN.rounds; round++) {
          const result = await measureLoad(hello, '/_ping', 200, PLAN.load, pidOfDockerd, round === 1);
          results.smallRuns.push({ request: 'ping', label: SMALL_REQUESTS[0].label, target: hello.name, round, ...result });
          say(`reference ${hello.name} ${Math.round(result.rps)} req/s p99 ${result.p99Ms.toFixed(2)} ms`);
        }
      } finally {
        await hello.stop();
      }
    }
    results.small = medians(results.smallRuns);

    // 2. Streaming: the same image both ways, servers alternating per repetition; median per server.
    const streamServers: Server[] = [direct, ...targets];
    const transfers = new Map<string, { get: Transfer[]; load: Transfer[] }>();
    for (const server of streamServers) transfers.set(server.name, { get: [], load: [] });
    const loadPath = '/v1.41/images/load?quiet=1';
    const getPath = `/v1.41/images/${imageId}/get`;
    say('streaming: warm-up load (direct)');
    await upload({ kind: 'unix', socketPath: dockerd.socketPath }, loadPath, imageTar, 120_000);
    for (let rep = 0; rep < PLAN.streamReps; rep++) {
      for (const server of streamServers) {
        const endpoint: Endpoint = { kind: 'tcp', port: server.port };
        const entry = transfers.get(server.name) as { get: Transfer[]; load: Transfer[] };
        const got = haveCurl ? await curlTransfer(endpoint, 'GET', getPath, null, 120_000) : await download(endpoint, getPath, 120_000);
        const loaded = haveCurl ? await curlTransfer(endpoint, 'POST', loadPath, imageTar, 120_000) : await upload(endpoint, loadPath, imageTar, 120_000);
        entry.get.push(got);
        entry.load.push(loaded);
        say(`streaming ${server.name.padEnd(12)} get ${got.mbPerSecond.toFixed(0)} MB/s, load ${loaded.mbPerSecond.toFixed(0)} MB/s`);
      }
    }
    for (const [name, entry] of transfers) {
      for (const kind of ['get', 'load'] as const) {
        const runs = entry[kind];
        results.streaming.push({
          transfer: kind,
          target: name,
          bytes: runs[0]?.bytes ?? 0,
          mbPerSecond: median(runs.map((run) => run.mbPerSecond)),
          runs: runs.map((run) => Math.round(run.mbPerSecond * 10) / 10),
        });
      }
    }

    // Memory of the processes that served all of the above, against their idle start.
    for (const target of targets) {
      const row: MemoryResult = { target: target.name, idle: idle.get(target.name) as MemoryResult['idle'], afterLoad: await memoryOf(target.pid) };
      results.memory.push(row);
      say(`memory ${target.name.padEnd(12)} idle ${row.idle.rssMb.toFixed(1)} MB, after the loads ${row.afterLoad.rssMb.toFixed(1)} MB (peak ${row.afterLoad.peakMb.toFixed(1)})`);
    }
    for (const target of targets.splice(0)) await target.stop();
    // Node's own floor: an empty event loop with one listening socket.
    {
      const empty = await startReference('idle', dockerd.socketPath, work);
      try {
        await new Promise((resolve) => setTimeout(resolve, PLAN.settleMs));
        const memory = await memoryOf(empty.pid);
        results.memory.push({ target: empty.name, idle: memory, afterLoad: memory });
      } finally {
        await empty.stop();
      }
    }

    // 3. Idle events streams, on fresh processes (so the number is not the leftovers of the load).
    const fresh: (() => Promise<Target>)[] = [
      ...names.map((name) => () => (start[name] as (name?: string) => Promise<Target>)(`${name}-events`)),
      // The floor: Node's http server holding the responses itself, with no upstream and no filter.
      () => startReference('hold', dockerd.socketPath, work),
    ];
    for (const startFresh of fresh) {
      const target = await startFresh();
      try {
        await new Promise((resolve) => setTimeout(resolve, PLAN.settleMs));
        const idleMemory = await memoryOf(target.pid);
        const reference = target.name.startsWith('node-');
        // node-hold answers the streams itself: no event would reach them, nothing to nudge.
        const streams = await openEventStreams(target.port, PLAN.eventStreams, 60_000, reference ? async () => undefined : () => triggerEvent(dockerd.socketPath));
        try {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          const held = await memoryOf(target.pid);
          const load = await runWrk(target.port, '/_ping', { connections: PLAN.load.connections, seconds: PLAN.heldLoadSeconds }, 200);
          streams.mark();
          if (!reference) {
            await triggerEvent(dockerd.socketPath);
            const deadline = Date.now() + 5_000;
            while (streams.withEventsSinceMark() < streams.open && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
          }
          const afterLoad = await memoryOf(target.pid);
          const row: ConcurrencyResult = {
            target: target.name.replace(/-events$/, ''),
            streams: PLAN.eventStreams,
            open: streams.open,
            headsAtOnce: streams.headsAtOnce,
            aliveAtEnd: streams.alive(),
            gotEvent: streams.withEventsSinceMark(),
            idle: idleMemory,
            held,
            afterLoad,
            pingWhileHeld: { rps: load.rps, p99Ms: load.p99Ms, failed: load.unexpectedStatus + load.errors + load.readErrors },
          };
          results.concurrency.push(row);
          say(
            `events ${row.target.padEnd(12)} ${row.open}/${row.streams} open (${row.headsAtOnce} heads before an event), ${row.gotEvent} got the event; RSS idle ` +
              `${idleMemory.rssMb.toFixed(1)} MB, held ${held.rssMb.toFixed(1)} MB, after /_ping load ${afterLoad.rssMb.toFixed(1)} MB; ` +
              `/_ping ${Math.round(load.rps)} req/s while held (${row.pingWhileHeld.failed} failed)`,
          );
        } finally {
          streams.close();
        }
      } finally {
        await target.stop();
      }
    }

    // 4. evaluate(): bench/evaluate.mjs, standalone, in its own process.
    {
      const { stdout } = await execFileAsync(process.execPath, [join(ROOT, 'bench', 'evaluate.mjs'), '--json', ...(SMOKE ? ['--quick'] : [])], {
        timeout: 60_000,
      });
      results.evaluate = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Results['evaluate'];
      say(`evaluate(): ${((results.evaluate?.decisionsPerSecond ?? 0) / 1e6).toFixed(2)} M decisions/s`);
    }

    // 5. Where the CLI spends its time under the allowed and the denied load.
    if (PROFILE) {
      for (const spec of [SMALL_REQUESTS[0], SMALL_REQUESTS[2]]) {
        const profileDir = join(work, `profile-${spec.id}`);
        const profiled = await startCli(dockerd.socketPath, work, `cli-profiled-${spec.id}`, [...NODE_FLAGS, '--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
        let load: LoadResult;
        try {
          await runWrk(profiled.port, spec.path, { ...PLAN.load, seconds: 1 }, spec.status);
          load = await runWrk(profiled.port, spec.path, PLAN.load, spec.status);
        } finally {
          await profiled.stop();
        }
        const file = (await readdir(profileDir)).find((entry) => entry.endsWith('.cpuprofile'));
        if (file === undefined) throw new Error('node --cpu-prof wrote no profile');
        // Kept outside the repository (a few MB): open it in Chrome DevTools or speedscope.
        const keep = join(os.tmpdir(), `dsf-bench-cli-${spec.id}.cpuprofile`);
        await writeFile(keep, await readFile(join(profileDir, file)));
        const profile: ProfileResult = { file: keep, request: `${spec.label.replace(/`/g, '')}`, rpsWhileProfiled: load.rps, ...(await summariseProfile(keep, 25)) };
        results.profiles.push(profile);
        say(`profile ${spec.id}: ${Math.round(load.rps)} req/s under the profiler; written to ${keep}`);
      }
    }
  } finally {
    for (const target of targets) await target.stop().catch(() => undefined);
    await dockerd.stop().catch((error: unknown) => say(`dockerd stop failed: ${String(error)}`));
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }

  results.durationSeconds = Math.round((Date.now() - started) / 1000);
  results.machine.loadAverageAtEnd = os.loadavg().map((value) => Math.round(value * 100) / 100);
  results.targets = checkTargets(results);
  const markdown = renderMarkdown(results);
  process.stdout.write(`\n${markdown}\n`);
  // The README's table: the same summary without the library column.
  process.stdout.write(`\nFor the README:\n\n${renderSummary(results, [...README_COLUMNS], ['cli', 'cli-2w'])}\n\n`);

  const failures = checkNumbers(results, [DIRECT, ...Object.keys(starters('', '')).filter((name) => !peersMissing.includes(name))]);
  if (SMOKE) {
    const file = join(os.tmpdir(), 'dsf-bench-smoke.json');
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    say(`smoke results in ${file} (bench/results.json and docs/bench.md are left alone)`);
  } else {
    await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    await updateDocs(join(ROOT, 'docs', 'bench.md'), markdown);
    say('wrote bench/results.json and the tables in docs/bench.md');
  }
  if (failures.length > 0) {
    throw new Error(`the run produced no usable numbers for:\n  ${failures.join('\n  ')}`);
  }
  say(`done in ${results.durationSeconds} s`);
}

/**
 * What the smoke run asserts (no thresholds): every server produced every number of every section,
 * each finite and positive, without failed requests, and every stream got its event.
 */
function checkNumbers(results: Results, servers: readonly string[]): string[] {
  const failures: string[] = [];
  const positive = (value: number | null | undefined): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;
  const proxies = servers.filter((name) => name !== DIRECT);
  for (const spec of SMALL_REQUESTS) {
    for (const name of spec.status === 200 ? servers : proxies) {
      const row = results.small.find((entry) => entry.request === spec.id && entry.target === name);
      if (row === undefined) failures.push(`${spec.id} ${name}: not measured`);
      else {
        if (!positive(row.rps) || !positive(row.p99Ms)) failures.push(`${spec.id} ${name}: no throughput or latency`);
        if (row.failures > 0) failures.push(`${spec.id} ${name}: ${row.failures} failed requests`);
        if (name !== DIRECT && !positive(row.proxyCpuUsPerRequest)) failures.push(`${spec.id} ${name}: no CPU time`);
      }
    }
  }
  for (const transfer of ['get', 'load'] as const) {
    const direct = results.streaming.find((row) => row.transfer === transfer && row.target === DIRECT);
    for (const name of servers) {
      const row = results.streaming.find((entry) => entry.transfer === transfer && entry.target === name);
      if (row === undefined || !positive(row.mbPerSecond)) failures.push(`${transfer} ${name}: no MB/s`);
      else if (direct !== undefined && row.bytes !== direct.bytes) failures.push(`${transfer} ${name}: ${row.bytes} bytes, direct ${direct.bytes}`);
    }
  }
  for (const name of proxies) {
    const memory = results.memory.find((row) => row.target === name);
    if (memory === undefined || !positive(memory.idle.rssMb) || !positive(memory.afterLoad.rssMb)) failures.push(`memory ${name}: not measured`);
    const row = results.concurrency.find((entry) => entry.target === name);
    if (row === undefined) failures.push(`events ${name}: not measured`);
    else {
      if (row.open !== row.streams || row.aliveAtEnd !== row.streams) failures.push(`events ${name}: ${row.open} opened, ${row.aliveAtEnd} alive of ${row.streams}`);
      if (row.gotEvent !== row.streams) failures.push(`events ${name}: ${row.gotEvent} of ${row.streams} got the event after the load`);
      if (!positive(row.held.rssMb) || !positive(row.pingWhileHeld.rps) || row.pingWhileHeld.failed > 0) failures.push(`events ${name}: requests did not flow`);
    }
  }
  if (!positive(results.evaluate?.decisionsPerSecond)) failures.push('evaluate: no number');
  return failures;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
