import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootfsTar } from '../helpers/dockerd.js';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { ALL_GRANTED, tecnativaFixture, type TecnativaFixture } from '../helpers/fixtures.js';

const BIG_IMAGE = 'dsf-big:latest';
const BIG_FILE_BYTES = 100 * 1024 * 1024;

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

describe('large bodies both ways: import, save and load of a 100 MB image', () => {
  let f: TecnativaFixture;
  let direct: DockerCli;
  let work: string;
  let bigSha: string;
  beforeAll(async () => {
    f = await tecnativaFixture(ALL_GRANTED);
    direct = dockerCli(`unix://${f.socketPath}`);
    work = await mkdtemp(join(tmpdir(), 'dsf-big-'));
    const big = randomBytes(BIG_FILE_BYTES);
    bigSha = createHash('sha256').update(big).digest('hex');
    const tar = await buildRootfsTar(work, { 'data/big.bin': big });
    // The import itself is a 100 MB upload through the filter.
    const imported = await f.docker.run(['import', '--change', 'CMD ["/bin/sh"]', tar, BIG_IMAGE], { timeoutMs: 120_000 });
    expect(imported.code, imported.stderr).toBe(0);
    await rm(tar);
  }, 180_000);
  afterAll(async () => {
    await direct.run(['rmi', '-f', BIG_IMAGE]);
    await rm(work, { recursive: true, force: true });
    direct.dispose();
    await f.close();
  });

  it('save through the filter is byte-identical to save straight from dockerd; load restores the image', async () => {
    const viaFilter = join(work, 'via-filter.tar');
    const straight = join(work, 'straight.tar');
    expect((await f.docker.run(['save', '-o', viaFilter, BIG_IMAGE], { timeoutMs: 120_000 })).code).toBe(0);
    expect((await direct.run(['save', '-o', straight, BIG_IMAGE], { timeoutMs: 120_000 })).code).toBe(0);
    const savedSha = await sha256(viaFilter);
    expect(savedSha).toBe(await sha256(straight));

    const imageId = (await f.docker.run(['image', 'inspect', '--format', '{{.Id}}', BIG_IMAGE])).stdout.trim();
    expect((await f.docker.run(['rmi', BIG_IMAGE])).code).toBe(0);
    const loaded = await f.docker.run(['load', '-i', viaFilter], { timeoutMs: 120_000 });
    expect(loaded.code, loaded.stderr).toBe(0);
    expect((await f.docker.run(['image', 'inspect', '--format', '{{.Id}}', BIG_IMAGE])).stdout.trim()).toBe(imageId);

    const resaved = join(work, 'resaved.tar');
    expect((await f.docker.run(['save', '-o', resaved, BIG_IMAGE], { timeoutMs: 120_000 })).code).toBe(0);
    expect(await sha256(resaved)).toBe(savedSha);

    const inside = await f.docker.run(['run', '--rm', '--network', 'none', BIG_IMAGE, 'sha256sum', '/data/big.bin'], {
      timeoutMs: 120_000,
    });
    expect(inside.stdout.split(' ')[0]).toBe(bigSha);
  }, 240_000);
});
