/**
 * A request's query read the way dockerd reads it: Go's `url.ParseQuery`, then `Values.Get` (the
 * first value of a key). Pure: no `node:` imports.
 *
 * Decisions made on the query must not depend on which Go release dockerd was built with, so what
 * Go releases read differently is reported as a `problem` instead of being guessed at: a `;` (a
 * separator before Go 1.17, an error since), and a malformed percent-escape (an error that some
 * handlers ignore and others answer 400).
 */

/**
 * The parameters of a query, in order, as Go decodes them (`+` is a space, `%XX` a byte, read as
 * UTF-8), and what makes the query unreadable one way only.
 *
 * @example
 * ```ts
 * parseQuery('t=10&signal=SIGKILL').params.get('t'); // ['10']
 * ```
 */
export interface ParsedQuery {
  readonly params: ReadonlyMap<string, readonly string[]>;
  /** Why the query cannot be read one way only, or `null`. */
  readonly problem: string | null;
}

const EMPTY: ParsedQuery = Object.freeze({ params: new Map(), problem: null });

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

// Invalid UTF-8 becomes U+FFFD, as Go's strings do when printed or compared as text.
const UTF8 = new TextDecoder('utf-8');

/** Go's `QueryUnescape`, or `null` for a malformed escape. */
function unescape(text: string): string | null {
  if (!text.includes('%') && !text.includes('+')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x2b /* + */) bytes.push(0x20);
    else if (code === 0x25 /* % */) {
      const high = i + 2 < text.length ? hexValue(text.charCodeAt(i + 1)) : -1;
      const low = high >= 0 ? hexValue(text.charCodeAt(i + 2)) : -1;
      if (low < 0) return null;
      bytes.push(high * 16 + low);
      i += 2;
    } else if (code < 0x80) bytes.push(code);
    else {
      // The target is ASCII (canonicalisation refuses the rest); keep any other unit as UTF-8.
      for (const byte of new TextEncoder().encode(text[i] as string)) bytes.push(byte);
    }
  }
  return UTF8.decode(new Uint8Array(bytes));
}

/**
 * Parses a raw query (what follows `?`, without it) as Go's `url.ParseQuery` does: pairs split on
 * `&`, empty pairs skipped, the key and value unescaped. Pairs Go would skip with an error are
 * skipped here too, and the error is reported as `problem`.
 *
 * @example
 * ```ts
 * parseQuery('logs=1&stream=1').params.get('logs'); // ['1']
 * parseQuery('logs=0;logs=1').problem; // 'the query contains a ";", which Go releases read differently'
 * ```
 */
export function parseQuery(raw: string): ParsedQuery {
  if (raw === '') return EMPTY;
  const params = new Map<string, string[]>();
  let problem: string | null = null;
  for (const pair of raw.split('&')) {
    if (pair.includes(';')) {
      problem ??= 'the query contains a ";", which Go releases read differently';
      continue;
    }
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const key = unescape(equals === -1 ? pair : pair.slice(0, equals));
    const value = equals === -1 ? '' : unescape(pair.slice(equals + 1));
    if (key === null || value === null) {
      problem ??= 'the query contains a malformed percent-escape';
      continue;
    }
    const values = params.get(key);
    if (values === undefined) params.set(key, [value]);
    else values.push(value);
  }
  return { params, problem };
}

/**
 * The query of a target (`/path?query`): the text after the first `?`, or `''`.
 *
 * @example
 * ```ts
 * queryOf('/v1.41/containers/x/stop?t=5'); // 't=5'
 * ```
 */
export function queryOf(target: string): string {
  const index = target.indexOf('?');
  return index === -1 ? '' : target.slice(index + 1);
}

/**
 * Whether dockerd's `httputils.BoolValue` reads a parameter value as true: anything but empty, `0`,
 * `no`, `false` and `none` (any case, surrounding blanks ignored).
 *
 * @example
 * ```ts
 * isGoTrue('yes'); // true
 * isGoTrue(' False '); // false
 * ```
 */
export function isGoTrue(value: string): boolean {
  const normalized = value.trim().toLowerCase();
  return !(normalized === '' || normalized === '0' || normalized === 'no' || normalized === 'false' || normalized === 'none');
}

/**
 * Whether a request with these `Content-Type` values has a body Go's `Request.ParseForm` or
 * `FormValue` reads as parameters (`application/x-www-form-urlencoded`, `multipart/form-data`):
 * such parameters take part in what dockerd reads from `r.Form`, so a decision made on the query
 * alone would not be the one dockerd acts on. Unparseable media types count as forms (fail closed).
 *
 * @example
 * ```ts
 * isFormContentType('Application/X-WWW-Form-Urlencoded; charset=utf-8'); // true
 * isFormContentType('application/json'); // false
 * ```
 */
export function isFormContentType(contentType: string | readonly string[] | undefined): boolean {
  if (contentType === undefined) return false;
  const values = typeof contentType === 'string' ? [contentType] : contentType;
  for (const value of values) {
    const mediaType = (value.split(';')[0] as string).trim().toLowerCase();
    if (mediaType === 'application/x-www-form-urlencoded' || mediaType === 'multipart/form-data') return true;
    // Anything that is not `type/subtype` of token characters cannot be judged: Go would refuse
    // or read it in a way this check cannot predict.
    if (mediaType !== '' && !/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test(mediaType)) return true;
  }
  return false;
}
