import { inject } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { BUSYBOX_IMAGE, dockerRequest } from './dockerd.js';
import { dockerCli, type DockerCli } from './docker-cli.js';
import { serve, type ServedFilter } from './filter-server.js';

export { BUSYBOX_IMAGE, dockerRequest };

/** Everything a Tecnativa-preset test needs: the served filter and a CLI pointed at it. */
export interface TecnativaFixture {
  readonly socketPath: string;
  readonly served: ServedFilter;
  readonly docker: DockerCli;
  close(): Promise<void>;
}

/**
 * Serves `createSocketFilter({ policy: tecnativaPreset(env) })` in front of the private dockerd.
 * `env` is the whole environment of the preset (never `process.env`).
 *
 * @example
 * ```ts
 * const fixture = await tecnativaFixture({ CONTAINERS: '1' });
 * await fixture.docker.run(['ps']);
 * await fixture.close();
 * ```
 */
export async function tecnativaFixture(env: Record<string, string>): Promise<TecnativaFixture> {
  const socketPath = inject('dockerSocket');
  const filter = createSocketFilter({ policy: tecnativaPreset(env), socketPath });
  const served = await serve(filter);
  const docker = dockerCli(served.dockerHost);
  return {
    socketPath,
    served,
    docker,
    async close() {
      await served.close();
      docker.dispose();
    },
  };
}

/** Every Tecnativa variable granted: the proxy is then only a proxy. */
export const ALL_GRANTED: Record<string, string> = Object.fromEntries(
  [
    'EVENTS', 'PING', 'VERSION', 'AUTH', 'SECRETS', 'POST', 'BUILD', 'COMMIT', 'CONFIGS', 'CONTAINERS',
    'ALLOW_START', 'ALLOW_STOP', 'ALLOW_RESTARTS', 'DISTRIBUTION', 'EXEC', 'GRPC', 'IMAGES', 'INFO',
    'NETWORKS', 'NODES', 'PLUGINS', 'SERVICES', 'SESSION', 'SWARM', 'SYSTEM', 'TASKS', 'VOLUMES',
  ].map((name) => [name, '1']),
);

/**
 * Creates (and optionally starts) a container directly on dockerd, bypassing the filter.
 *
 * @example
 * ```ts
 * const id = await createContainer(socketPath, ['sleep', '300'], { start: true });
 * ```
 */
export async function createContainer(
  socketPath: string,
  cmd: readonly string[],
  options: { start?: boolean; name?: string; tty?: boolean; openStdin?: boolean } = {},
): Promise<string> {
  const query = options.name === undefined ? '' : `?name=${encodeURIComponent(options.name)}`;
  const created = await dockerRequest(socketPath, 'POST', `/containers/create${query}`, {
    Image: BUSYBOX_IMAGE,
    Cmd: cmd,
    Tty: options.tty ?? false,
    OpenStdin: options.openStdin ?? false,
    HostConfig: { NetworkMode: 'none' },
  });
  if (created.status !== 201) throw new Error(`create failed: ${created.status} ${created.body}`);
  const id = (JSON.parse(created.body) as { Id: string }).Id;
  if (options.start === true) {
    const started = await dockerRequest(socketPath, 'POST', `/containers/${id}/start`);
    if (started.status !== 204) throw new Error(`start failed: ${started.status} ${started.body}`);
  }
  return id;
}

/**
 * Whether a container exists, and its state, straight from dockerd.
 */
export async function containerState(socketPath: string, id: string): Promise<{ exists: boolean; running: boolean }> {
  const { status, body } = await dockerRequest(socketPath, 'GET', `/containers/${id}/json`);
  if (status === 404) return { exists: false, running: false };
  return { exists: true, running: (JSON.parse(body) as { State: { Running: boolean } }).State.Running };
}

/** Removes a container straight on dockerd, ignoring "no such container". */
export async function removeContainer(socketPath: string, id: string): Promise<void> {
  await dockerRequest(socketPath, 'DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined);
}
