import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RequestEvent } from '../../src/filter.js';
import { ATOMIC_WRITE_BYTES, parseLogLevel, createBatchedWriter, createLogger, LOG_LEVELS, type LogLevel } from '../../src/log.js';

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

describe('createBatchedWriter pieces', () => {
  test('a burst is handed over in pieces of whole lines of at most ATOMIC_WRITE_BYTES, nothing lost or reordered', async () => {
    const writes: string[] = [];
    const lines = createBatchedWriter((text) => writes.push(text));
    const written = Array.from({ length: 500 }, (_, i) => `time=x level=info msg=request n=${i} reason="é ${'x'.repeat(i % 97)}"\n`);
    for (const line of written) lines.write(line);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes.length).toBeGreaterThan(1);
    for (const piece of writes) {
      expect(Buffer.byteLength(piece)).toBeLessThanOrEqual(ATOMIC_WRITE_BYTES);
      expect(piece.endsWith('\n')).toBe(true);
    }
    expect(writes.join('')).toBe(written.join(''));
  });

  test('a line longer than a piece goes alone, whole', async () => {
    const writes: string[] = [];
    const lines = createBatchedWriter((text) => writes.push(text));
    const long = `${'y'.repeat(ATOMIC_WRITE_BYTES + 10)}\n`;
    lines.write('a\n');
    lines.write(long);
    lines.write('b\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\n', long, 'b\n']);
  });
});

