// The benchmark of issue 6: one run that starts a private dockerd, our filter (as a library in a
// server, and through the CLI) and Debian's haproxy with the Tecnativa rules (bench/haproxy.cfg),
// then measures each the same way, one target at a time. Prints a table, writes
// bench/results.json and the table in docs/bench.md.
//
//   npm run bench                 # tsup && tsx bench/run.ts   (root; about 4 minutes)
//   npm run bench:smoke           # a few short runs: checks the harness works and produces numbers
//   tsx bench/run.ts --no-profile # skip the CPU profile of the library server
//
// Needs: root (dockerd), dockerd + docker CLI, /bin/busybox, `wrk` and `haproxy` (Debian packages;
// the smoke run skips what is missing), a built dist/ (`npx tsup`).
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
import { runAutocannon, runWrk, type Endpoint, type LoadResult, type LoadSettings } from './lib/load.js';
import { cpuSecondsOf, heapOf, machineBusySeconds, memoryOf, NODE_FLAGS, selfAndChildrenSeconds, startCli, startHaproxy, startLibrary, startReference, type Target } from './lib/processes.js';
import { summariseProfile } from './lib/profile.js';
import { checkTargets, renderMarkdown, updateDocs, type Results, type SmallResult } from './lib/report.js';
import { curlTransfer, download, openEventStreams, upload, type Transfer } from './lib/streams.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const argv = new Set(process.argv.slice(2));
const SMOKE = argv.has('--smoke');
const PROFILE = !SMOKE && !argv.has('--no-profile');

// Small requests are measured in `rounds` (targets interleaved within each round) and the best round
// of each is reported: other work on the machine only ever lowers a number, so the best round is the
// one least disturbed. Every round is kept in results.json (`smallRuns`).
const PLAN = SMOKE
  ? { load: { connections: 32, seconds: 1 }, rounds: 1, warmSeconds: 0, bigImageMb: 16, streamReps: 1, eventStreams: 100, heldLoadSeconds: 1 }
  : { load: { connections: 32, seconds: 3 }, rounds: 2, warmSeconds: 1, bigImageMb: 210, streamReps: 5, eventStreams: 1000, heldLoadSeconds: 3 };

/** How long a full run waits, at most, for the rest of the machine to go quiet before it starts. */
const QUIET_WAIT_MS = 60_000;
const QUIET_CORES = 0.25;

const CONTAINERS = 20;
const NO_AUTOCANNON_DENIALS =
  "autocannon on HAProxy's denials (its close-delimited HTTP/1.0 error page never completes for autocannon; wrk measures them)";
const SMALL_REQUESTS = [
  { id: 'ping', label: 'GET /_ping', path: '/_ping', status: 200 },
  { id: 'containers', label: `GET /v1.41/containers/json?all=1 (${CONTAINERS} containers)`, path: '/v1.41/containers/json?all=1', status: 200 },
  { id: 'denied', label: 'GET /v1.41/info (denied: INFO=0)', path: '/v1.41/info', status: 403 },
] as const;

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
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    dockerd: await version('dockerd', ['--version']),
    haproxy: await version('haproxy', ['-v']),
    wrk: await version('wrk', ['-v']),
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

function endpointOf(target: Target | 'direct', socketPath: string): Endpoint {
  return target === 'direct' ? { kind: 'unix', socketPath } : { kind: 'tcp', port: target.port };
}

