// The README's "One guard, many clients" file is what a newcomer copies first: it must validate and
// mean what its comments say.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { createSocketFilter } from '../../src/index.js';
import { parseConfig } from '../../src/config/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('## One guard, many clients'));
const text = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];

describe("the README's policy file", () => {
  test('is in the README', () => {
    expect(text).toContain('clients:');
  });

  const guard = createSocketFilter(parseConfig(text ?? '', { format: 'yaml' }).filter);
  const TRAEFIK = { address: '172.25.0.2', listener: 'tcp' };
  const PORTAINER = { address: '172.25.0.3', listener: 'tcp' };
  const MONITORING = { listener: 'ro' };

  test.each<[string, { address?: string; listener: string }, string, string, boolean]>([
    ['traefik', TRAEFIK, 'GET', '/v1.41/events', true],
    ['traefik', TRAEFIK, 'GET', '/v1.41/containers/json', true],
    ['traefik', TRAEFIK, 'POST', '/v1.41/containers/create', false],
    ['portainer', PORTAINER, 'POST', '/v1.41/containers/create', true],
    ['portainer', PORTAINER, 'POST', '/v1.41/volumes/create', true],
    ['monitoring', MONITORING, 'GET', '/v1.41/containers/x/logs', true],
    ['monitoring', MONITORING, 'POST', '/v1.41/containers/x/stop', false],
    [undefined as unknown as string, { address: '172.25.0.9', listener: 'tcp' }, 'GET', '/_ping', false],
  ])('%s: %s %s %s → %s', (name, client, method, target, allowed) => {
    const decision = guard.evaluate(method, target, { client });
    expect(decision.allowed).toBe(allowed);
    expect(decision.client).toBe(name);
  });

  test("portainer's creates are read by PROTECT_HOST: a privileged one is refused", () => {
    const create = (body: unknown) => guard.evaluate('POST', '/v1.41/containers/create', { client: PORTAINER, body: JSON.stringify(body), contentType: 'application/json' });
    expect(create({ Image: 'x', HostConfig: { Privileged: true } })).toMatchObject({ allowed: false, status: 403, field: 'HostConfig.Privileged' });
    expect(create({ Image: 'x', HostConfig: { Binds: ['/:/host'] } })).toMatchObject({ allowed: false, status: 403, field: 'HostConfig.Binds[0]' });
    expect(create({ Image: 'x' })).toMatchObject({ allowed: true });
  });

  test("traefik's inspects are rewritten (REDACT_ENV): the decision carries the obligation", () => {
    const decision = guard.evaluate('GET', '/v1.41/containers/web/json', { client: TRAEFIK });
    expect(decision.allowed).toBe(true);
    expect(decision.obligations).toMatchObject({ response: { kind: 'container-inspect', redactEnv: true } });
  });
});
