import { describe, expect, test } from 'vitest';
import { createSocketFilter, isSocketFilterError, tecnativaPreset, type Policy } from '../../src/index.js';

function thrownBy(fn: () => unknown): TypeError & { code?: string } {
  try {
    fn();
  } catch (error) {
    return error as TypeError & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('createSocketFilter options', () => {
  test('defaults', () => {
    const filter = createSocketFilter();
    expect(filter.options).toEqual({
      policy: filter.policy,
      clients: undefined,
      socketPath: '/var/run/docker.sock',
      minApiVersion: '1.24',
      onRequest: undefined,
      maxUpstreamConnections: 512,
      upstreamWaitTimeoutMs: 10_000,
      uploadIdleTimeoutMs: 60_000,
      maxHeldBytes: 16 * 1024 * 1024,
    });
    expect(filter.heldStats()).toEqual({ held: 0, max: 16 * 1024 * 1024, refused: 0 });
    expect(filter.policy?.name).toBe('tecnativa');
    expect(Object.isFrozen(filter)).toBe(true);
    expect(Object.isFrozen(filter.options)).toBe(true);
  });

  test('maxHeldBytes sizes the budget heldStats reports', () => {
    const filter = createSocketFilter({ maxHeldBytes: 1024 * 1024 });
    expect(filter.options.maxHeldBytes).toBe(1024 * 1024);
    expect(filter.heldStats()).toEqual({ held: 0, max: 1024 * 1024, refused: 0 });
  });

  test('the result is a new object; the caller options are not kept or changed', () => {
    const options = { socketPath: '/tmp/docker.sock' };
    const filter = createSocketFilter(options);
    expect(filter.options).not.toBe(options);
    expect(options).toEqual({ socketPath: '/tmp/docker.sock' });
  });

  test.each([
    [{ socketpath: '/x' }, '`socketpath`'],
    [{ policy: tecnativaPreset({}), polcy: 1 }, '`polcy`'],
    [{ socketPath: 42 }, '`socketPath`'],
    [{ socketPath: '' }, '`socketPath`'],
    [{ minApiVersion: '1' }, '`minApiVersion`'],
    [{ minApiVersion: 1.24 }, '`minApiVersion`'],
    [{ maxUpstreamConnections: 0 }, '`maxUpstreamConnections`'],
    [{ maxUpstreamConnections: 1.5 }, '`maxUpstreamConnections`'],
    [{ upstreamWaitTimeoutMs: '10' }, '`upstreamWaitTimeoutMs`'],
    [{ uploadIdleTimeoutMs: -1 }, '`uploadIdleTimeoutMs`'],
    [{ maxHeldBytes: 0 }, '`maxHeldBytes`'],
    [{ maxHeldBytes: 1024.5 }, '`maxHeldBytes`'],
    [{ maxHeldBytes: '16MiB' }, '`maxHeldBytes`'],
    [{ maxHeldBytes: Number.POSITIVE_INFINITY }, '`maxHeldBytes`'],
    [{ policy: 'tecnativa' }, '`policy`'],
    [{ policy: { name: 'x', rules: [], extra: 1 } }, '`policy.extra`'],
    [{ policy: { name: '', rules: [] } }, '`policy.name`'],
    [{ policy: { name: 'x', rules: {} } }, '`policy.rules`'],
    [{ policy: { name: 'x', rules: [], hints: { sections: { a: 1 } } } }, '`policy.hints.sections.a`'],
  ])('%j throws a TypeError naming %s', (options, name) => {
    const error = thrownBy(() => createSocketFilter(options as never));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain(name);
    expect(isSocketFilterError(error)).toBe(true);
  });

  test('options that are not an object are refused', () => {
    expect(() => createSocketFilter(null as never)).toThrow(TypeError);
    expect(() => createSocketFilter([] as never)).toThrow(TypeError);
  });
});

describe('policy rule validation', () => {
  const withRule = (rule: unknown): Policy => ({ name: 'custom', rules: [rule as never] });

  test.each([
    [{ id: 'A', effect: 'allow', paths: ['containers/json'] }, 'must start with /'],
    [{ id: 'A', effect: 'allow', paths: ['/containers//json'] }, 'empty or dot segment'],
    [{ id: 'A', effect: 'allow', paths: ['/containers/../json'] }, 'empty or dot segment'],
    [{ id: 'A', effect: 'allow', paths: ['/containers/a**'] }, '** must be a whole segment'],
    [{ id: 'A', effect: 'allow', paths: ['/containers/[a'] }, 'not a valid glob'],
    [{ id: 'A', effect: 'allow', paths: ['/a\\b'] }, 'backslash'],
    [{ id: 'A', effect: 'allow', paths: [] }, '`paths`'],
    [{ id: 'A', effect: 'permit', paths: ['/x'] }, '`effect`'],
    [{ id: '', effect: 'allow', paths: ['/x'] }, '`id`'],
    [{ id: 'A', effect: 'allow', methods: ['PATCH'], paths: ['/x'] }, '"PATCH"'],
    [{ id: 'A', effect: 'allow', methods: [], paths: ['/x'] }, '`methods`'],
    [{ id: 'A', effect: 'allow', access: 'readonly', paths: ['/x'] }, '`access`'],
    [{ id: 'A', effect: 'allow', paths: ['/x'], when: 1 }, 'unknown key `when`'],
  ])('%j is refused: %s', (rule, message) => {
    const error = thrownBy(() => createSocketFilter({ policy: withRule(rule) }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.code).toBe('ERR_DSF_INVALID_RULE');
    expect(error.message).toContain('policy.rules[0]');
    expect(error.message).toContain(message);
  });

  test('globs: * stays within a segment, ** spans segments', () => {
    const { evaluate } = createSocketFilter({
      policy: {
        name: 'custom',
        rules: [
          { id: 'inspect', effect: 'allow', methods: ['GET'], paths: ['/containers/*/json'] },
          { id: 'images', effect: 'allow', methods: ['GET'], paths: ['/images/**'] },
        ],
      },
    });
    expect(evaluate('GET', '/v1.41/containers/web/json')).toMatchObject({ allowed: true, rule: 'inspect' });
    expect(evaluate('GET', '/v1.41/containers/a/b/json').allowed).toBe(false);
    expect(evaluate('GET', '/v1.41/images/registry:5000/app/json')).toMatchObject({ allowed: true, rule: 'images' });
    expect(evaluate('POST', '/v1.41/images/create')).toMatchObject({ allowed: false, rule: 'default-deny' });
  });

  test('first matching rule decides, in order', () => {
    const { evaluate } = createSocketFilter({
      policy: {
        name: 'custom',
        rules: [
          { id: 'no-exec', effect: 'deny', paths: ['/containers/*/exec'], reason: 'exec is never allowed here' },
          { id: 'containers', effect: 'allow', paths: ['/containers/**'] },
        ],
      },
    });
    expect(evaluate('POST', '/v1.41/containers/web/exec')).toEqual({
      allowed: false,
      status: 403,
      rule: 'no-exec',
      reason: 'docker-socket-filter denied POST /v1.41/containers/web/exec: exec is never allowed here',
      path: '/v1.41/containers/web/exec',
    });
    expect(evaluate('POST', '/v1.41/containers/web/start').allowed).toBe(true);
  });
});