/** One measured load run, with the CPU the proxy and dockerd spent per request during it. */
async function measureLoad(
  generator: 'wrk' | 'autocannon',
  target: Target | 'direct',
  socketPath: string,
  path: string,
  status: number,
  settings: LoadSettings,
  pids: { proxy: number | null; dockerd: number },
  warm: boolean,
): Promise<LoadResult & { proxyCpuUsPerRequest: number | null; dockerdCpuUsPerRequest: number; otherCpuCores: number }> {
  const go = (seconds: number): Promise<LoadResult> =>
    generator === 'wrk'
      ? runWrk((target as Target).port, path, { ...settings, seconds }, status)
      : runAutocannon(endpointOf(target, socketPath), path, { ...settings, seconds }, status);
  if (warm && PLAN.warmSeconds > 0) await go(PLAN.warmSeconds);
  const proxyBefore = pids.proxy === null ? 0 : await cpuSecondsOf(pids.proxy);
  const dockerdBefore = await cpuSecondsOf(pids.dockerd);
  const machineBefore = await machineBusySeconds();
  const selfBefore = await selfAndChildrenSeconds();
  const result = await go(settings.seconds);
  const proxyCpu = pids.proxy === null ? null : (await cpuSecondsOf(pids.proxy)) - proxyBefore;
  const dockerdCpu = (await cpuSecondsOf(pids.dockerd)) - dockerdBefore;
  // What the rest of the machine (other people's work, containerd, the kernel's own threads) took
  // meanwhile: the run competed with it for the same 2 CPUs.
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

/** The round with the highest throughput for each request, target and generator. */
function bestRounds(runs: readonly SmallResult[]): SmallResult[] {
  const best = new Map<string, SmallResult>();
  for (const run of runs) {
    const key = `${run.request} ${run.target} ${run.generator}`;
    const current = best.get(key);
    if (current === undefined || run.rps > current.rps) best.set(key, run);
  }
  return [...best.values()];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function triggerEvent(socketPath: string): Promise<void> {
  const { status, body } = await dockerRequest(socketPath, 'POST', '/v1.41/containers/create?name=bench-event', {
    Image: BUSYBOX_IMAGE,
    Cmd: ['true'],
    HostConfig: { NetworkMode: 'none' },
  });
  if (status !== 201) throw new Error(`container create answered ${status}: ${body}`);
  await dockerRequest(socketPath, 'DELETE', '/v1.41/containers/bench-event?force=1');
}

async function main(): Promise<void> {
  const started = Date.now();
  if (process.getuid?.() !== 0) throw new Error('the benchmark starts a private dockerd: run it as root');
  for (const file of ['dist/index.js', 'dist/cli.js']) {
    if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run \`npx tsup\` (npm run bench does)`);
  }
  const haveWrk = await has('wrk');
  const haveHaproxy = await has('haproxy');
  const haveCurl = await has('curl');
  if (!SMOKE && (!haveWrk || !haveHaproxy)) {
    throw new Error('the benchmark needs `wrk` and `haproxy`: apt-get install -y wrk haproxy');
  }
  const skipped: string[] = [];
  if (!haveWrk) skipped.push('wrk (not installed)');
  if (!haveHaproxy) skipped.push('haproxy (not installed)');

  const results: Results = {
    kind: SMOKE ? 'smoke' : 'full',
    date: new Date().toISOString(),
    command: SMOKE ? 'npm run bench:smoke' : 'npm run bench',
    machine: await machine(),
    settings: { ...PLAN, containers: CONTAINERS, streamingClient: haveCurl ? 'curl' : 'node' },
    small: [],
    smallRuns: [],
    streaming: [],
    concurrency: [],
    evaluate: null,
    peakRssMb: {},
    profile: null,
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
  const dockerd = await startDockerd();
  const targets: Target[] = [];
  try {
    const pidOfDockerd = await dockerdPid(dockerd);
    say(`fixtures: ${CONTAINERS} containers, a ${PLAN.bigImageMb} MB image`);
    const { imageId, imageTar } = await fixtures(dockerd, work, PLAN.bigImageMb);
    const listed = JSON.parse((await dockerRequest(dockerd.socketPath, 'GET', '/v1.41/containers/json?all=1')).body) as unknown[];
    if (listed.length !== CONTAINERS) throw new Error(`expected ${CONTAINERS} containers, dockerd lists ${listed.length}`);

    targets.push(await startLibrary(dockerd.socketPath, work));
    targets.push(await startCli(dockerd.socketPath, work));
    if (haveHaproxy) targets.push(await startHaproxy(dockerd.socketPath, work));
    say(`targets: direct (unix socket), ${targets.map((target) => `${target.name} :${target.port}`).join(', ')}`);

    // 1. Small requests, one target at a time, the same settings for all, in rounds.
    const warmed = new Set<string>();
    for (let round = 1; round <= PLAN.rounds; round++) {
      for (const spec of SMALL_REQUESTS) {
        const all: (Target | 'direct')[] = spec.status === 200 ? ['direct', ...targets] : [...targets];
        for (const target of all) {
          const name = target === 'direct' ? 'direct' : target.name;
          let generators: ('wrk' | 'autocannon')[] = target !== 'direct' && haveWrk ? ['wrk', 'autocannon'] : ['autocannon'];
          // HAProxy's error pages are HTTP/1.0 without Content-Length (the body ends when HAProxy
          // closes the connection): autocannon never sees such a response end; wrk measures them.
          if (spec.status !== 200 && target !== 'direct' && target.name === 'haproxy') {
            generators = generators.filter((generator) => generator !== 'autocannon');
            if (!results.skipped.includes(NO_AUTOCANNON_DENIALS)) results.skipped.push(NO_AUTOCANNON_DENIALS);
          }
          for (const generator of generators) {
            const key = `${spec.id} ${name} ${generator}`;
            const result = await measureLoad(generator, target, dockerd.socketPath, spec.path, spec.status, PLAN.load, {
              proxy: target === 'direct' ? null : target.pid,
              dockerd: pidOfDockerd,
            }, !warmed.has(key));
            warmed.add(key);
            say(
              `r${round} ${spec.id.padEnd(10)} ${name.padEnd(7)} ${generator.padEnd(10)} ${Math.round(result.rps)} req/s ` +
                `p50 ${result.p50Ms.toFixed(2)} ms p99 ${result.p99Ms.toFixed(2)} ms, other CPU ${result.otherCpuCores.toFixed(2)}` +
                (result.unexpectedStatus + result.errors + result.readErrors > 0
                  ? ` (${result.unexpectedStatus} unexpected status, ${result.errors} errors, ${result.readErrors} read errors)`
                  : ''),
            );
            results.smallRuns.push({ request: spec.id, label: spec.label, target: name, round, ...result });
          }
        }
      }
    }

    // Reference points for GET /_ping (wrk): Node's http server alone, a minimal Node proxy, and the
    // library with Node's default young generation (without NODE_FLAGS).
    if (haveWrk) {
      for (const mode of ['hello', 'proxy', 'library-node-defaults'] as const) {
        const reference =
          mode === 'library-node-defaults'
            ? await startLibrary(dockerd.socketPath, work, [], 'node-defaults-library')
            : await startReference(mode, dockerd.socketPath, work);
        try {
          const result = await measureLoad('wrk', reference, dockerd.socketPath, '/_ping', 200, PLAN.load, {
            proxy: reference.pid,
            dockerd: pidOfDockerd,
          }, true);
          say(
            `reference ${reference.name.padEnd(10)} wrk ${Math.round(result.rps)} req/s p50 ${result.p50Ms.toFixed(2)} ms ` +
              `p99 ${result.p99Ms.toFixed(2)} ms, other CPU ${result.otherCpuCores.toFixed(2)}`,
          );
          results.smallRuns.push({ request: 'ping', label: 'GET /_ping', target: reference.name, round: 1, ...result });
        } finally {
          await reference.stop();
        }
      }
    }

    results.small = bestRounds(results.smallRuns);

    // 2. Streaming: the same image both ways, targets interleaved per repetition; median per target.
    const streamTargets: (Target | 'direct')[] = ['direct', ...targets];
    const transfers = new Map<string, { get: Transfer[]; load: Transfer[] }>();
    for (const target of streamTargets) transfers.set(target === 'direct' ? 'direct' : target.name, { get: [], load: [] });
    const loadPath = '/v1.41/images/load?quiet=1';
    say('streaming: warm-up load (direct)');
    await upload({ kind: 'unix', socketPath: dockerd.socketPath }, loadPath, imageTar, 120_000);
    for (let rep = 0; rep < PLAN.streamReps; rep++) {
      for (const target of streamTargets) {
        const name = target === 'direct' ? 'direct' : target.name;
        const endpoint = endpointOf(target, dockerd.socketPath);
        const entry = transfers.get(name) as { get: Transfer[]; load: Transfer[] };
        const getPath = `/v1.41/images/${imageId}/get`;
        const got = haveCurl ? await curlTransfer(endpoint, 'GET', getPath, null, 120_000) : await download(endpoint, getPath, 120_000);
        const loaded = haveCurl ? await curlTransfer(endpoint, 'POST', loadPath, imageTar, 120_000) : await upload(endpoint, loadPath, imageTar, 120_000);
        entry.get.push(got);
        entry.load.push(loaded);
        say(`streaming ${name.padEnd(7)} get ${got.mbPerSecond.toFixed(0)} MB/s, load ${loaded.mbPerSecond.toFixed(0)} MB/s`);
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

    // Peak RSS of the processes that served all of the above.
    for (const target of targets) results.peakRssMb[target.name] = (await memoryOf(target.pid)).peakMb;

    // 3. Idle events streams, on fresh processes (so the number is not the leftovers of the load).
    const fresh = [
      () => startLibrary(dockerd.socketPath, work, [], 'library-events'),
      () => startCli(dockerd.socketPath, work, 'cli-events'),
      ...(haveHaproxy ? [() => startHaproxy(dockerd.socketPath, work, 'haproxy-events')] : []),
      // The floor: Node's http server holding the responses itself, with no upstream and no filter.
      () => startReference('hold', dockerd.socketPath, work),
    ];
    for (const start of fresh) {
      const target = await start();
      try {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const idle = await memoryOf(target.pid);
        const streams = await openEventStreams(target.port, PLAN.eventStreams, 60_000);
        try {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          const held = await memoryOf(target.pid);
          const heap = target.name.startsWith('library') ? await heapOf(target) : null;
          const settings = { connections: PLAN.load.connections, seconds: PLAN.heldLoadSeconds };
          const load = haveWrk
            ? await runWrk(target.port, '/_ping', settings, 200)
            : await runAutocannon({ kind: 'tcp', port: target.port }, '/_ping', settings, 200);
          await triggerEvent(dockerd.socketPath);
          const deadline = Date.now() + 5_000;
          while (streams.withEvents() < streams.open && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
          const after = await memoryOf(target.pid);
          const row = {
            target: target.name.replace(/-events$/, ''),
            streams: PLAN.eventStreams,
            open: streams.open,
            aliveAtEnd: streams.alive(),
            gotEvent: streams.withEvents(),
            rssIdleMb: idle.rssMb,
            rssHeldMb: held.rssMb,
            rssAfterLoadMb: after.rssMb,
            heapWithStreamsMb: heap,
            pingWhileHeld: {
              generator: load.generator,
              rps: load.rps,
              p99Ms: load.p99Ms,
              failed: load.unexpectedStatus + load.errors + load.readErrors,
            },
          };
          results.concurrency.push(row);
          say(
            `events ${row.target.padEnd(7)} ${row.open}/${row.streams} open, ${row.gotEvent} got the event; RSS idle ` +
              `${idle.rssMb.toFixed(1)} MB, held ${held.rssMb.toFixed(1)} MB, after /_ping load ${after.rssMb.toFixed(1)} MB; ` +
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

    // 5. Where the library server spends its time under the GET /_ping load.
    if (PROFILE && haveWrk) {
      const profileDir = join(work, 'profile');
      const profiled = await startLibrary(dockerd.socketPath, work, [...NODE_FLAGS, '--cpu-prof', `--cpu-prof-dir=${profileDir}`], 'library-profiled');
      let load: LoadResult;
      try {
        await runWrk(profiled.port, '/_ping', { ...PLAN.load, seconds: 1 }, 200);
        load = await runWrk(profiled.port, '/_ping', PLAN.load, 200);
      } finally {
        await profiled.stop();
      }
      const file = (await readdir(profileDir)).find((name) => name.endsWith('.cpuprofile'));
      if (file === undefined) throw new Error('node --cpu-prof wrote no profile');
      // Kept outside the repository (a few MB): open it in Chrome DevTools or speedscope.
      const keep = join(os.tmpdir(), 'dsf-bench-ping.cpuprofile');
      await writeFile(keep, await readFile(join(profileDir, file)));
      results.profile = { file: keep, rpsWhileProfiled: load.rps, ...(await summariseProfile(keep, 25)) };
      say(`profile: ${Math.round(load.rps)} req/s under the profiler; written to ${keep}`);
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

  const failures = checkNumbers(results);
  if (SMOKE) {
    const file = join(os.tmpdir(), 'dsf-bench-smoke.json');
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    say(`smoke results in ${file} (bench/results.json and docs/bench.md are left alone)`);
  } else {
    await writeFile(join(ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    await updateDocs(join(ROOT, 'docs', 'bench.md'), markdown);
    say('wrote bench/results.json and the table in docs/bench.md');
  }
  if (failures.length > 0) {
    throw new Error(`the run produced no usable numbers for: ${failures.join('; ')}`);
  }
  say(`done in ${results.durationSeconds} s`);
}

/** What the smoke run asserts: every measurement produced a finite, positive number, without failures. */
function checkNumbers(results: Results): string[] {
  const failures: string[] = [];
  const positive = (value: number | null | undefined): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;
  for (const row of results.small) {
    if (!positive(row.rps) || !positive(row.p99Ms)) failures.push(`${row.request} ${row.target} ${row.generator}: no throughput`);
    // A denial may close the connection (HAProxy does): wrk then also counts a read error.
    const readErrors = row.request === 'denied' ? 0 : row.readErrors;
    if (row.unexpectedStatus > 0 || row.errors > 0 || readErrors > 0) {
      failures.push(`${row.request} ${row.target} ${row.generator}: ${row.unexpectedStatus} unexpected statuses, ${row.errors + readErrors} errors`);
    }
  }
  for (const row of results.streaming) {
    if (!positive(row.mbPerSecond)) failures.push(`${row.transfer} ${row.target}: no MB/s`);
    const direct = results.streaming.find((other) => other.transfer === row.transfer && other.target === 'direct');
    if (direct !== undefined && row.bytes !== direct.bytes) failures.push(`${row.transfer} ${row.target}: ${row.bytes} bytes, direct ${direct.bytes}`);
  }
  for (const row of results.concurrency) {
    if (row.open !== row.streams || row.aliveAtEnd !== row.streams) failures.push(`events ${row.target}: ${row.open} opened, ${row.aliveAtEnd} alive of ${row.streams}`);
    if (!positive(row.rssHeldMb) || !positive(row.pingWhileHeld.rps) || row.pingWhileHeld.failed > 0) failures.push(`events ${row.target}: requests did not flow`);
  }
  if (!positive(results.evaluate?.decisionsPerSecond)) failures.push('evaluate: no number');
  if (results.small.length === 0 || results.streaming.length === 0 || results.concurrency.length === 0) failures.push('a section is empty');
  return failures;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
