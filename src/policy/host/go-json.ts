import { parseTree, type Node, type ParseError } from 'jsonc-parser';
import { foldKey, goUtf8Decode } from './go-text.js';

/**
 * A body read the way dockerd's `encoding/json` reads it into its structs, so that what the checks
 * judge is what dockerd acts on. Pure: no `node:` imports.
 *
 * The JSON text is parsed by Microsoft's `jsonc-parser` (comments and trailing commas refused, every
 * error it reports a refusal), which keeps every member of an object, duplicates included; this
 * module then walks the tree along a schema of dockerd's structs, with Go's rules:
 *
 * - a struct field is found by its exact name, else case-insensitively (`foldKey`: the union of
 *   what Go releases fold); keys that match no field are ignored by Go, and so here, except in a
 *   `strict` struct (one where an escape could hide: a field this guard does not know is refused);
 * - two keys of one object that reach the same field (any spelling) or the same map key are refused:
 *   Go keeps the last, and another reader might keep the first;
 * - `null` leaves a value as it was (the zero value: every handler decodes into a fresh struct), so
 *   it reads as absent; an array element that is `null` is its element type's zero value;
 * - a value of another type than the field's is refused (Go fails the whole decode, dockerd answers
 *   400, so nothing that works is lost), except in `any` fields, which are not judged.
 */

/**
 * How a value is read: a Go type, as far as the checks need it.
 *
 * @example
 * ```ts
 * const binds: Schema = arrayOf(STRING);
 * ```
 */
export type Schema =
  | { readonly kind: 'string' | 'bool' | 'any' | 'strslice' }
  | { readonly kind: 'array' | 'map'; readonly of: Schema }
  | StructSchema;

/**
 * A Go struct: its JSON field names (as dockerd's API spells them), and whether a key matching
 * none of them is refused.
 *
 * @example
 * ```ts
 * const exec: StructSchema = struct({ Privileged: BOOL }, true);
 * ```
 */
export interface StructSchema {
  readonly kind: 'struct';
  readonly fields: Readonly<Record<string, Schema>>;
  readonly strict: boolean;
  /** Field names by `foldKey`, built once. */
  readonly folded: ReadonlyMap<string, string>;
  /** `fields` as a map, for the lookup done per key. */
  readonly byName: ReadonlyMap<string, Schema>;
}

/**
 * A decoded value: a string, boolean, number, an array, a `Map` (a Go map or a struct, whose keys
 * are then the fields' canonical names), or `undefined` for absent (or `null`). `any` fields are left
 * as their parse tree (`Node`), unjudged.
 *
 * @example
 * ```ts
 * const decoded = decode(tree, EXEC_BODY, '') as ReadonlyMap<string, Decoded>;
 * decoded.get('Privileged'); // true
 * ```
 */
export type Decoded = string | boolean | number | undefined | readonly Decoded[] | ReadonlyMap<string, Decoded> | Node;

/**
 * Builds a struct schema, checking that no two field names fold alike (Go would read one key into
 * the first of them; a schema must not depend on which).
 *
 * @example
 * ```ts
 * const exec = struct({ Privileged: BOOL, Cmd: ANY }, true);
 * ```
 */
export function struct(fields: Record<string, Schema>, strict: boolean): StructSchema {
  const folded = new Map<string, string>();
  for (const name of Object.keys(fields)) {
    const key = foldKey(name);
    if (folded.has(key)) throw new Error(`fields ${folded.get(key)} and ${name} fold alike`);
    folded.set(key, name);
  }
  return Object.freeze({ kind: 'struct', fields: Object.freeze({ ...fields }), strict, folded, byName: new Map(Object.entries(fields)) });
}

/**
 * Schema shorthands: Go's string, bool, number; `ANY` for a field that is not judged.
 *
 * @example
 * ```ts
 * struct({ Privileged: BOOL, Binds: arrayOf(STRING), Labels: mapOf(STRING), Healthcheck: ANY }, true);
 * ```
 */
