/**
 * A seeded generator of hostile HTTP/1.1 request heads: bad methods, bad targets, odd versions,
 * duplicate and conflicting framing headers, bare LF and bare CR, NUL bytes, obs-folds, upgrades,
 * requests smuggled in bodies. The same seed always gives the same bytes, so a failure reproduces
 * with `DSF_FUZZ_SEED=<seed>`.
 */

/** A small fast PRNG (mulberry32): deterministic per seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One request head the client wrote at the top level of a connection. */
export interface SentHead {
  /** Sent as `X-Fuzz-Id`, right after the request line, so the fake dockerd can say which head it got. */
  readonly id: number;
  readonly method: string;
  readonly target: string;
}

/** The bytes of one client connection and the heads among them. */
export interface FuzzConnection {
  readonly bytes: Buffer;
  /** Where to cut the writes (1 to 3 writes). */
  readonly cuts: readonly number[];
  readonly heads: readonly SentHead[];
}

// With CONTAINERS=1 POST=1 EXEC=1 (and the defaults EVENTS, PING, VERSION) these are allowed as
// written, for some method.
const ALLOWED_TARGETS = [
  '/_ping',
  '/v1.41/_ping',
  '/version',
  '/v1.41/version',
  '/v1.41/events?since=1&until=2',
  '/containers/json',
  '/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D',
  '/v1.41/containers/abc/json',
  '/v1.41/containers/abc/start',
  '/v1.41/containers/abc/stop?t=1',
  '/v1.41/containers/abc/attach?stream=1&stdout=1',
  '/v1.41/exec/abc/start',
  '/v1.41/containers/create?name=x',
  '/v1.41/containers/abc/logs?stdout=1',
  '/v1.41/containers/abc',
];

// Denied for every method: sections not granted, an old API version, segment tricks.
const DENIED_TARGETS = [
  '/images/json',
  '/v1.41/info',
  '/v1.23/containers/abc/start',
  '/v1.41/volumes',
  '/v1.41/build?t=x',
  '/containersXYZ/json',
  '/v1.41/swarm/init',
  '/v1.41/networks/create',
  '/v1.41/secrets',
  '/v1.41/plugins/pull',
  '/v1.41/images/create?fromImage=evil',
];

// Requests hidden where a correct reader sees body bytes (or a separate, denied request): none of
// them may ever reach dockerd.
const SMUGGLED = [
  'GET /v1.41/info HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /v1.41/images/create?fromImage=evil HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
  'DELETE /v1.41/volumes/data HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /v1.41/build HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'GET /v1.23/containers/abc/json HTTP/1.1\r\nHost: x\r\n\r\n',
];

const GOOD_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];
const ODD_METHODS = [
  'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND', 'M-SEARCH', 'get', 'Get', 'G ET', '', 'GET\0', 'GE\tT',
  '\xc4GET', 'X'.repeat(40), 'POST\r', 'PRI', 'SOURCE', 'QUERY',
];
const VERSIONS = ['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/1', 'http/1.1', 'HTTP/1.1 ', '', 'HTTP/1.1\0', 'HTTP/11', 'HTTP/1.1\t', 'HTTP/1.10'];

type Random = () => number;

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

function chance(random: Random, probability: number): boolean {
  return random() < probability;
}

