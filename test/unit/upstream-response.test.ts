import { describe, expect, test } from 'vitest';
import { CHUNKED_INVALID, CHUNKED_NEED_MORE, createChunkedDecoder } from '../../src/proxy/chunked.js';
import { parseResponseHead } from '../../src/proxy/response-head.js';

/** Feeds `wire` to a fresh decoder in the given pieces; what came out and the last result. */
function decode(pieces: Buffer[]): { data: string; result: number; consumedInLast: number } {
  const decoder = createChunkedDecoder();
  let data = '';
  let result = CHUNKED_NEED_MORE;
  for (const piece of pieces) {
    result = decoder.feed(piece, (chunk) => {
      data += chunk.toString('latin1');
    });
    if (result !== CHUNKED_NEED_MORE) break;
  }
  return { data, result, consumedInLast: result };
}

/** Every way of cutting `text` in two, plus one byte at a time. */
function splits(text: string): Buffer[][] {
  const bytes = Buffer.from(text, 'latin1');
  const ways: Buffer[][] = [[bytes]];
  for (let at = 1; at < bytes.length; at++) ways.push([bytes.subarray(0, at), bytes.subarray(at)]);
  ways.push([...bytes].map((byte) => Buffer.from([byte])));
  return ways;
}

describe('createChunkedDecoder', () => {
  test.each<[string, string, string]>([
    ['one chunk', '2\r\nOK\r\n0\r\n\r\n', 'OK'],
    ['two chunks, hex sizes', 'a\r\n0123456789\r\n1F\r\n' + 'x'.repeat(31) + '\r\n0\r\n\r\n', '0123456789' + 'x'.repeat(31)],
    ['upper-case hex', 'A\r\n0123456789\r\n0\r\n\r\n', '0123456789'],
    ['extensions are dropped', '2;name=value\r\nOK\r\n0;last\r\n\r\n', 'OK'],
    ['trailers are dropped', '2\r\nOK\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n', 'OK'],
    ['leading zeros', '002\r\nOK\r\n000\r\n\r\n', 'OK'],
    ['empty body', '0\r\n\r\n', ''],
  ])('%s, however the bytes arrive', (_name, wire, expected) => {
    for (const pieces of splits(wire)) {
      const { data, result } = decode(pieces);
      expect(data).toBe(expected);
      // The body ended in the last piece, exactly at its end.
      expect(result).toBe((pieces.at(-1) as Buffer).length);
    }
  });

  test('reports where the body ended when more bytes follow it', () => {
    const decoder = createChunkedDecoder();
    const wire = Buffer.from('2\r\nOK\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n');
    expect(decoder.feed(wire, () => {})).toBe(12);
  });

  test('needs more until the last chunk and the final line', () => {
    const decoder = createChunkedDecoder();
    expect(decoder.feed(Buffer.from('2\r\nOK\r\n0\r\n'), () => {})).toBe(CHUNKED_NEED_MORE);
    expect(decoder.feed(Buffer.from('\r\n'), () => {})).toBe(2);
    // Nothing may follow a finished body on this decoder.
    expect(decoder.feed(Buffer.from('x'), () => {})).toBe(CHUNKED_INVALID);
  });

  test.each<[string, string]>([
    ['no size', '\r\nOK\r\n0\r\n\r\n'],
    ['a size that is not hex', 'g\r\nOK\r\n0\r\n\r\n'],
    ['a signed size', '+2\r\nOK\r\n0\r\n\r\n'],
    ['a size too large to count', 'fffffffffffffff\r\nx\r\n'],
    ['a bare LF after the size', '2\nOK\r\n0\r\n\r\n'],
    ['data longer than its size', '2\r\nOKK\r\n0\r\n\r\n'],
    ['a bare LF after the data', '2\r\nOK\n0\r\n\r\n'],
    ['a bare LF in an extension', '2;a\nOK\r\n0\r\n\r\n'],
    ['a bare LF in a trailer', '0\r\nX: 1\n\r\n'],
    ['a bare LF at the end', '0\r\n\r\r\n'],
    ['an over-long extension', `2;${'a'.repeat(5000)}\r\nOK\r\n0\r\n\r\n`],
  ])('%s is invalid', (_name, wire) => {
    for (const pieces of splits(wire)) expect(decode(pieces).result).toBe(CHUNKED_INVALID);
  });
});

