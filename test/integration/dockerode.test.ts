import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_GRANTED, BUSYBOX_IMAGE, tecnativaFixture, type TecnativaFixture } from '../helpers/fixtures.js';

function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks).toString('utf8');
}

describe('dockerode through the filter', () => {
  let f: TecnativaFixture;
  let docker: Docker;
  beforeAll(async () => {
    f = await tecnativaFixture(ALL_GRANTED);
    docker = new Docker({ host: '127.0.0.1', port: f.served.port, protocol: 'http' });
  });
  afterAll(async () => {
    await f.close();
  });

  it('lists containers and pings', async () => {
    expect(Array.isArray(await docker.listContainers({ all: true }))).toBe(true);
    expect(String(await docker.ping())).toBe('OK');
  });

  it('create, start, wait, logs and remove', async () => {
    const container = await docker.createContainer({
      Image: BUSYBOX_IMAGE,
      Cmd: ['sh', '-c', 'echo via-dockerode; exit 3'],
      HostConfig: { NetworkMode: 'none' },
    });
    // Wait is requested before start, as the CLI does; its response stays open, silent, until exit.
    const waited = container.wait({ condition: 'next-exit' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await container.start();
    expect(await waited).toMatchObject({ StatusCode: 3 });
    const logs = await container.logs({ stdout: true, stderr: true });
    expect(logs.toString('latin1')).toContain('via-dockerode');
    await container.remove();
    await expect(container.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('exec with a hijacked stream: stdin in, demultiplexed output out, exit code', async () => {
    const container = await docker.createContainer({
      Image: BUSYBOX_IMAGE,
      Cmd: ['sleep', '300'],
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await container.start();
      const exec = await container.exec({
        Cmd: ['sh', '-c', 'read line; echo out:$line; echo err:$line >&2; exit 6'],
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: true, stdin: true });
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const out = collect(stdout);
      const err = collect(stderr);
      docker.modem.demuxStream(stream, stdout, stderr);
      stream.write('hello\n');
      await new Promise((resolve) => stream.on('end', resolve));
      expect(out()).toBe('out:hello\n');
      expect(err()).toBe('err:hello\n');
      expect(await exec.inspect()).toMatchObject({ ExitCode: 6, Running: false });
    } finally {
      await container.remove({ force: true });
    }
  });

  it('a denied call rejects with the status and the reason as dockerd would', async () => {
    const readOnly = await tecnativaFixture({ CONTAINERS: '1' });
    try {
      const client = new Docker({ host: '127.0.0.1', port: readOnly.served.port, protocol: 'http' });
      await expect(client.createContainer({ Image: BUSYBOX_IMAGE })).rejects.toMatchObject({
        statusCode: 403,
        json: { message: expect.stringContaining('needs POST=1') },
      });
    } finally {
      await readOnly.close();
    }
  });
});