/** One change to a target, of the kinds that make a proxy and dockerd read a path differently. */
function mutateTarget(random: Random, target: string): string {
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  const rest = query === -1 ? '' : target.slice(query);
  const slashes = [...path].flatMap((char, index) => (char === '/' ? [index] : []));
  const at = pick(random, slashes.length > 0 ? slashes : [0]);
  const insert = (text: string): string => `${path.slice(0, at)}${text}${path.slice(at)}${rest}`;
  switch (Math.floor(random() * 26)) {
    case 0: return insert('/..');
    case 1: return insert('/.');
    case 2: return insert('/%2e%2e');
    case 3: return insert('/%2E');
    case 4: return insert('/');
    case 5: return `${path.slice(0, at)}\\${path.slice(at + 1)}${rest}`;
    case 6: return `${path.slice(0, at)}%2f${path.slice(at + 1)}${rest}`;
    case 7: return `${path.slice(0, at)}%5C${path.slice(at + 1)}${rest}`;
    case 8: {
      // Percent-encode one letter: canonical, must be decided on the decoded path.
      const letters = [...path].flatMap((char, index) => (/[a-z]/.test(char) ? [index] : []));
      if (letters.length === 0) return target;
      const index = pick(random, letters);
      return `${path.slice(0, index)}%${path.charCodeAt(index).toString(16)}${path.slice(index + 1)}${rest}`;
    }
    case 9: return insert('/%252e%252e');
    case 10: return insert('%00');
    case 11: return insert('\0');
    case 12: return insert(' ');
    case 13: return insert('\t');
    case 14: return insert('\xff');
    case 15: return insert('\xc3\xa9');
    case 16: return `${path.toUpperCase()}${rest}`;
    case 17: return `${pick(random, ['http://docker', 'http://docker:2375', 'HTTP://x', 'https://h', 'http://user@h', 'unix://'])}${target}`;
    case 18: return pick(random, ['*', '', '?', 'containers/json', '//', '/%', '/%zz', '/#', 'http://']);
    case 19: return `${target}#frag`;
    case 20: return `${path}/${rest}`;
    case 21: return `${path}?${'q'.repeat(pick(random, [8_000, 9_000, 20_000]))}`;
    case 22: return target.replace(/^\/v1\.41/, pick(random, ['/v1.41.0', '/v01.41', '/v1', '/v', '/V1.41', '/v1.41.', '/v9.99', '/v1.24']));
    case 23: return `${path}${rest}&x=${pick(random, ['%', '\0', ' ', '#', '..', '%0d%0aX:1'])}`;
    case 24: return insert('/.%2e');
    default: return `${path};${rest}`;
  }
}

function lineEnd(random: Random, strict: boolean): string {
  if (strict) return '\r\n';
  const roll = random();
  return roll < 0.6 ? '\r\n' : roll < 0.85 ? '\n' : roll < 0.95 ? '\r' : '\r\r\n';
}

interface HeadParts {
  readonly method: string;
  readonly target: string;
  readonly text: string;
}