describe('parseResponseHead', () => {
  const parse = (head: string, method = 'GET') => parseResponseHead(Buffer.from(`${head}\r\n\r\n`, 'latin1'), head.length, method);

  test.each<[string, string, string, object]>([
    [
      'a length',
      'HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2',
      'GET',
      { status: 200, reason: 'OK', headers: ['Api-Version', '1.41', 'Content-Length', '2'], framing: 'length', length: 2, keepAlive: true },
    ],
    [
      'chunked, framing headers dropped',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Type: application/json',
      'GET',
      { status: 200, headers: ['Content-Type', 'application/json'], framing: 'chunked', keepAlive: true },
    ],
    ['no length: read until close', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain', 'GET', { framing: 'close', keepAlive: false }],
    ['a coding without chunked: read until close', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip', 'GET', { framing: 'close', keepAlive: false }],
    ['HEAD: no body whatever the length', 'HTTP/1.1 200 OK\r\nContent-Length: 2', 'HEAD', { framing: 'none', headers: ['Content-Length', '2'], keepAlive: true }],
    ['204: no body', 'HTTP/1.1 204 No Content', 'POST', { status: 204, framing: 'none' }],
    ['304: no body', 'HTTP/1.1 304 Not Modified', 'GET', { status: 304, framing: 'none' }],
    ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0', 'GET', { framing: 'length', keepAlive: false }],
    ['HTTP/1.0 closes by default', 'HTTP/1.0 200 OK\r\nContent-Length: 0', 'GET', { keepAlive: false }],
    ['HTTP/1.0 with keep-alive', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0', 'GET', { keepAlive: true }],
    ['no reason phrase', 'HTTP/1.1 404\r\nContent-Length: 0', 'GET', { status: 404, reason: '' }],
    ['repeated identical lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2', 'GET', { headers: ['Content-Length', '2'], length: 2 }],
    ['whitespace around a value', 'HTTP/1.1 200 OK\r\nContent-Length:  2 \t', 'GET', { headers: ['Content-Length', '2'], length: 2 }],
  ])('%s', (_name, head, method, expected) => {
    expect(parse(head, method)).toMatchObject(expected);
  });

  test.each<[string, string, string]>([
    ['not HTTP', 'SSH-2.0-OpenSSH', 'invalid status line'],
    ['HTTP/2', 'HTTP/2 200 OK', 'invalid status line'],
    ['a short status', 'HTTP/1.1 20 OK', 'invalid status line'],
    ['an interim 100', 'HTTP/1.1 100 Continue', 'interim response'],
    ['a 101 on a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp', 'interim response'],
    ['two lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3', 'two lengths'],
    ['a length and chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked', 'both Content-Length and Transfer-Encoding'],
    ['a signed length', 'HTTP/1.1 200 OK\r\nContent-Length: +2', 'invalid Content-Length'],
    ['a list of lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2', 'invalid Content-Length'],
    ['a line without a colon', 'HTTP/1.1 200 OK\r\nContent-Length 2', 'invalid header line'],
    ['an obsolete folded line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued', 'invalid header line'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2', 'invalid header line'],
    ['a control character in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b', 'invalid header line'],
    ['a bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rb', 'invalid header line'],
    ['a bare LF in a value', 'HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 9', 'invalid header line'],
  ])('%s is refused', (_name, head, message) => {
    const result = parse(head);
    expect(typeof result).toBe('string');
    expect(result).toContain(message);
  });
});
