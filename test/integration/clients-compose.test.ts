import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { BUSYBOX_IMAGE, dockerRequest } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { CLIENT_PATH, runProcess, type ProcessResult } from '../helpers/run-process.js';

// Debian's docker-compose 1.29.2 (docker-py underneath; `exec` runs the docker CLI unless
// COMPOSE_INTERACTIVE_NO_CLI=1) on a one-service project, straight at dockerd and through the guard
// with the variables such a user needs: same output, same exit codes, same daemon state.

const socketPath = inject('dockerSocket');
const PROJECT = 'dsfcompose';

// What `up`, `ps`, `logs`, `exec`, `restart` and `down -v` ask: compose 1.29 inspects the project's
// named volumes on every command (VOLUMES), `up` reads `/info` and the image (INFO, IMAGES).
const COMPOSE_ENV = { CONTAINERS: '1', IMAGES: '1', INFO: '1', VOLUMES: '1', EXEC: '1', POST: '1' };

const COMPOSE_FILE = `version: "2.4"
services:
  web:
    image: ${BUSYBOX_IMAGE}
    command: ["sh", "-c", "echo web started; exec sleep 300"]
    network_mode: none
    volumes:
      - data:/data
volumes:
  data: {}
`;

let directory: string;

const compose = (dockerHost: string, args: readonly string[], env: Record<string, string> = {}): Promise<ProcessResult> =>
  runProcess('docker-compose', ['--ansi', 'never', '-p', PROJECT, ...args], {
    env: { PATH: CLIENT_PATH, HOME: directory, DOCKER_CONFIG: directory, DOCKER_HOST: dockerHost, ...env },
    cwd: directory,
    timeoutMs: 60_000,
  });

const projectState = async (): Promise<{ containers: string[]; volumes: string[] }> => {
  const filter = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${PROJECT}`] }));
  const containers = JSON.parse((await dockerRequest(socketPath, 'GET', `/containers/json?all=1&filters=${filter}`)).body) as {
    Names: string[];
    State: string;
  }[];
  const volumes = JSON.parse((await dockerRequest(socketPath, 'GET', `/volumes?filters=${filter}`)).body) as { Volumes: { Name: string }[] | null };
  return {
    containers: containers.map((c) => `${c.Names.join(',')}:${c.State}`).sort(),
    volumes: (volumes.Volumes ?? []).map((v) => v.Name).sort(),
  };
};

/** The whole life of the project, as the outcome and the daemon's state after each command. */
async function lifecycle(dockerHost: string): Promise<unknown[]> {
  const steps: readonly (readonly [readonly string[], Record<string, string>?])[] = [
    [['up', '-d']],
    [['ps']],
    [['logs', '--no-color']],
    [['exec', '-T', 'web', 'sh', '-c', 'echo from-exec > /data/f; cat /data/f']],
    // docker-py's own hijack (exec start with Upgrade headers) instead of the docker CLI.
    [['exec', '-T', 'web', 'ls', '/data'], { COMPOSE_INTERACTIVE_NO_CLI: '1' }],
    [['restart', '-t', '0']],
    [['down', '-v', '-t', '0']],
  ];
  const outcomes: unknown[] = [];
  for (const [args, env] of steps) {
    const result = await compose(dockerHost, args, env);
    outcomes.push({ args: args.join(' '), code: result.code, timedOut: result.timedOut, stdout: result.stdout, stderr: result.stderr, state: await projectState() });
  }
  return outcomes;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'dsf-compose-'));
  await writeFile(join(directory, 'docker-compose.yml'), COMPOSE_FILE);
});

afterAll(async () => {
  await compose(`unix://${socketPath}`, ['down', '-v', '-t', '0']).catch(() => undefined);
  await rm(directory, { recursive: true, force: true });
});

describe('docker-compose 1.29 through the guard', () => {
  let guard: ServedFilter;
  beforeAll(async () => {
    guard = await serve(createSocketFilter({ policy: tecnativaPreset(COMPOSE_ENV), socketPath }));
  });
  afterAll(async () => {
    await guard?.close();
  });

  it(`up, ps, logs, exec, restart, down -v with ${Object.keys(COMPOSE_ENV).join(', ')} behave as direct`, async () => {
    const direct = await lifecycle(`unix://${socketPath}`);
    // The control must be a working project: up brought the service up, down removed everything.
    expect(direct[0]).toMatchObject({ code: 0, state: { containers: [`/${PROJECT}_web_1:running`], volumes: [`${PROJECT}_data`] } });
    expect(direct[3]).toMatchObject({ code: 0, stdout: 'from-exec\n' });
    expect(direct[4]).toMatchObject({ code: 0, stdout: 'f\n' });
    expect(direct.at(-1)).toMatchObject({ code: 0, state: { containers: [], volumes: [] } });
    expect(await lifecycle(guard.dockerHost)).toEqual(direct);
  }, 240_000);
});

describe('a read-only compose user', () => {
  beforeAll(async () => {
    const up = await compose(`unix://${socketPath}`, ['up', '-d']);
    expect(up.code, up.stderr).toBe(0);
  });
  afterAll(async () => {
    await compose(`unix://${socketPath}`, ['down', '-v', '-t', '0']);
  });

  it('needs VOLUMES=1 besides CONTAINERS=1 for ps and logs (compose inspects the named volumes first)', async () => {
    const without = await serve(createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1' }), socketPath }));
    const withVolumes = await serve(createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', VOLUMES: '1' }), socketPath }));
    try {
      const refused = await compose(without.dockerHost, ['ps']);
      expect(refused.code).not.toBe(0);
      // What compose shows for the guard's 403: its message, after docker-py's wording.
      expect(refused.stderr).toMatch(/GET \/v1\.41\/volumes\/dsfcompose_data needs VOLUMES=1/);
      for (const args of [['ps'], ['logs', '--no-color']]) {
        const direct = await compose(`unix://${socketPath}`, args);
        expect(direct.code).toBe(0);
        expect(await compose(withVolumes.dockerHost, args)).toEqual(direct);
      }
      const startedAt = async () =>
        (JSON.parse((await dockerRequest(socketPath, 'GET', `/containers/${PROJECT}_web_1/json`)).body) as { State: { StartedAt: string } }).State.StartedAt;
      const before = await startedAt();
      const denied = await compose(withVolumes.dockerHost, ['restart', '-t', '0']);
      // compose 1.29 prints the guard's reason per container and still exits 0 (as it does for any
      // daemon error in restart, stop and down): docs/clients.md says so.
      expect(denied.code).toBe(0);
      expect(denied.stderr).toMatch(/ERROR: for dsfcompose_web_1 +POST \/v1\.41\/containers\/[0-9a-f]{64}\/restart needs POST=1/);
      expect(await startedAt()).toBe(before);
    } finally {
      await without.close();
      await withVolumes.close();
    }
  });
});
