import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';

// Bodies recorded from real clients against the private dockerd (test/fixtures/host-bodies/record.mts).
interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: string;
}
const CLIENTS = ['docker-cli-28', 'docker-compose-1.29', 'dockerode'] as const;
const recorded = CLIENTS.flatMap((client) =>
  (JSON.parse(readFileSync(new URL(`../fixtures/host-bodies/${client}.json`, import.meta.url), 'utf8')) as Recorded[]).map(
    (entry) => [client, entry.path.split('?')[0] as string, entry] as const,
  ),
);

const DAEMON = { defaultRuntime: 'runc', cgroupVersion: '1', apiVersion: '1.41', engineVersion: '20.10.24' };
const filter = createSocketFilter({
  policy: tecnativaPreset({ CONTAINERS: '1', VOLUMES: '1', EXEC: '1', POST: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/srv/appdata' }),
});

describe('PROTECT_HOST=1 passes what real clients send for ordinary workloads', () => {
  test('the fixtures hold every client', () => {
    expect(new Set(recorded.map(([client]) => client))).toEqual(new Set(CLIENTS));
  });

  test.each(recorded)('%s %s', (_client, _path, entry) => {
    const request = { body: entry.body, bodyLength: Buffer.byteLength(entry.body), daemon: DAEMON, ...(entry.contentType === undefined ? {} : { contentType: entry.contentType }) };
    const decision = filter.evaluate(entry.method, entry.path, request);
    expect(decision.reason).not.toContain('denied');
    expect(decision.allowed).toBe(true);
  });

  test.each(recorded.filter(([, path]) => path.endsWith('/containers/create')))('%s %s made privileged is refused', (_client, _path, entry) => {
    const body = JSON.parse(entry.body) as { HostConfig?: Record<string, unknown> };
    body.HostConfig = { ...body.HostConfig, Privileged: true };
    const decision = filter.evaluate('POST', entry.path, { body: JSON.stringify(body), contentType: 'application/json', daemon: DAEMON });
    expect(decision).toMatchObject({ allowed: false, rule: 'ALLOW_PRIVILEGED', field: 'HostConfig.Privileged' });
  });
});