/** A complete head (and body) for one request, and whether a later request can follow it cleanly. */
function generateHead(random: Random, id: number, last: boolean): HeadParts {
  // A third of the heads are what a Docker client sends (some with a percent-encoded letter or in
  // absolute-form, which are canonicalised, not refused), so that the allowed side is exercised
  // as much as the refusals; the rest are hostile in one or more ways.
  const clean = chance(random, 0.35);
  const method = clean || chance(random, 0.85) ? pick(random, GOOD_METHODS) : pick(random, ODD_METHODS);
  let target = pick(random, clean || chance(random, 0.6) ? ALLOWED_TARGETS : DENIED_TARGETS);
  if (clean) {
    if (chance(random, 0.2)) target = `http://docker${target}`;
    else if (chance(random, 0.2)) target = target.replace(/[a-z]/, (letter) => `%${letter.charCodeAt(0).toString(16)}`);
  } else {
    const mutations = chance(random, 0.4) ? 0 : 1 + Math.floor(random() * 3);
    for (let i = 0; i < mutations; i++) target = mutateTarget(random, target);
  }
  const version = clean || chance(random, 0.88) ? 'HTTP/1.1' : pick(random, VERSIONS);
  const separator = clean || chance(random, 0.97) ? ' ' : pick(random, ['  ', '\t', '']);
  const strict = clean || chance(random, 0.75);
  const eol = (): string => lineEnd(random, strict);

  const headers: string[] = [`X-Fuzz-Id: ${id}`];
  const hostRoll = random();
  if (clean || hostRoll < 0.9) headers.push('Host: docker');
  else if (hostRoll < 0.95) headers.push('Host: docker', 'Host: evil');

  let body = '';
  const smuggled = pick(random, SMUGGLED);
  // Clean heads: no body, a Content-Length body, a chunked body, Expect, a body-less default.
  const framing = clean ? pick(random, [0, 4, 10, 19, 23]) : Math.floor(random() * 24);
  switch (framing) {
    case 0:
    case 1:
    case 2:
    case 3:
      break;
    case 4:
      headers.push('Content-Length: 7');
      body = '{"a":1}';
      break;
    case 5:
      headers.push('Content-Length: 12');
      body = '{"a":1}'; // shorter than declared
      break;
    case 6:
      headers.push('Content-Length: 2');
      body = `{}${smuggled}`; // a second request after the body: a separate, denied request
      break;
    case 7:
      headers.push('Content-Length: 2', 'Content-Length: 2');
      body = '{}';
      break;
    case 8:
      headers.push('Content-Length: 2', `Content-Length: ${2 + smuggled.length}`);
      body = `{}${smuggled}`;
      break;
    case 9:
      headers.push(`Content-Length: ${pick(random, ['-1', '+5', '0x10', ' 5', '5 5', '5,5', '99999999999999999999', '', '1e3', '５'])}`);
      body = '{"a":1}';
      break;
    case 10:
      headers.push('Transfer-Encoding: chunked');
      body = '7\r\n{"a":1}\r\n0\r\n\r\n';
      break;
    case 11:
      headers.push('Transfer-Encoding: chunked');
      body = `0\r\n\r\n${smuggled}`;
      break;
    case 12:
      headers.push(`Transfer-Encoding: ${pick(random, ['chunked, identity', 'identity', 'gzip', 'gzip, chunked', ' chunked', 'Chunked', 'chunked\0', 'xchunked', 'chunked;x=1', 'chunked,', '"chunked"'])}`);
      body = `0\r\n\r\n${smuggled}`;
      break;
    case 13:
      headers.push('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked');
      body = '0\r\n\r\n';
      break;
    case 14:
      // The classic: a front end that trusts Content-Length and a back end that trusts chunked
      // (or the reverse) disagree on where the next request starts.
      headers.push(`Content-Length: ${4 + smuggled.length}`, 'Transfer-Encoding: chunked');
      body = `0\r\n\r\n${smuggled}`;
      break;
    case 15:
      headers.push(pick(random, ['Transfer-Encoding : chunked', 'Content-Length\t: 2', 'Transfer-Encoding:\tchunked', ' Transfer-Encoding: chunked', 'Transfer_Encoding: chunked', 'Content-Length:2']));
      body = `0\r\n\r\n${smuggled}`;
      break;
    case 16:
      headers.push('Connection: Upgrade', `Upgrade: ${pick(random, ['tcp', 'h2c', 'websocket', 'TCP', ''])}`, 'Content-Length: 2');
      body = `{}${chance(random, 0.5) ? smuggled : ''}`;
      break;
    case 17:
      headers.push(pick(random, ['Upgrade: tcp', 'Connection: Upgrade', 'Connection: keep-alive, Upgrade\r\nUpgrade: tcp']));
      break;
    case 18:
      headers.push('Connection: Upgrade', 'Upgrade: tcp', 'Transfer-Encoding: chunked');
      body = `0\r\n\r\n${smuggled}`;
      break;
    case 19:
      headers.push('Expect: 100-continue', 'Content-Length: 2');
      body = '{}';
      break;
    case 20:
      headers.push(pick(random, ['X-A: b\r\n folded', 'X-A: b\0c', 'X-A: b\rc', 'X Y: z', 'NoColon', ': empty', `X-Long: ${'h'.repeat(20_000)}`, 'X-Registry-Auth: c2VjcmV0', 'X-A: \xff\xfe', 'Host']));
      break;
    case 21:
    case 22:
      // A request as the *payload* of a chunk: body bytes to a correct reader, a request of its
      // own to one that loses the framing (http-proxy-3 turns a chunked DELETE into
      // `Content-Length: 0` and still streams the body).
      headers.push('Transfer-Encoding: chunked');
      body = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
      break;
    default:
      headers.push('Content-Type: application/json', 'Content-Length: 0');
  }
  if (last && chance(random, 0.9) && !headers.some((header) => header.startsWith('Connection:'))) {
    headers.push('Connection: close');
  }
  // The id line is always written cleanly, right after the request line, so every head the fake
  // dockerd can read says which one it is.
  const [idLine, ...others] = headers;
  const text =
    `${method}${separator}${target}${separator}${version}\r\n${idLine}\r\n` +
    others.map((header) => `${header}${eol()}`).join('') +
    eol() +
    body;
  return { method, target, text };
}

/**
 * Generates connections until `heads` request heads have been written. Each connection carries one
 * to three pipelined heads, cut into one to three writes.
 *
 * @example
 * ```ts
 * for (const connection of generateConnections(20250101, 10_000)) socket.write(connection.bytes);
 * ```
 */
export function* generateConnections(seed: number, heads: number): Generator<FuzzConnection> {
  const random = seededRandom(seed);
  let id = 0;
  while (id < heads) {
    const count = 1 + Math.floor(random() * 3);
    const sent: SentHead[] = [];
    let text = '';
    for (let index = 0; index < count; index++) {
      const head = generateHead(random, id, index === count - 1);
      sent.push({ id, method: head.method, target: head.target });
      text += head.text;
      id += 1;
    }
    const bytes = Buffer.from(text, 'latin1');
    const writes = 1 + Math.floor(random() * 3);
    const cuts = Array.from({ length: writes - 1 }, () => Math.floor(random() * bytes.length)).sort((a, b) => a - b);
    yield { bytes, cuts, heads: sent };
  }
}
