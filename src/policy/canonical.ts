/**
 * Request-target canonicalisation, done the way dockerd reads a target so that what we decide on is
 * exactly what dockerd routes.
 *
 * dockerd (Go net/http + gorilla/mux) percent-decodes the path once, then cleans it and answers 301
 * when cleaning changed anything; routes are case-sensitive. We decode once as well, and refuse
 * (instead of cleaning) everything whose meaning depends on who cleans it: dot segments, empty
 * segments, backslashes, encoded `/` `\` `%`, control bytes, raw non-ASCII, encoded bytes that are
 * not UTF-8 and bad escapes. What is left has one meaning (an encoded space or UTF-8 letter included:
 * dockerd takes such names), so the forwarded form is re-encoded from the decoded path and dockerd
 * decodes it to the very string the rules saw.
 *
 * Pure: no node: imports, no I/O.
 */

/** A target that may be decided on. Field names are short on purpose: this is built per request. */
export interface CanonicalTarget {
  /** Canonical origin-form to forward: encoded path, then `?query` as received (validated). */
  readonly target: string;
  /** `target` without its query. */
  readonly path: string;
  /** The decoded path after the version prefix, e.g. `/containers/json`. Rules match this. */
  readonly rest: string;
  /** The API version of the prefix as `major * 10000 + minor`, or -1 when there is no prefix. */
  readonly version: number;
}

/**
 * The allocation-light form `evaluate` works on: the path after the version prefix is
 * `decoded.slice(restStart, restEnd)`, but is never sliced on the hot path.
 */
export interface ParsedTarget {
  readonly target: string;
  readonly path: string;
  readonly decoded: string;
  readonly restStart: number;
  readonly restEnd: number;
  readonly version: number;
  /** The authority of an absolute-form target (`http://<authority>/…`); absent for origin-form. */
  readonly authority?: string;
}

/** Why a target was refused as malformed; the sentence becomes `Decision.reason`. */
export interface MalformedTarget {
  readonly malformed: string;
}

const CHAR_SLASH = 0x2f;
const CHAR_PERCENT = 0x25;
const CHAR_QUESTION = 0x3f;
const CHAR_HASH = 0x23;
const CHAR_BACKSLASH = 0x5c;
const CHAR_DOT = 0x2e;

/**
 * Characters that may stand unencoded in a path segment (RFC 3986 `pchar` without `%`). Anything
 * else is percent-encoded in the forwarded path so no parser on the way can read it differently.
 */
const PCHAR = (() => {
  const table = new Uint8Array(128);
  const allowed = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&\'()*+,;=:@';
  for (let i = 0; i < allowed.length; i++) table[allowed.charCodeAt(i)] = 1;
  return table;
})();

const KIND_PLAIN = 0;
const KIND_DOT = 1;
const KIND_SLASH = 2;
const KIND_PERCENT = 3;
const KIND_QUESTION = 4;
/** Printable but not a `pchar` (`"`, `<`, `{`, …): allowed, forwarded percent-encoded. */
const KIND_REWRITE = 5;
const KIND_HASH = 6;
const KIND_BACKSLASH = 7;
const KIND_REJECT = 8;

/** One lookup per path character: the common case (a plain `pchar`) costs a single compare. */
const PATH_CHAR_KIND = (() => {
  const table = new Uint8Array(128).fill(KIND_REWRITE);
  for (let code = 0; code < 128; code++) if (PCHAR[code] === 1) table[code] = KIND_PLAIN;
  for (let code = 0; code <= 0x20; code++) table[code] = KIND_REJECT;
  table[0x7f] = KIND_REJECT;
  table[CHAR_DOT] = KIND_DOT;
  table[CHAR_SLASH] = KIND_SLASH;
  table[CHAR_PERCENT] = KIND_PERCENT;
  table[CHAR_QUESTION] = KIND_QUESTION;
  table[CHAR_HASH] = KIND_HASH;
  table[CHAR_BACKSLASH] = KIND_BACKSLASH;
  return table;
})();

/**
 * The common case: origin-form, segments of plain `pchar`s, no empty, `.` or `..` segment, no `%` in
 * the path, and a printable query without `#`. Such a target is its own canonical form and decoding;
 * anything else takes the character-by-character path of `parseTarget`.
 *
 * Two sticky expressions rather than one anchored at both ends: where the path expression stops is
 * where the path ends, so finding the query costs no second search. (Native expressions are still
 * faster here than a scan in JavaScript.) The path expression is greedy and nothing after it can
 * make it backtrack, so it stops after the longest run of plain segments; the target is plain when
 * that run is followed by the end or by `?` and a plain query.
 */