export const STRING: Schema = Object.freeze({ kind: 'string' });
export const BOOL: Schema = Object.freeze({ kind: 'bool' });
export const ANY: Schema = Object.freeze({ kind: 'any' });
/** docker's `strslice.StrSlice` (20.10's `CapAdd`): a string or an array of strings. */
export const STRSLICE: Schema = Object.freeze({ kind: 'strslice' });
export const arrayOf = (of: Schema): Schema => Object.freeze({ kind: 'array', of });
export const mapOf = (of: Schema): Schema => Object.freeze({ kind: 'map', of });

/**
 * Why a body cannot be judged: `status` 400 (not readable one way only) and the field, as dockerd
 * spells it, where that was found.
 *
 * @example
 * ```ts
 * const problem: Unreadable = { unreadable: 'two keys reach the same field', field: 'HostConfig.Privileged' };
 * ```
 */
export interface Unreadable {
  readonly unreadable: string;
  readonly field?: string;
}

class Refusal {
  constructor(
    readonly why: string,
    readonly field: string | undefined,
  ) {}
}

/** Deeper than any Docker body nests; Go's own limit is 10,000. */
const MAX_DEPTH = 64;

const PARSE_OPTIONS = { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false } as const;

// A `\uD800`-style escape that is not half of a valid pair: Go's unquote makes it U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

function goString(text: string): string {
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text;
}

/**
 * Parses a body into its JSON tree, or says why it is not exactly one JSON value: a syntax error,
 * a comment, a trailing comma, a BOM, trailing data (Go's `Decoder` would ignore what follows the
 * first value; another reader might not), nesting deeper than 64.
 *
 * @example
 * ```ts
 * parseJsonBody('{"Image":"busybox"}'); // a Node of type 'object'
 * parseJsonBody('{"a":1} {"b":2}'); // { unreadable: 'the body is not one JSON value …' }
 * ```
 */
export function parseJsonBody(body: string | Uint8Array): Node | Unreadable {
  // A string stands for the bytes of its UTF-8 encoding, where a lone surrogate is U+FFFD.
  const text = typeof body === 'string' ? goString(body) : goUtf8Decode(body);
  const errors: ParseError[] = [];
  let tree: Node | undefined;
  try {
    tree = parseTree(text, errors, PARSE_OPTIONS);
  } catch {
    // The parser recurses: a body nested tens of thousands deep overflows the stack.
    return { unreadable: 'the body nests too deeply' };
  }
  if (tree === undefined || errors.length > 0) {
    const offset = errors[0]?.offset ?? 0;
    return { unreadable: `the body is not one JSON value as dockerd reads it (syntax error at byte offset ${offset})` };
  }
  return tree;
}

/**
 * Reads a parse tree along a schema, with Go's rules (see the module comment). `path` names the
 * value in messages (`''` for the body itself).
 *
 * @example
 * ```ts
 * const decoded = decode(tree, CREATE_BODY, '');
 * if (isUnreadable(decoded)) return refuse(400, decoded);
 * ```
 */
export function decode(node: Node, schema: Schema, path: string): Decoded | Unreadable {
  try {
    return read(node, schema, path, 0);
  } catch (error) {
    if (error instanceof Refusal) return error.field === undefined ? { unreadable: error.why } : { unreadable: error.why, field: error.field };
    throw error;
  }
}

/**
 * Whether `decode` or `parseJsonBody` gave up.
 *
 * @example
 * ```ts
 * if (isUnreadable(result)) console.log(result.unreadable);
 * ```
 */
export function isUnreadable(value: unknown): value is Unreadable {
  return typeof value === 'object' && value !== null && 'unreadable' in value;
}

function typeName(schema: Schema): string {
  switch (schema.kind) {
    case 'string':
      return 'a string';
    case 'bool':
      return 'true or false';
    case 'strslice':
      return 'a string or an array of strings';
    case 'array':
      return 'an array';
    default:
      return 'an object';
  }
}

function mismatch(schema: Schema, path: string): never {
  throw new Refusal(`${path || 'the body'} must be ${typeName(schema)} (dockerd would refuse the request)`, path || undefined);
}

