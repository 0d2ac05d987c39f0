import { describe, expect, test } from 'vitest';
import type { RequestEvent } from '../../src/filter.js';
import { parseLogLevel, createBatchedWriter, createLogger, LOG_LEVELS, type LogLevel } from '../../src/log.js';

const NOW = new Date('2025-01-02T03:04:05.678Z');

function capture(level: LogLevel) {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (line) => lines.push(line), now: () => NOW });
  return { logger, lines };
}

const denied: RequestEvent = {
  method: 'POST',
  path: '/v1.41/containers/create?name=web',
  allowed: false,
  rule: 'POST',
  reason: 'docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1 and CONTAINERS=1',
  status: 403,
  durationMs: 0.234,
  upgrade: false,
};

const allowed: RequestEvent = {
  method: 'GET',
  path: '/v1.41/containers/json?all=1',
  allowed: true,
  rule: 'CONTAINERS',
  reason: 'GET /v1.41/containers/json is allowed by CONTAINERS',
  status: 200,
  durationMs: 12.345,
  upgrade: false,
};

describe('request lines', () => {
  test('a denial is one logfmt line at info, path without its query, with the reason', () => {
    const { logger, lines } = capture('info');
    logger.request(denied);
    expect(lines).toEqual([
      'time=2025-01-02T03:04:05.678Z level=info msg=request method=POST path=/v1.41/containers/create decision=denied rule=POST status=403 duration_ms=0.2 reason="docker-socket-filter denied POST /v1.41/containers/create: it needs POST=1 and CONTAINERS=1"\n',
    ]);
  });

  test('an allowed request is logged at debug only, without the reason', () => {
    const info = capture('info');
    info.logger.request(allowed);
    expect(info.lines).toEqual([]);
    const debug = capture('debug');
    debug.logger.request(allowed);
    expect(debug.lines).toEqual([
      'time=2025-01-02T03:04:05.678Z level=debug msg=request method=GET path=/v1.41/containers/json decision=allowed rule=CONTAINERS status=200 duration_ms=12.3\n',
    ]);
  });

  test('an allowed request dockerd could not serve (502) is a warning', () => {
    const { logger, lines } = capture('warning');
    logger.request({ ...allowed, status: 502 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('level=warning msg=request method=GET');
    expect(lines[0]).toContain('status=502');
  });

  test('denials are not logged above info', () => {
    for (const level of ['notice', 'warning', 'err', 'emerg'] as const) {
      const { logger, lines } = capture(level);
      logger.request(denied);
      expect(lines, level).toEqual([]);
    }
  });

  test('a malformed target logs the path as sent (escaped, no query, at most 200 characters) and rule=-', () => {
    const { logger, lines } = capture('info');
    const reason = 'docker-socket-filter refused the request-target: the path contains a dot segment (. or ..)';
    logger.request({ ...denied, path: null, target: '/v1.41/containers/../images/json?secret=1', rule: null, status: 400, reason });
    expect(lines[0]).toContain(' path=/v1.41/containers/../images/json decision=denied rule=- status=400 ');
    logger.request({ ...denied, path: null, target: '/v1.41/a"b\u0007c', rule: null, status: 400, reason });
    expect(lines[1]).toContain(' path="/v1.41/a\\"b\\u0007c" decision=denied');
    logger.request({ ...denied, path: null, target: `/${'x'.repeat(500)}`, rule: null, status: 400, reason });
    expect(lines[2]).toContain(` path="/${'x'.repeat(199)}…" decision=denied`);
    logger.request({ ...denied, path: null, rule: null, status: 400, reason });
    expect(lines[3]).toContain(' path=- decision=denied rule=- status=400 ');
  });

  test('upgrades are marked', () => {
    const { logger, lines } = capture('debug');
    logger.request({ ...allowed, method: 'POST', path: '/v1.41/exec/abc/start', status: 101, upgrade: true });
    expect(lines[0]).toContain(' status=101 duration_ms=12.3 upgrade=true\n');
  });

  test('a build argument in the query never reaches the log', () => {
    const { logger, lines } = capture('debug');
    logger.request({ ...allowed, path: '/v1.41/build?buildargs=%7B%22TOKEN%22%3A%22s3cr3t%22%7D', rule: 'BUILD' });
    expect(lines[0]).not.toContain('s3cr3t');
    expect(lines[0]).not.toContain('buildargs');
    expect(lines[0]).toContain(' path=/v1.41/build ');
  });
});

describe('values cannot break the line', () => {
  test('quotes, newlines and = are JSON-quoted', () => {
    const { logger, lines } = capture('info');
    logger.log('info', 'hello world', { a: 'x"y', b: 'line\nbreak', c: 'k=v', d: 'plain/ok:1', e: 3, f: true, g: null, h: undefined });
    expect(lines).toEqual([
      'time=2025-01-02T03:04:05.678Z level=info msg="hello world" a="x\\"y" b="line\\nbreak" c="k=v" d=plain/ok:1 e=3 f=true\n',
    ]);
  });
});

describe('levels', () => {
  test.each(LOG_LEVELS.map((level, index) => [level, index] as const))('at %s, only lines at that level or more severe', (level, index) => {
    const { logger, lines } = capture(level);
    for (const l of LOG_LEVELS) logger.log(l, l);
    expect(lines.map((line) => /level=(\w+)/.exec(line)?.[1])).toEqual(LOG_LEVELS.slice(index));
    expect(logger.enabled('emerg')).toBe(true);
    expect(logger.enabled('debug')).toBe(level === 'debug');
  });

  test.each<[string, LogLevel | undefined]>([
    ['info', 'info'],
    ['EMERG', 'emerg'],
    [' notice', 'notice'],
    ['warn', undefined],
    ['', undefined],
  ])('parseLogLevel(%j) is %j', (text, level) => {
    expect(parseLogLevel(text)).toBe(level);
  });
});

describe('createBatchedWriter', () => {
  test('lines written in one turn of the event loop reach the writer in one piece, in order', async () => {
    const writes: string[] = [];
    const lines = createBatchedWriter((text) => writes.push(text));
    lines.write('a\n');
    lines.write('b\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n']);
    lines.write('c\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n', 'c\n']);
  });

  test('flush hands over what is pending at once, and nothing twice', async () => {
    const writes: string[] = [];
    const lines = createBatchedWriter((text) => writes.push(text));
    lines.write('a\n');
    lines.flush();
    expect(writes).toEqual(['a\n']);
    lines.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\n']);
  });
});