const PLAIN_PATH = /(?:\/(?!\.\.?(?:[/?]|$))[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+/y;
const PLAIN_QUERY = /[\x21\x22\x24-\x7e]*$/y;

/**
 * Where the path of a plain target ends (its `?` or its end), or -1 when the target is not plain.
 *
 * @example
 * ```ts
 * plainPathEnd('/v1.41/containers/json?all=1'); // 22
 * plainPathEnd('/v1.41/containers/../images/json'); // -1
 * ```
 */
export function plainPathEnd(raw: string): number {
  PLAIN_PATH.lastIndex = 0;
  if (!PLAIN_PATH.test(raw)) return -1;
  const pathEnd = PLAIN_PATH.lastIndex;
  if (pathEnd === raw.length) return pathEnd;
  if (raw.charCodeAt(pathEnd) !== CHAR_QUESTION) return -1;
  PLAIN_QUERY.lastIndex = pathEnd + 1;
  return PLAIN_QUERY.test(raw) ? pathEnd : -1;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

const HEX = '0123456789ABCDEF';

/** The reasons are a small fixed set, so each result is built once and shared (frozen). */
const MALFORMED_RESULTS = new Map<string, MalformedTarget>();

function malformed(reason: string): MalformedTarget {
  let result = MALFORMED_RESULTS.get(reason);
  if (result === undefined) {
    result = Object.freeze({ malformed: reason });
    MALFORMED_RESULTS.set(reason, result);
  }
  return result;
}

/**
 * Finds where the path starts: origin-form `/…`, or absolute-form `http(s)://authority/…` (dockerd
 * routes absolute-form by its path, so we do too, and forward origin-form).
 */
function pathStart(raw: string): number {
  if (raw.charCodeAt(0) === CHAR_SLASH) return 0;
  let schemeEnd: number;
  const lower = raw.slice(0, 8).toLowerCase();
  if (lower.startsWith('http://')) schemeEnd = 7;
  else if (lower.startsWith('https://')) schemeEnd = 8;
  else return -1;
  for (let i = schemeEnd; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    if (code === CHAR_SLASH) return i === schemeEnd ? -1 : i;
    // userinfo, query or fragment before the path: not something a Docker client sends.
    if (code === CHAR_QUESTION || code === CHAR_HASH || code === 0x40 || code === CHAR_BACKSLASH) return -1;
  }
  return -1;
}

/**
 * Parses a version prefix segment (`v1.41`) the strict way: `v`, then two or three dot-separated
 * numbers without leading zeros. Returns -2 when the segment is dockerd's version syntax
 * (`v[0-9.]+`) but not canonical, -1 when it is not a version prefix at all.
 */
function parseVersion(text: string, from: number, to: number): number {
  if (to - from < 2 || text.charCodeAt(from) !== 0x76 /* v */) return -1;
  let parts = 0;
  let value = 0;
  let major = 0;
  let minor = 0;
  let digits = 0;
  let leadingZero = false;
  let canonical = true;
  for (let i = from + 1; i <= to; i++) {
    const code = i < to ? text.charCodeAt(i) : CHAR_DOT;
    if (code === CHAR_DOT) {
      if (digits === 0 || (leadingZero && digits > 1) || digits > 4) canonical = false;
      if (parts === 0) major = value;
      else if (parts === 1) minor = value;
      parts++;
      value = 0;
      digits = 0;
      leadingZero = false;
    } else if (code >= 0x30 && code <= 0x39) {
      if (digits === 0 && code === 0x30) leadingZero = true;
      value = value * 10 + (code - 0x30);
      digits++;
    } else {
      // Not dockerd's version syntax: an ordinary segment (dockerd does not treat it as a version).
      return -1;
    }
  }
  if (!canonical || parts < 2 || parts > 3) return -2;
  return major * 10000 + minor;
}

/**
 * Canonicalises a raw request-target. Returns the canonical target, or why it is malformed.
 *
 * @example
 * ```ts
 * canonicalize('/v1.41/containers/json?all=1');
 * // { target: '/v1.41/containers/json?all=1', path: '/v1.41/containers/json', rest: '/containers/json', version: 10041 }
 * canonicalize('/v1.41/containers/../images/json'); // { malformed: '…dot segment…' }
 * ```
 */
export function canonicalize(raw: string): CanonicalTarget | MalformedTarget {
  const parsed = parseTarget(raw);
  if ('malformed' in parsed) return parsed;
  const { target, path, decoded, restStart, restEnd, version } = parsed;
  return { target, path, rest: decoded.slice(restStart, restEnd), version };
}

/**
 * `canonicalize` without the slicing: what `evaluate` uses.
 *
 * @example
 * ```ts
 * const parsed = parseTarget('/v1.41/containers/json?all=1');
 * // { target: '/v1.41/containers/json?all=1', path: '/v1.41/containers/json', decoded: <the target>, restStart: 6, restEnd: 22, version: 10041 }
 * ```
 */
export function parseTarget(raw: string): ParsedTarget | MalformedTarget {
  if (typeof raw !== 'string' || raw.length === 0) return malformed('the request-target is empty');
  const plainEnd = plainPathEnd(raw);
  // A plain target is its own canonical form and decoding: work on it in place.
  if (plainEnd >= 0) return withVersion(raw, plainEnd, raw, plainEnd);
  const start = pathStart(raw);
  if (start < 0) {
    return malformed('the request-target must be an absolute path (origin-form) or an http(s) URL with a path');
  }

  const length = raw.length;
  let queryStart = length;
  let needsRewrite = start !== 0;
  let segmentDecodedLength = 0;
  let segmentOnlyDots = true;
  let hasPercent = false;
  let hasEncodedUtf8 = false;

  for (let i = start; i < length; i++) {
    const code = raw.charCodeAt(i);
    const kind = code < 128 ? PATH_CHAR_KIND[code]! : KIND_REJECT;
    if (kind === KIND_PLAIN) {
      segmentDecodedLength++;
      segmentOnlyDots = false;
      continue;
    }
    if (kind === KIND_SLASH) {
      if (i !== start) {
        if (segmentDecodedLength === 0) return malformed('the path contains an empty segment (//)');
        if (segmentOnlyDots && segmentDecodedLength <= 2) return malformed('the path contains a dot segment (. or ..)');
      }
      segmentDecodedLength = 0;
      segmentOnlyDots = true;
      continue;
    }
    if (kind === KIND_DOT) {
      segmentDecodedLength++;
      continue;
    }
    if (kind === KIND_QUESTION) {
      queryStart = i;
      break;
    }
    if (kind === KIND_REWRITE) {
      needsRewrite = true;
      segmentDecodedLength++;
      segmentOnlyDots = false;
      continue;
    }
    if (kind === KIND_HASH) return malformed('the request-target contains a fragment (#)');
    if (kind === KIND_BACKSLASH) return malformed('the path contains a backslash');
    if (kind === KIND_REJECT) {
      return malformed('the request-target contains a control character, a space or a non-ASCII byte');
    }
    // KIND_PERCENT
    const high = i + 2 < length ? hexValue(raw.charCodeAt(i + 1)) : -1;
    const low = high >= 0 ? hexValue(raw.charCodeAt(i + 2)) : -1;
    if (low < 0) return malformed('the path contains a malformed percent-escape');
    const decoded = high * 16 + low;
    i += 2;
    hasPercent = true;
    if (decoded === CHAR_SLASH || decoded === CHAR_BACKSLASH) {
      return malformed('the path contains an encoded slash or backslash');
    }
    if (decoded === CHAR_PERCENT) {
      return malformed('the path contains an encoded percent sign (double encoding)');
    }
    // A space and UTF-8 have one meaning each: dockerd takes names with them (`test 01`,
    // `réseau`), so they are decided on decoded and forwarded in their canonical encoding. Control
    // bytes are refused; whether the bytes above 0x7f form valid UTF-8 is checked once decoded.
    if (decoded < 0x20 || decoded === 0x7f) {
      return malformed('the path contains an encoded control character');
    }
    if (decoded >= 0x80) hasEncodedUtf8 = true;
    if (decoded >= 0x80 || PCHAR[decoded] !== 1) needsRewrite = true;
    if (decoded !== CHAR_DOT) segmentOnlyDots = false;
    segmentDecodedLength++;
  }
  const pathEnd = queryStart;
  if (pathEnd - start <= 1) return malformed('the path is empty');
  if (segmentDecodedLength === 0) return malformed('the path ends with a slash');
  if (segmentOnlyDots && segmentDecodedLength <= 2) return malformed('the path contains a dot segment (. or ..)');

  for (let i = queryStart + 1; i < length; i++) {
    const code = raw.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f) {
      return malformed('the query contains a control character, a space or a non-ASCII byte');
    }
    if (code === CHAR_HASH) return malformed('the request-target contains a fragment (#)');
  }

  // Fast path: a plain target is its own canonical form and its own decoding.
  let path: string;
  let decodedPath: string;
  if (!hasPercent && !needsRewrite) {
    path = raw.slice(0, pathEnd);
    decodedPath = path;
  } else {
    const decodedOrNull = hasPercent ? decodePath(raw, start, pathEnd, hasEncodedUtf8) : raw.slice(start, pathEnd);
    if (decodedOrNull === null) return malformed('the path contains encoded bytes that are not UTF-8');
    decodedPath = decodedOrNull;
    path = encodePath(decodedPath);
  }

  const target = queryStart < length ? path + raw.slice(queryStart) : path;
  const parsed = withVersion(target, path.length, decodedPath, decodedPath.length);
  if (start === 0 || 'malformed' in parsed) return parsed;
  // Absolute-form: the authority stands between `scheme://` and the path.
  return { ...parsed, authority: raw.slice(raw.indexOf('//') + 2, start) };
}

/**
 * The version of the prefix every current client sends, `/v1.<10-99>/`, read at fixed positions;
 * -1 for anything else, which `parseVersion` then reads. Same result as `parseVersion` would give.
 */
function usualVersion(decoded: string, decodedEnd: number): number {
  if (decodedEnd <= 6 || decoded.charCodeAt(6) !== CHAR_SLASH) return -1;
  if (decoded.charCodeAt(1) !== 0x76 /* v */ || decoded.charCodeAt(2) !== 0x31 /* 1 */) return -1;
  if (decoded.charCodeAt(3) !== CHAR_DOT) return -1;
  const tens = decoded.charCodeAt(4) - 0x30;
  const units = decoded.charCodeAt(5) - 0x30;
  // No leading zero: `v1.05` is not canonical.
  if (tens < 1 || tens > 9 || units < 0 || units > 9) return -1;
  return 10000 + tens * 10 + units;
}

/**
 * Splits the version prefix off a canonical path. `target` is the full forwarded target and its
 * first `pathEnd` characters the path; the decoded path is `decoded` up to `decodedEnd`.
 */
function withVersion(target: string, pathEnd: number, decoded: string, decodedEnd: number): ParsedTarget | MalformedTarget {
  let restStart = 0;
  let version = -1;
  const usual = usualVersion(decoded, decodedEnd);
  if (usual >= 0) {
    version = usual;
    restStart = 6;
  } else if (decoded.charCodeAt(1) === 0x76 /* v */) {
    // Only a first segment starting with `v` can be a version prefix: spare the others the search.
    const slash = decoded.indexOf('/', 1);
    const second = slash < 0 || slash >= decodedEnd ? -1 : slash;
    const parsed = parseVersion(decoded, 1, second < 0 ? decodedEnd : second);
    if (parsed === -2) {
      return malformed('the API version prefix is not of the form /v<major>.<minor>');
    }
    if (parsed >= 0) {
      if (second < 0) return malformed('the path has nothing after the API version prefix');
      version = parsed;
      restStart = second;
    }
  }
  const path = pathEnd === target.length ? target : target.slice(0, pathEnd);
  return { target, path, decoded, restStart, restEnd: decodedEnd, version };
}

// Strict: a path whose encoded bytes are not UTF-8 has no one meaning as text (Go would keep the
// bytes, a reader of the logs or of a rule would see something else).
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

/** The path `raw[start, end)` percent-decoded, as UTF-8 when it has encoded bytes above 0x7f; null when those are not UTF-8. */
function decodePath(raw: string, start: number, end: number, utf8: boolean): string | null {
  if (utf8) {
    const bytes: number[] = [];
    for (let i = start; i < end; i++) {
      const code = raw.charCodeAt(i);
      if (code === CHAR_PERCENT) {
        bytes.push(hexValue(raw.charCodeAt(i + 1)) * 16 + hexValue(raw.charCodeAt(i + 2)));
        i += 2;
      } else bytes.push(code);
    }
    try {
      return UTF8.decode(new Uint8Array(bytes));
    } catch {
      return null;
    }
  }
  let out = '';
  let runStart = start;
  for (let i = start; i < end; i++) {
    if (raw.charCodeAt(i) === CHAR_PERCENT) {
      out += raw.slice(runStart, i);
      out += String.fromCharCode(hexValue(raw.charCodeAt(i + 1)) * 16 + hexValue(raw.charCodeAt(i + 2)));
      i += 2;
      runStart = i + 1;
    }
  }
  return out + raw.slice(runStart, end);
}

/** The canonical encoding of a decoded path: `pchar`s as they are, everything else as UTF-8 `%XX`. */
function encodePath(decoded: string): string {
  let out = '';
  for (const char of decoded) {
    const code = char.charCodeAt(0);
    if (code < 0x80) {
      if (code === CHAR_SLASH || PCHAR[code] === 1) out += char;
      else out += '%' + HEX[code >> 4] + HEX[code & 15];
      continue;
    }
    for (const byte of UTF8_ENCODER.encode(char)) out += '%' + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

/**
 * Formats a version number from `canonicalize` (`major * 10000 + minor`) for messages.
 *
 * @example
 * ```ts
 * formatVersion(10041); // '1.41'
 * ```
 */
export function formatVersion(version: number): string {
  return `${Math.floor(version / 10000)}.${version % 10000}`;
}

/**
 * Parses a `major.minor` version setting into the number `canonicalize` reports, or -1 if invalid.
 *
 * @example
 * ```ts
 * parseVersionSetting('1.24'); // 10024
 * ```
 */
export function parseVersionSetting(value: string): number {
  const match = /^(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})$/.exec(value);
  if (!match) return -1;
  return Number(match[1]) * 10000 + Number(match[2]);
}
