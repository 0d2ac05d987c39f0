/**
 * The package as npm delivers it: built from the current sources, packed with `npm pack`,
 * installed from the tarball into an empty project, then its bin run and its entry points loaded
 * there, by ESM `import`, CommonJS `require` and the TypeScript compiler, with nothing from this
 * repository on the resolution path.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tsupConfig from '../../tsup.config.js';

const ROOT = join(import.meta.dirname, '..', '..');
const packageJson = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

let work: string;
let consumer: string;
let packedFiles: string[];

function run(file: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out after ${timeoutMs} ms\n${stdout}${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function mustRun(file: string, args: readonly string[], cwd: string): Promise<string> {
  const result = await run(file, args, cwd);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${result.code}\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dsf-pack-'));
  const pkg = join(work, 'package');
  await mkdir(pkg);
  for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']) await copyFile(join(ROOT, file), join(pkg, file));
  // The project's own tsup entries, one after the other (the first cleans the folder), into the copy.
  for (const config of Array.isArray(tsupConfig) ? tsupConfig : [tsupConfig]) {
    if (typeof config !== 'object') throw new Error('tsup.config.ts must export option objects');
    await build({ ...config, outDir: join(pkg, 'dist'), config: false, silent: true });
  }
  const [packed] = JSON.parse(await mustRun('npm', ['pack', '--json', '--pack-destination', work], pkg)) as {
    filename: string;
    files: { path: string }[];
  }[];
  if (packed === undefined) throw new Error('npm pack reported no tarball');
  packedFiles = packed.files.map((file) => file.path).sort();

  consumer = join(work, 'consumer');
  await mkdir(consumer);
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'dsf-consumer', version: '1.0.0', private: true }));
  // From the registry, or from npm's cache when it has the packages already.
  await mustRun('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed.filename)], consumer);
}, 180_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the build, the readme, the licence and the changelog, and nothing else', () => {
    const outside = packedFiles.filter((path) => !path.startsWith('dist/'));
    expect(outside).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
    for (const entry of ['index', 'express', 'koa']) {
      for (const suffix of ['.js', '.cjs', '.d.ts', '.d.cts']) expect(packedFiles).toContain(`dist/${entry}${suffix}`);
    }
    expect(packedFiles).toContain('dist/cli.js');
  });

  it('installs a working bin', async () => {
    const bin = join(consumer, 'node_modules', '.bin', 'docker-socket-filter');
    const version = await run(bin, ['--version'], consumer);
    expect(version).toEqual({ code: 0, stdout: `${packageJson.version}\n`, stderr: '' });
    const check = await run(bin, ['check', 'GET', '/v1.41/_ping'], consumer);
    expect(check.stdout).toMatch(/^allowed 200 rule=PING\n/);
    expect(check.code).toBe(0);
  });

  it('loads by ESM import, from dist/*.js', async () => {
    await writeFile(
      join(consumer, 'esm.mjs'),
      `import { createSocketFilter, tecnativaPreset } from 'docker-socket-filter';
import { expressSocketFilter } from 'docker-socket-filter/express';
import { koaSocketFilter } from 'docker-socket-filter/koa';
const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
console.log(JSON.stringify({
  resolved: import.meta.resolve('docker-socket-filter'),
  list: filter.evaluate('GET', '/v1.41/containers/json').allowed,
  create: filter.evaluate('POST', '/v1.41/containers/create').reason,
  adapters: [typeof expressSocketFilter(filter), typeof koaSocketFilter(filter)],
}));
await filter.close();
`,
    );
    const output = JSON.parse(await mustRun(process.execPath, ['esm.mjs'], consumer)) as Record<string, unknown>;
    expect(output).toEqual({
      resolved: expect.stringMatching(/\/node_modules\/docker-socket-filter\/dist\/index\.js$/),
      list: true,
      create: 'docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1',
      adapters: ['function', 'function'],
    });
  });

  it('loads by CommonJS require, from dist/*.cjs', async () => {
    await writeFile(
      join(consumer, 'cjs.cjs'),
      `const { createSocketFilter, tecnativaPreset } = require('docker-socket-filter');
const { expressSocketFilter } = require('docker-socket-filter/express');
const { koaSocketFilter } = require('docker-socket-filter/koa');
const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
console.log(JSON.stringify({
  resolved: require.resolve('docker-socket-filter'),
  list: filter.evaluate('GET', '/v1.41/containers/json').allowed,
  create: filter.evaluate('POST', '/v1.41/containers/create').reason,
  adapters: [typeof expressSocketFilter(filter), typeof koaSocketFilter(filter)],
}));
filter.close();
`,
    );
    const output = JSON.parse(await mustRun(process.execPath, ['cjs.cjs'], consumer)) as Record<string, unknown>;
    expect(output).toEqual({
      resolved: expect.stringMatching(/\/node_modules\/docker-socket-filter\/dist\/index\.cjs$/),
      list: true,
      create: 'docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1',
      adapters: ['function', 'function'],
    });
  });

  it('type-checks for a TypeScript user with @types/node (the optional peer), not without it', async () => {
    await writeFile(
      join(consumer, 'consumer.mts'),
      `import { createFilterServer, createSocketFilter, tecnativaPreset, type Decision } from 'docker-socket-filter';
import { expressSocketFilter } from 'docker-socket-filter/express';
const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }) });
const decision: Decision = filter.evaluate('GET', '/_ping');
const server = createFilterServer(filter);
server.listen(0);
export const used = [decision.allowed, expressSocketFilter(filter)];
`,
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', 'consumer.mts'];
    const without = await run(process.execPath, [tsc, ...args], consumer);
    expect(without.stdout).toMatch(/Cannot find module 'node:http'|Cannot find name 'NodeJS'|Cannot find module 'http'/);
    expect(without.code).not.toBe(0);

    await mkdir(join(consumer, 'node_modules', '@types'), { recursive: true });
    await symlink(join(ROOT, 'node_modules', '@types', 'node'), join(consumer, 'node_modules', '@types', 'node'));
    const withTypes = await run(process.execPath, [tsc, ...args], consumer);
    expect(withTypes.stdout).toBe('');
    expect(withTypes.code).toBe(0);
  }, 60_000);
});