describe('floods of identical denials', () => {
  const INTERVAL = 10_000;

  function flood(options: { maxKeys?: number; maxKeyBytes?: number; level?: LogLevel } = {}) {
    const lines: string[] = [];
    const { level = 'info', ...repeats } = options;
    const logger = createLogger({ level, write: (line) => lines.push(line), repeats: { intervalMs: INTERVAL, ...repeats } });
    return { logger, lines };
  }

  /** What a line says `repeated=`, or 1 for a line written for one request. */
  const countOf = (line: string): number => Number(/ repeated=(\d+)\n$/.exec(line)?.[1] ?? 1);

  beforeEach(() => {
    vi.useFakeTimers({ now: NOW });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test('the first is written at once, the rest as one count per interval while the flood lasts', () => {
    const { logger, lines } = flood();
    for (let index = 0; index < 1000; index++) logger.request(denied);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(' decision=denied rule=POST status=403 duration_ms=0.2 reason=');
    vi.advanceTimersByTime(INTERVAL);
    expect(lines.slice(1)).toEqual([
      'time=2025-01-02T03:04:15.678Z level=info msg=request method=POST path=/v1.41/containers/create decision=denied rule=POST status=403 repeated=999\n',
    ]);
    for (let index = 0; index < 500; index++) logger.request(denied);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^time=2025-01-02T03:04:25\.678Z .* status=403 repeated=500\n$/);
    // Every denial is accounted for.
    expect(lines.reduce((total, line) => total + countOf(line), 0)).toBe(1500);
  });

  test('after a quiet interval the flood is over: the timer stops and the next one is written at once', () => {
    const { logger, lines } = flood();
    logger.request(denied);
    logger.request(denied);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines).toHaveLength(2);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
    logger.request(denied);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toContain(' duration_ms=0.2 reason=');
  });

  test.each<[string, Partial<RequestEvent>]>([
    ['another path', { path: '/v1.41/containers/abc/kill' }],
    ['another method', { method: 'PUT' }],
    ['another rule', { rule: 'default-deny' }],
    ['another status', { status: 400 }],
  ])('a different denial (%s) is written at once during a flood', (_name, change) => {
    const { logger, lines } = flood();
    for (let index = 0; index < 10; index++) logger.request(denied);
    logger.request({ ...denied, ...change });
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(' reason=');
  });

  test('the query is not part of the identity: varying it does not escape the count', () => {
    const { logger, lines } = flood();
    for (let index = 0; index < 100; index++) logger.request({ ...denied, path: `/v1.41/containers/create?name=x${index}` });
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines[1]).toContain(' repeated=99\n');
  });

  test('memory is bounded: the least recently seen key is forgotten, its count reported in one line', () => {
    const { logger, lines } = flood({ maxKeys: 3 });
    const paths = ['/a', '/b', '/c', '/d', '/e'];
    for (const path of paths) for (let index = 0; index < 4; index++) logger.request({ ...denied, path });
    // Each key is news the first time: five lines; /a and /b were forgotten with 3 held back each.
    expect(lines).toHaveLength(5);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines.slice(5).map((line) => line.replace(/^time=\S+ /, ''))).toEqual([
      'level=info msg=request method=POST path=/c decision=denied rule=POST status=403 repeated=3\n',
      'level=info msg=request method=POST path=/d decision=denied rule=POST status=403 repeated=3\n',
      'level=info msg=request method=POST path=/e decision=denied rule=POST status=403 repeated=3\n',
      'level=info msg="repeated lines not itemised" keys_dropped=2 repeated=6\n',
    ]);
    expect(lines.reduce((total, line) => total + countOf(line), 0)).toBe(20);
  });

  test('a key seen again moves to the back: the flood that goes on is not the one forgotten', () => {
    const { logger, lines } = flood({ maxKeys: 2 });
    logger.request({ ...denied, path: '/flood' });
    logger.request({ ...denied, path: '/one' });
    logger.request({ ...denied, path: '/flood' });
    logger.request({ ...denied, path: '/two' });
    logger.request({ ...denied, path: '/flood' });
    expect(lines).toHaveLength(3);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines[3]).toContain(' path=/flood decision=denied rule=POST status=403 repeated=2\n');
  });

  test('the key text is bounded too (long paths)', () => {
    const { logger, lines } = flood({ maxKeyBytes: 300 });
    const long = (letter: string) => `/${letter.repeat(200)}`;
    logger.request({ ...denied, path: long('a') });
    logger.request({ ...denied, path: long('a') });
    logger.request({ ...denied, path: long('b') });
    logger.request({ ...denied, path: long('a') });
    // /aaa… was forgotten when /bbb… came: written again.
    expect(lines).toHaveLength(3);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines.at(-1)).toBe(`time=2025-01-02T03:04:15.678Z level=info msg="repeated lines not itemised" keys_dropped=1 repeated=1\n`);
  });

  test('flush writes what is held back at once, forgets every key and stops the timer', () => {
    const { logger, lines } = flood();
    for (let index = 0; index < 7; index++) logger.request(denied);
    logger.flush();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(' repeated=6\n');
    expect(vi.getTimerCount()).toBe(0);
    logger.request(denied);
    expect(lines).toHaveLength(3);
    logger.flush();
    expect(lines).toHaveLength(3);
  });

  test('rejections before a request are counted the same way, by status and reason', () => {
    const { logger, lines } = flood();
    for (let index = 0; index < 50; index++) logger.rejected({ status: 400, reason: 'Bad request' });
    logger.rejected({ status: 408, reason: 'The request headers did not arrive in time' });
    expect(lines).toEqual([
      'time=2025-01-02T03:04:05.678Z level=info msg=rejected status=400 reason="Bad request"\n',
      'time=2025-01-02T03:04:05.678Z level=info msg=rejected status=408 reason="The request headers did not arrive in time"\n',
    ]);
    vi.advanceTimersByTime(INTERVAL);
    expect(lines[2]).toBe('time=2025-01-02T03:04:15.678Z level=info msg=rejected status=400 reason="Bad request" repeated=49\n');
  });

  test('allowed requests at debug and 502 warnings are written every time', () => {
    const { logger, lines } = flood({ level: 'debug' });
    for (let index = 0; index < 3; index++) logger.request(allowed);
    for (let index = 0; index < 3; index++) logger.request({ ...allowed, status: 502 });
    expect(lines).toHaveLength(6);
  });

  test('nothing is remembered (and no timer runs) for lines the level leaves out', () => {
    const { logger, lines } = flood({ level: 'warning' });
    for (let index = 0; index < 3; index++) logger.request(denied);
    logger.rejected({ status: 400, reason: 'Bad request' });
    expect(lines).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('repeats: false writes every denial', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (line) => lines.push(line), repeats: false });
    for (let index = 0; index < 5; index++) logger.request(denied);
    expect(lines).toHaveLength(5);
  });

  test.each([
    [{ intervalMs: 0 }, 'repeats.intervalMs'],
    [{ maxKeys: 1.5 }, 'repeats.maxKeys'],
    [{ maxKeyBytes: -1 }, 'repeats.maxKeyBytes'],
  ])('a bad bound %j is a TypeError naming %s', (repeats, name) => {
    expect(() => createLogger({ level: 'info', repeats })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_DSF_INVALID_OPTION', message: `The \`${name}\` option must be a positive integer` }));
  });
});
