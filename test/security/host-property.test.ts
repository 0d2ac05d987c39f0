import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';

// Property: any create body the guard allows holds no host escape as Go's encoding/json decodes it.
// The oracle below is independent of the guard's reader: it works on the generated members, not on
// parsed text; it matches keys with Go 1.19's own byte-level algorithm (fold.go: equalFoldRight,
// asciiEqualFold, simpleLetterEqualFold) or with Go 1.21's ToUpper(ToLower(r)) taken from the
// JavaScript engine's case tables; duplicates resolve as Go resolves them (the last one wins); a
// type mismatch fails the decode (dockerd answers 400, nothing happens); and both 20.10's reading
// (top-level HostConfig fields when "HostConfig" is absent or null) and 27.0's are tried.

type Value = null | boolean | number | string | readonly Value[] | { readonly members: ReadonlyArray<readonly [string, Value]> };
const isObject = (value: Value): value is { readonly members: ReadonlyArray<readonly [string, Value]> } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function serialize(value: Value): string {
  if (isObject(value)) return `{${value.members.map(([key, item]) => `${JSON.stringify(key)}:${serialize(item)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  return JSON.stringify(value);
}

// --- the oracle's key matching ------------------------------------------------------------------
const utf8 = (text: string): number[] => [...new TextEncoder().encode(text)];

/** Go 1.19's foldFunc(s)(s, t), transcribed from /usr/lib/go-1.19/src/encoding/json/fold.go. */
function go119Fold(name: string, key: string): boolean {
  const s = utf8(name);
  let t = utf8(key);
  const caseMask = ~0x20 & 0xff;
  let special = false;
  let nonLetter = false;
  for (const b of s) {
    const upper = b & caseMask;
    if (upper < 0x41 || upper > 0x5a) nonLetter = true;
    else if (upper === 0x4b || upper === 0x53) special = true;
  }
  if (special) {
    // equalFoldRight
    for (const sb of s) {
      if (t.length === 0) return false;
      const tb = t[0] as number;
      if (tb < 0x80) {
        if (sb !== tb) {
          const sbUpper = sb & caseMask;
          if (!(sbUpper >= 0x41 && sbUpper <= 0x5a && sbUpper === (tb & caseMask))) return false;
        }
        t = t.slice(1);
        continue;
      }
      const rune = new TextDecoder().decode(new Uint8Array(t)).codePointAt(0) as number;
      const size = rune < 0x800 ? 2 : rune < 0x10000 ? 3 : 4;
      if ((sb === 0x73 || sb === 0x53) && rune === 0x17f) t = t.slice(size);
      else if ((sb === 0x6b || sb === 0x4b) && rune === 0x212a) t = t.slice(size);
      else return false;
    }
    return t.length === 0;
  }
  if (s.length !== t.length) return false;
  for (let i = 0; i < s.length; i++) {
    const sb = s[i] as number;
    const tb = t[i] as number;
    if (nonLetter) {
      // asciiEqualFold
      if (sb === tb) continue;
      if (!((sb >= 0x41 && sb <= 0x5a) || (sb >= 0x61 && sb <= 0x7a)) || (sb | 0x20) !== (tb | 0x20)) return false;
    } else if ((sb & caseMask) !== (tb & caseMask)) return false; // simpleLetterEqualFold
  }
  return true;
}

/** Go 1.21's foldName: unicode.ToUpper(unicode.ToLower(r)) per rune (simple mappings). */
function go121Folded(text: string): string {
  let out = '';
  for (const char of text) {
    const lower = [...char.toLowerCase()];
    const lowered = lower.length === 1 ? (lower[0] as string) : char.codePointAt(0) === 0x130 ? 'i' : char;
    const upper = [...lowered.toUpperCase()];
    out += upper.length === 1 ? (upper[0] as string) : lowered;
  }
  return out;
}

function fieldOf(fields: readonly string[], key: string): string | undefined {
  if (fields.includes(key)) return key;
  return fields.find((name) => go119Fold(name, key) || go121Folded(name) === go121Folded(key));
}

// --- the oracle's decoding ------------------------------------------------------------------------
class DecodeError extends Error {}

const HOST_FIELDS = ['Privileged', 'PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'NetworkMode', 'CapAdd', 'Binds', 'Mounts', 'Devices', 'SecurityOpt', 'VolumesFrom', 'Sysctls'];
const TOP_FIELDS = ['Image', 'Cmd', 'HostConfig', ...HOST_FIELDS];

/** A struct decoded Go's way: per member in order, the matched field's value replaced (last wins). */
function decodeStruct(value: Value, fields: readonly string[]): Map<string, Value> {
  if (!isObject(value)) throw new DecodeError('not an object');
  const out = new Map<string, Value>();
  for (const [key, item] of value.members) {
    const field = fieldOf(fields, key);
    if (field === undefined) continue;
    if (item === null) {
      // null: pointers, slices and maps become nil; strings and bools are left as they were.
      if (['Binds', 'Mounts', 'Devices', 'SecurityOpt', 'VolumesFrom', 'CapAdd', 'Sysctls', 'HostConfig', 'Cmd'].includes(field)) out.delete(field);
      continue;
    }
    out.set(field, item);
  }
  return out;
}

const strings = (value: Value | undefined, stringAlone = false): string[] => {
  if (value === undefined) return [];
  if (stringAlone && typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw new DecodeError('not an array');
  return value.map((item) => {
    if (item === null) return '';
    if (typeof item !== 'string') throw new DecodeError('not a string');
    return item;
  });
};

const ALLOWED = '/srv';
function hostPathEscapes(source: string): boolean {
  if (source.split('/').includes('..')) return true;
  const normalized = posix.normalize(source).replace(/\/+$/, '') || '/';
  return !(normalized === ALLOWED || normalized.startsWith(`${ALLOWED}/`));
}

function escapes(config: Map<string, Value>): boolean {
  const get = (name: string): Value | undefined => config.get(name);
  const privileged = get('Privileged');
  if (privileged !== undefined && typeof privileged !== 'boolean') throw new DecodeError('Privileged');
  if (privileged === true) return true;
  for (const name of ['PidMode', 'IpcMode', 'UTSMode', 'UsernsMode', 'NetworkMode']) {
    const mode = get(name);
    if (mode !== undefined && typeof mode !== 'string') throw new DecodeError(name);
    if (mode === 'host' || (typeof mode === 'string' && mode.startsWith('container:'))) return true;
  }
  if (strings(get('CapAdd'), true).some((cap) => !['CHOWN', 'KILL'].includes(cap.toUpperCase().replace(/^CAP_/, '')))) return true;
  for (const bind of strings(get('Binds'))) {
    const source = bind.split(':')[0] as string;
    if (bind.split(':').length >= 2 && source.startsWith('/') && hostPathEscapes(source)) return true;
  }
  const mounts = get('Mounts');
  if (mounts !== undefined) {
    if (!Array.isArray(mounts)) throw new DecodeError('Mounts');
    for (const mount of mounts) {
      const fields = decodeStruct(mount ?? { members: [] }, ['Type', 'Source', 'Target']);
      const type = fields.get('Type');
      const source = fields.get('Source');
      if (type === 'bind' && (typeof source !== 'string' || hostPathEscapes(source))) return true;
    }
  }
  const devices = get('Devices');
  if (devices !== undefined && (!Array.isArray(devices) || devices.length > 0)) return true;
  if (strings(get('SecurityOpt')).some((option) => option.includes('unconfined') || option.includes('disable'))) return true;
  if (strings(get('VolumesFrom')).length > 0) return true;
  const sysctls = get('Sysctls');
  if (isObject(sysctls ?? null) && (sysctls as { members: unknown[] }).members.length > 0) return true;
  return false;
}

/** Whether dockerd 20.10 or 27+ would run a container with a host escape from this body. */
function goEscapes(body: Value): boolean {
  try {
    const top = decodeStruct(body, TOP_FIELDS);
    const inner = top.get('HostConfig');
    const innerConfig = inner === undefined ? undefined : decodeStruct(inner, HOST_FIELDS);
    // 27.0+: the HostConfig key only. 20.10: it, or the top-level fields when it is absent.
    const readings = [innerConfig, innerConfig ?? new Map([...top].filter(([name]) => HOST_FIELDS.includes(name)))];
    return readings.some((config) => config !== undefined && escapes(config));
  } catch (error) {
    if (error instanceof DecodeError) return false;
    throw error;
  }
}

// --- the generator ----------------------------------------------------------------------------------
/** Spellings of a field name dockerd may read as the field, and some it reads as nothing. */
function spellings(name: string): fc.Arbitrary<string> {
  const variants = [name, name.toLowerCase(), name.toUpperCase(), name.replace(/s/g, '\u017F'), name.replace(/k/gi, '\u212A'), name.replace(/i/g, '\u0131'), name.replace(/I/g, '\u0130'), `${name}x`, name.slice(1)];
  return fc.oneof(fc.constantFrom(...variants), fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((flips) => [...name].map((c, i) => (flips[i] ? c.toUpperCase() : c.toLowerCase())).join('')));
}

const member = (name: string, value: fc.Arbitrary<Value>): fc.Arbitrary<readonly [string, Value]> => fc.tuple(spellings(name), value);
const junk: fc.Arbitrary<Value> = fc.constantFrom<Value>(null, 1, 'true', true, false, [], { members: [] });
const bindSource = fc.constantFrom('/srv/a', '/srv', '/', '/etc', '/srv/../etc', '//etc', '/srv//a/', '/srvx', 'vol', '/var/run/docker.sock');
const bind = fc.tuple(bindSource, fc.constantFrom(':/x', ':/x:ro', '')).map(([source, rest]) => `${source}${rest}`);

const hostMembers: fc.Arbitrary<readonly [string, Value]> = fc.oneof(
  member('Privileged', fc.oneof(fc.boolean(), junk)),
  member('PidMode', fc.oneof(fc.constantFrom('', 'host', 'container:x'), junk)),
  member('IpcMode', fc.oneof(fc.constantFrom('', 'private', 'host'), junk)),
  member('UTSMode', fc.constantFrom('', 'host')),
  member('UsernsMode', fc.constantFrom('', 'host')),
  member('NetworkMode', fc.oneof(fc.constantFrom('none', 'host', 'container:x', 'bridge'), junk)),
  member('CapAdd', fc.oneof(fc.constantFrom<Value>(['CHOWN'], ['SYS_ADMIN'], 'SYS_ADMIN', ['cap_kill'], ['ALL']), junk)),
  member('Binds', fc.oneof(fc.array(fc.oneof(bind, fc.constant(null)), { maxLength: 3 }), junk)),
  member(
    'Mounts',
    fc.array(
      fc.array(fc.oneof(member('Type', fc.constantFrom('bind', 'volume', 'tmpfs')), member('Source', bindSource), member('Target', fc.constant('/t'))), { maxLength: 4 }).map((members) => ({ members })),
      { maxLength: 2 },
    ),
  ),
  member('Devices', fc.constantFrom<Value>([], [{ members: [['PathOnHost', '/dev/sda']] }], null)),
  member('SecurityOpt', fc.constantFrom<Value>([], ['no-new-privileges'], ['seccomp=unconfined'], ['label:disable'], null)),
  member('VolumesFrom', fc.constantFrom<Value>([], ['other'], null)),
  member('Sysctls', fc.constantFrom<Value>({ members: [] }, { members: [['kernel.panic', '1']] }, null)),
);

const body: fc.Arbitrary<Value> = fc
  .tuple(
    fc.array(hostMembers, { maxLength: 5 }),
    fc.option(fc.tuple(spellings('HostConfig'), fc.oneof(fc.array(hostMembers, { maxLength: 6 }).map((members) => ({ members }) as Value), fc.constant(null))), { nil: undefined }),
    fc.array(hostMembers, { maxLength: 2 }),
  )
  .map(([top, hostConfig, after]) => ({
    members: [['Image', 'busybox'] as const, ...top, ...(hostConfig === undefined ? [] : [hostConfig]), ...after],
  }));

describe('PROTECT_HOST: what the guard allows holds no host escape under Go decoding rules', () => {
  const filter = createSocketFilter({ policy: tecnativaPreset({ CONTAINERS: '1', POST: '1', PROTECT_HOST: '1', ALLOW_BIND_MOUNTS: ALLOWED }) });
  const daemon = { defaultRuntime: 'runc', cgroupVersion: '2', engineVersion: '20.10.24' };

  test('allowed => no escape (4,000 generated bodies)', () => {
    let allowed = 0;
    let escaping = 0;
    fc.assert(
      fc.property(body, (generated) => {
        const decision = filter.evaluate('POST', '/v1.41/containers/create', { body: serialize(generated), contentType: 'application/json', daemon });
        const escape = goEscapes(generated);
        if (decision.allowed) allowed += 1;
        if (escape) escaping += 1;
        return !(decision.allowed && escape);
      }),
      { numRuns: 4_000, seed: Number(process.env.DSF_FUZZ_SEED ?? 20_141) },
    );
    // The generator reaches both sides: many bodies are allowed, many escape.
    expect(allowed).toBeGreaterThan(200);
    expect(escaping).toBeGreaterThan(200);
  }, 120_000);

  test('the oracle agrees with Go 1.19 on the spellings observed there', () => {
    // Observed with /usr/lib/go-1.19 (the Go of dockerd 20.10 on Debian 12).
    expect(fieldOf(['Kernel'], '\u212Aernel')).toBe('Kernel');
    expect(fieldOf(['Binds'], 'bind\u017F')).toBe('Binds');
    expect(go119Fold('Privileged', 'pr\u0131vileged')).toBe(false);
    expect(fieldOf(['Privileged'], 'pr\u0131vileged')).toBe('Privileged'); // Go 1.21's reading
    expect(goEscapes({ members: [['Image', 'b'], ['Privileged', true]] })).toBe(true);
    expect(goEscapes({ members: [['Image', 'b'], ['Privileged', true], ['HostConfig', { members: [] }]] })).toBe(false);
    expect(goEscapes({ members: [['Image', 'b'], ['HostConfig', { members: [['Privileged', false], ['privileged', true]] }]] })).toBe(true);
  });
});
