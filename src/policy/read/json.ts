/**
 * Reading and writing dockerd's JSON so that a rewritten answer differs from dockerd's only where it
 * was rewritten. Pure: no `node:` imports.
 */

interface RawJson {
  rawJSON(text: string): unknown;
}

// `JSON.rawJSON` and the reviver's `source` (Node >= 21): a number JavaScript cannot hold exactly
// (an int64 limit, a uint64 size) is written back with dockerd's own digits.
const rawJSON = (JSON as unknown as Partial<RawJson>).rawJSON;

// Sixteen digits or more: the only numbers a double may not hold exactly. Most answers have none,
// and parse without a reviver.
const LONG_NUMBER = /\d{16}/;

function keepSource(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined && rawJSON !== undefined) {
    return rawJSON(context.source);
  }
  return value;
}

/**
 * Parses one JSON document from dockerd, keeping numbers beyond double precision exactly. Throws a
 * `SyntaxError` for text that is not JSON.
 *
 * @example
 * ```ts
 * stringifyDockerJson(parseDockerJson('{"Memory":9223372036854775807}')); // '{"Memory":9223372036854775807}\n'
 * ```
 */
export function parseDockerJson(text: string): unknown {
  return LONG_NUMBER.test(text) ? JSON.parse(text, keepSource as (key: string, value: unknown) => unknown) : JSON.parse(text);
}

/**
 * Writes a value as dockerd does (Go's `json.Encoder` with HTML escaping off): compact, with the
 * encoder's closing newline.
 *
 * @example
 * ```ts
 * stringifyDockerJson({ message: 'No such container: x' }); // '{"message":"No such container: x"}\n'
 * ```
 */
export function stringifyDockerJson(value: unknown): string {
  // Go escapes U+2028 and U+2029 always; JSON.stringify never does.
  return `${JSON.stringify(value).replace(/[\u2028\u2029]/g, (char) => (char === '\u2028' ? '\\u2028' : '\\u2029'))}\n`;
}
