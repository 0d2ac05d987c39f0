import { spawn } from 'node:child_process';
import { chmod, chown, copyFile, cp, mkdir, readdir, realpath, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';

/** The repository the image is built from. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** Between runs the npm cache stays here (node_modules/ is git-ignored), so a rerun downloads nothing. */
const NPM_CACHE = join(ROOT, 'node_modules', '.cache', 'dsf-image', 'npm-cache');

/**
 * What a command printed and how it ended.
 */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to completion, bounded: it is killed, and the promise rejects, after `timeoutMs`.
 * A non-zero exit resolves (callers assert on `code`); a command that cannot start rejects.
 *
 * @example
 * ```ts
 * const { code, stdout } = await runCommand('docker', ['version'], { env: { DOCKER_HOST: 'unix:///tmp/d.sock' } });
 * ```
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out after ${timeoutMs} ms\n${tail(stdout + stderr)}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last lines of a command's output, for error messages. */
export function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function mustRun(file: string, args: readonly string[], options: Parameters<typeof runCommand>[2] = {}): Promise<string> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited with ${result.code}\n${tail(result.stdout + result.stderr)}`);
  }
  return result.stdout;
}

/** A command on PATH, as the shell would find it. */
async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await stat(candidate).then((s) => s.isFile(), () => false)) return candidate;
  }
  return undefined;
}

/**
 * The folder of the npm package that runs here (the one `npm test` was started by, else the `npm`
 * on PATH): the base image gets the same npm as the machine, as the official image has the npm
 * its Node release ships.
 */
async function npmPackageDir(): Promise<string> {
  for (const start of [process.env.npm_execpath, await onPath('npm')]) {
    if (start === undefined || start === '') continue;
    let dir = dirname(await realpath(start).catch(() => start));
    for (let depth = 0; depth < 4; depth++, dir = dirname(dir)) {
      const name = await readFile(join(dir, 'package.json'), 'utf8').then((text) => (JSON.parse(text) as { name?: string }).name, () => undefined);
      if (name === 'npm') return dir;
    }
  }
  throw new Error('cannot find the npm package that runs this test (npm_execpath, or npm on PATH)');
}

/** The shared libraries `ldd` lists for a binary, as absolute paths. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const output = await mustRun('ldd', [binary]);
  return [...output.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((match) => match[1] as string);
}

/**
 * Builds a stand-in for the official `node:24` image and `docker import`s it as `tag`: the Node
 * binary that runs this test (Node 24 from the npm registry in CI), its npm, the glibc libraries
 * `ldd` lists for Node and for rollup's native binding (the image's build runs tsup), a static
 * busybox as /bin/sh and the coreutils, `/usr/bin/env` for npm's shebang, and the official image's
 * `node` user (uid and gid 1000) with its home. No image registry is reachable here, so this is
 * what the Dockerfile's `NODE_IMAGE` argument is pointed at.
 *
 * @example
 * ```ts
 * await buildNodeBaseImage({ work, tag: 'dsf-node24-base:latest', dockerEnv });
 * ```
 */
export async function buildNodeBaseImage(options: {
  work: string;
  tag: string;
  dockerEnv: Record<string, string>;
}): Promise<{ nodeVersion: string; npmVersion: string }> {
  const nodeVersion = process.version;
  if (!nodeVersion.startsWith('v24.')) {
    throw new Error(`the image test builds a Node 24 base image from the Node that runs it; this is ${nodeVersion} (run it on Node 24, as .ci/run does)`);
  }
  const npmDir = await npmPackageDir();
  const npmVersion = (JSON.parse(await readFile(join(npmDir, 'package.json'), 'utf8')) as { version: string }).version;

  const rootfs = join(options.work, 'base-rootfs');
  await rm(rootfs, { recursive: true, force: true });
  for (const dir of ['bin', 'usr/bin', 'usr/local/bin', 'usr/local/lib/node_modules', 'etc', 'root', 'home/node', 'proc', 'sys', 'dev', 'tmp']) {
    await mkdir(join(rootfs, dir), { recursive: true });
  }
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await chown(join(rootfs, 'home/node'), 1000, 1000);

  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  const applets = (await mustRun('/bin/busybox', ['--list'])).split('\n').filter((name) => /^[a-z0-9_.[-]+$/.test(name) && name !== 'busybox');
  for (const applet of applets) await symlink('busybox', join(rootfs, 'bin', applet)).catch(() => undefined);
  await symlink('../../bin/busybox', join(rootfs, 'usr/bin/env'));

  await copyFile(process.execPath, join(rootfs, 'usr/local/bin/node'));
  await chmod(join(rootfs, 'usr/local/bin/node'), 0o755);
  await cp(npmDir, join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx'));

  const rollupDir = join(ROOT, 'node_modules', '@rollup');
  const bindings: string[] = [];
  for (const pkg of await readdir(rollupDir).catch(() => [] as string[])) {
    for (const file of await readdir(join(rollupDir, pkg)).catch(() => [] as string[])) {
      if (file.endsWith('.node')) bindings.push(join(rollupDir, pkg, file));
    }
  }
  if (bindings.length === 0) throw new Error(`no rollup native binding under ${rollupDir}: run npm install first`);
  const libraries = new Set<string>();
  for (const binary of [process.execPath, ...bindings]) for (const lib of await sharedLibraries(binary)) libraries.add(lib);
  for (const lib of libraries) {
    await mkdir(join(rootfs, dirname(lib)), { recursive: true });
    await copyFile(lib, join(rootfs, lib));
  }

  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');

  const tar = join(options.work, 'base-rootfs.tar');
  await mustRun('tar', ['-C', rootfs, '-cf', tar, '.'], { timeoutMs: 120_000 });
  await rm(rootfs, { recursive: true, force: true });
  await mustRun(
    'docker',
    ['import', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--change', 'CMD ["node"]', tar, options.tag],
    { env: options.dockerEnv, timeoutMs: 180_000 },
  );
  await rm(tar, { force: true });
  return { nodeVersion, npmVersion };
}

/**
 * A build context as a fresh clone has it (every file git tracks or would track, nothing it
 * ignores), plus `.npm-cache/`: an npm cache holding every package the Dockerfile's build stage
 * installs, filled on this host (which reaches the registry; containers do not) and kept between
 * runs in node_modules/.cache. Returns the context's path and the registry the cache was filled
 * from (its entries are keyed by it).
 *
 * @example
 * ```ts
 * const { context, registry } = await prepareOfflineContext(work);
 * ```
 */
export async function prepareOfflineContext(work: string): Promise<{ context: string; registry: string }> {
  const context = join(work, 'context');
  await rm(context, { recursive: true, force: true });
  const listed = await mustRun('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT });
  for (const file of listed.split('\0').filter((name) => name !== '')) {
    // A file deleted in the work tree but still tracked is not in a clone of the work tree either.
    if (!(await stat(join(ROOT, file)).then((s) => s.isFile(), () => false))) continue;
    await mkdir(dirname(join(context, file)), { recursive: true });
    await copyFile(join(ROOT, file), join(context, file));
  }

  const registry = (await mustRun('npm', ['config', 'get', 'registry'], { cwd: ROOT })).trim();
  const prime = join(work, 'npm-prime');
  await mkdir(prime, { recursive: true });
  for (const file of ['package.json', 'package-lock.json']) await copyFile(join(ROOT, file), join(prime, file));
  // The same install the build stage runs, on this host: what it downloads is what the build needs.
  await mustRun('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--cache', NPM_CACHE, '--registry', registry], {
    cwd: prime,
    timeoutMs: 300_000,
  });
  await rm(prime, { recursive: true, force: true });
  await cp(NPM_CACHE, join(context, '.npm-cache'), { recursive: true, filter: (source) => !source.includes('/_logs') });
  return { context, registry };
}