function read(node: Node, schema: Schema, path: string, depth: number): Decoded {
  if (depth > MAX_DEPTH) throw new Refusal('the body nests too deeply', path || undefined);
  if (node.type === 'null') return undefined;
  switch (schema.kind) {
    case 'any':
      checkDuplicates(node, path, depth);
      return node;
    case 'string':
      if (node.type !== 'string') mismatch(schema, path);
      return goString(node.value as string);
    case 'bool':
      if (node.type !== 'boolean') mismatch(schema, path);
      return node.value as boolean;
    case 'strslice':
      if (node.type === 'string') return [goString(node.value as string)];
      if (node.type !== 'array') mismatch(schema, path);
      return readArray(node, STRING, path, depth);
    case 'array':
      if (node.type !== 'array') mismatch(schema, path);
      return readArray(node, schema.of, path, depth);
    case 'map':
      if (node.type !== 'object') mismatch(schema, path);
      return readMap(node, schema.of, path, depth);
    case 'struct':
      if (node.type !== 'object') mismatch(schema, path);
      return readStruct(node, schema, path, depth);
  }
}

/** The zero value Go leaves for a `null` element of an array. */
function zero(schema: Schema): Decoded {
  switch (schema.kind) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'struct':
      return new Map();
    default:
      return undefined;
  }
}

function readArray(node: Node, of: Schema, path: string, depth: number): Decoded[] {
  const items = node.children ?? [];
  const out: Decoded[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Node;
    const value = read(item, of, `${path}[${i}]`, depth + 1);
    out.push(value === undefined && item.type === 'null' ? zero(of) : value);
  }
  return out;
}

function members(node: Node): Array<[string, Node]> {
  const out: Array<[string, Node]> = [];
  for (const property of node.children ?? []) {
    const [key, value] = property.children ?? [];
    // The parser reported no error, so every member has both.
    out.push([goString((key as Node).value as string), value as Node]);
  }
  return out;
}

function readMap(node: Node, of: Schema, path: string, depth: number): Map<string, Decoded> {
  const out = new Map<string, Decoded>();
  for (const [key, value] of members(node)) {
    const where = `${path}[${JSON.stringify(key)}]`;
    if (out.has(key)) throw new Refusal(`${where} appears twice (dockerd would keep the last one)`, where);
    const decoded = read(value, of, where, depth + 1);
    // A null map value is the zero value, present: `{"k": null}` sets k to "".
    out.set(key, decoded === undefined && value.type === 'null' ? zero(of) : decoded);
  }
  return out;
}

function readStruct(node: Node, schema: StructSchema, path: string, depth: number): Map<string, Decoded> {
  const out = new Map<string, Decoded>();
  const seen = new Set<string>();
  const { byName } = schema;
  for (const [key, value] of members(node)) {
    let field = byName.get(key);
    let name = key;
    if (field === undefined) {
      const folded = schema.folded.get(foldKey(key));
      if (folded === undefined) {
        if (schema.strict) {
          const where = path === '' ? key : `${path}.${key}`;
          throw new Refusal(`${where} is not a field this guard knows, so it cannot judge it`, where);
        }
        // Go ignores a key that matches no field; its value is not read.
        continue;
      }
      name = folded;
      field = byName.get(folded) as Schema;
    }
    const where = path === '' ? name : `${path}.${name}`;
    if (seen.has(name)) {
      throw new Refusal(`${where} is given twice (keys that differ only in case name the same field for dockerd, which keeps the last one)`, where);
    }
    seen.add(name);
    const decoded = read(value, field, where, depth + 1);
    if (decoded !== undefined) out.set(name, decoded);
  }
  return out;
}

/** In a value that is not judged, only exact duplicate keys are refused (they could be a map's). */
function checkDuplicates(node: Node, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new Refusal('the body nests too deeply', path || undefined);
  if (node.type === 'object') {
    const keys = new Set<string>();
    for (const [key, value] of members(node)) {
      if (keys.has(key)) {
        const where = `${path}[${JSON.stringify(key)}]`;
        throw new Refusal(`${where} appears twice (dockerd would keep the last one)`, where);
      }
      keys.add(key);
      checkDuplicates(value, path, depth + 1);
    }
  } else if (node.type === 'array') {
    for (const item of node.children ?? []) checkDuplicates(item, path, depth + 1);
  }
}
