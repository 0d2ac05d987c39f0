import { describe, expect, test } from 'vitest';
import { misspelledVariables, startupWarnings } from '../../src/cli/warnings.js';
import { definePolicy } from '../../src/policy/define.js';
import { linuxserverPreset } from '../../src/presets/linuxserver.js';
import { tecnativaPreset } from '../../src/presets/tecnativa.js';
import type { ListenAddress } from '../../src/cli/args.js';

describe('misspelled variables get a did-you-mean, never a refusal', () => {
  test.each<[Record<string, string>, Array<[string, string]>]>([
    [{ CONTAINRES: '1' }, [['CONTAINRES', 'CONTAINERS']]],
    [{ CONTAINER: '1' }, [['CONTAINER', 'CONTAINERS']]],
    [{ EXECS: '1' }, [['EXECS', 'EXEC']]],
    [{ ALLOW_STAR: '1' }, [['ALLOW_STAR', 'ALLOW_START']]],
    [{ NETWORK: '1' }, [['NETWORK', 'NETWORKS']]],
    // The host protection and read variables are known too.
    [{ PROTECT_HOTS: '1' }, [['PROTECT_HOTS', 'PROTECT_HOST']]],
    [{ ALLOW_PRIVILEDGED: '1' }, [['ALLOW_PRIVILEDGED', 'ALLOW_PRIVILEGED']]],
    [{ VISIBLE_LABEL: 'traefik.enable=true' }, [['VISIBLE_LABEL', 'VISIBLE_LABELS']]],
    [{ PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: '/srv', REDACT_ENV: '1', STRICT_READ: '1' }, []],
    // Known names, operational names and other programs' variables are left alone.
    [{ CONTAINERS: '1', SOCKET_PATH: '/x', LOG_LEVEL: 'info', PATH: '/bin', HOME: '/root', LISTEN: ':2375' }, []],
    [{ HOST: 'web', HOSTNAME: 'x' }, []],
    // A short name counts only when its value reads as a grant.
    [{ HOST: '1' }, [['HOST', 'POST']]],
    [{ containres: '1' }, []],
  ])('%j', (env, expected) => {
    expect(misspelledVariables(env)).toEqual(expected);
  });
});

describe('serving beyond this host with more than the defaults is warned about once', () => {
  const everywhere: ListenAddress = { kind: 'tcp', host: undefined, port: 2375 };
  const loopback: ListenAddress = { kind: 'tcp', host: '127.0.0.1', port: 2375 };
  const unix: ListenAddress = { kind: 'unix', path: '/run/dsf.sock' };

  test.each<[string, ListenAddress[], ReturnType<typeof tecnativaPreset>, string | undefined]>([
    ['defaults everywhere', [everywhere], tecnativaPreset({}), undefined],
    ['CONTAINERS on loopback', [loopback], tecnativaPreset({ CONTAINERS: '1' }), undefined],
    ['CONTAINERS on a unix socket', [unix], tecnativaPreset({ CONTAINERS: '1' }), undefined],
    ['CONTAINERS everywhere', [everywhere], tecnativaPreset({ CONTAINERS: '1' }), 'CONTAINERS'],
    ['POST on 10.0.0.5', [{ kind: 'tcp', host: '10.0.0.5', port: 2375 }], tecnativaPreset({ POST: '1' }), 'POST'],
    ['linuxserver defaults everywhere', [everywhere], linuxserverPreset({}), undefined],
    ['a custom policy everywhere', [everywhere], definePolicy({ allow: ['GET /_ping'] }), '(custom policy)'],
  ])('%s', (_name, listen, policy, granted) => {
    const warnings = startupWarnings(listen, policy, {}).filter((warning) => warning.message.startsWith('serving'));
    if (granted === undefined) expect(warnings).toEqual([]);
    else {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.fields.granted).toBe(granted);
    }
  });
});

describe('POST with a section that carries a configuration, without PROTECT_HOST, is warned about', () => {
  const loopback: ListenAddress = { kind: 'tcp', host: '127.0.0.1', port: 2375 };
  const hostWarnings = (policy: ReturnType<typeof tecnativaPreset>) =>
    startupWarnings([loopback], policy, {}).filter((warning) => warning.message.startsWith('clients can take the host'));

  test.each<[Record<string, string>, string | undefined]>([
    [{ CONTAINERS: '1', POST: '1' }, 'containers'],
    [{ CONTAINERS: '1', SERVICES: '1', VOLUMES: '1', PLUGINS: '1', POST: '1' }, 'containers,services,volumes,plugins'],
    [{ VOLUMES: '1', POST: '1' }, 'volumes'],
    [{ CONTAINERS: '1' }, undefined],
    [{ POST: '1', ALLOW_RESTARTS: '1' }, undefined],
    [{ POST: '1', NETWORKS: '1' }, undefined],
  ])('%j', (env, writes) => {
    const warnings = hostWarnings(tecnativaPreset(env));
    if (writes === undefined) expect(warnings).toEqual([]);
    else {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).toContain('PROTECT_HOST=1 stops it');
      expect(warnings[0]?.fields.writes).toBe(writes);
    }
  });

  test('the linuxserver preset and custom policies are judged by what they grant', () => {
    expect(hostWarnings(linuxserverPreset({ CONTAINERS: '1', POST: '1' }))).toHaveLength(1);
    expect(hostWarnings(definePolicy({ allow: ['POST /containers/create'] }))).toHaveLength(1);
    expect(hostWarnings(definePolicy({ allow: ['GET /containers/json'] }))).toEqual([]);
  });
});
