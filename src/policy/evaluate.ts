import { formatVersion, parseTarget } from './canonical.js';
import { ACCESS_READ, ACCESS_WRITE, METHOD_BITS, type CompiledEntry, type CompiledPolicy } from './compile.js';
import type { Decision, Method, RequestInfo } from './types.js';

/**
 * A decision function: pure, synchronous, no I/O, no logging.
 *
 * @example
 * ```ts
 * const evaluate: Evaluate = createSocketFilter().evaluate;
 * evaluate('GET', '/_ping').allowed; // true
 * ```
 */
export type Evaluate = (method: string, target: string, request?: RequestInfo) => Decision;

/** Settings of the checks that run before any rule, whatever the policy. */
export interface EvaluatorSettings {
  /** Oldest API version prefix accepted, as `major * 10000 + minor` (1.24 -> 10024). */
  readonly minApiVersion: number;
}

/**
 * A container start request with a body larger than this may carry a HostConfig. dockerd itself only
 * reads start bodies longer than 7 bytes ("a non-nil JSON object is at least 7 characters"), and on
 * API < 1.24 applies them: binds, capabilities, privileged mode.
 */
const START_BODY_LIMIT = 7;

function methodBit(method: string): number {
  switch (method) {
    case 'GET':
      return METHOD_BITS.GET;
    case 'HEAD':
      return METHOD_BITS.HEAD;
    case 'POST':
      return METHOD_BITS.POST;
    case 'PUT':
      return METHOD_BITS.PUT;
    case 'DELETE':
      return METHOD_BITS.DELETE;
    default:
      return 0;
  }
}

function deny(status: 400 | 403, rule: string | null, reason: string, path: string | null): Decision {
  return { allowed: false, status, rule, reason, path };
}

/**
 * Where the container name starts in the path `text[start, end)` for container-scoped routes
 * (`/containers/<name>/…`, and Podman's `/libpod/containers/…`, `/libpod/pods/…`), or -1.
 */
function containerNameStart(text: string, start: number): number {
  if (text.startsWith('/containers/', start)) return start + 12;
  if (text.startsWith('/libpod/', start)) {
    if (text.startsWith('containers/', start + 8)) return start + 19;
    if (text.startsWith('pods/', start + 8)) return start + 13;
  }
  return -1;
}

const enum ContainerShape {
  /** `/containers/<name>` or `/containers/<name>/<action>`. */
  Plain,
  /** `/containers/<name>/attach/ws`. */
  AttachWebsocket,
  /** A name spanning several segments: a link alias (`parent/alias`) or an attempt to pass one. */
  MultiSegmentName,
}

/** The index of the next `/` at or after `from` and before `end`, or -1. */
function slashBefore(text: string, from: number, end: number): number {
  const index = text.indexOf('/', from);
  return index < end ? index : -1;
}

function containerShape(text: string, nameStart: number, end: number): ContainerShape {
  const firstSlash = slashBefore(text, nameStart, end);
  if (firstSlash < 0) return ContainerShape.Plain;
  const secondSlash = slashBefore(text, firstSlash + 1, end);
  if (secondSlash < 0) return ContainerShape.Plain;
  if (secondSlash === end - 3 && firstSlash === end - 10 && text.startsWith('/attach/ws', firstSlash)) {
    return ContainerShape.AttachWebsocket;
  }
  return ContainerShape.MultiSegmentName;
}

/** Rules of one literal first segment, found by the segment's first character. */
interface SectionEntries {
  readonly section: string;
  readonly entries: readonly CompiledEntry[];
}

/**
 * Builds the decision function for a compiled policy. The checks that hold for every policy run
 * first: a well-formed target, a Docker method, a recent enough API version, single-segment
 * container names, no configuration body on start. Then the rules, first match wins, then deny.
 *
 * @example
 * ```ts
 * const evaluate = createEvaluator(compilePolicy(tecnativaPreset({})), { minApiVersion: 10024 });
 * evaluate('GET', '/v1.41/version'); // { allowed: true, status: 200, rule: 'VERSION', … }
 * ```
 */
export function createEvaluator(compiled: CompiledPolicy, settings: EvaluatorSettings): Evaluate {
  const { bySection, otherSections, policy } = compiled;
  const sectionHints = policy.hints?.sections ?? {};
  const writeHint = policy.hints?.write;
  const minApiVersion = settings.minApiVersion;

  // Sections by the code of their first character: finding the rules of a request costs a
  // `startsWith` or two instead of slicing the segment and hashing it for a Map lookup.
  const sectionsByFirstChar: (SectionEntries[] | undefined)[] = [];
  for (const [section, entries] of bySection) {
    const code = section.charCodeAt(0);
    (sectionsByFirstChar[code] ??= []).push({ section, entries });
  }

  function entriesFor(text: string, start: number, end: number): readonly CompiledEntry[] {
    const candidates = sectionsByFirstChar[text.charCodeAt(start + 1)];
    if (candidates !== undefined) {
      for (const { section, entries } of candidates) {
        const after = start + 1 + section.length;
        if ((after === end || (after < end && text.charCodeAt(after) === 0x2f)) && text.startsWith(section, start + 1)) {
          return entries;
        }
      }
    }
    return otherSections;
  }

  function sectionHint(rest: string): string | undefined {
    const first = rest.indexOf('/', 1);
    if (first > 0) {
      const second = rest.indexOf('/', first + 1);
      const twoSegments = rest.slice(1, second < 0 ? rest.length : second);
      const hint = sectionHints[twoSegments];
      if (hint !== undefined) return hint;
    }
    return sectionHints[rest.slice(1, first < 0 ? rest.length : first)];
  }

  /** Whether an allow rule after `from` would let this request through if writes were granted. */
  function grantedApartFromWrites(
    entries: readonly CompiledEntry[],
    from: number,
    bit: number,
    text: string,
    start: number,
    end: number,
  ): boolean {
    for (let i = from + 1; i < entries.length; i++) {
      const entry = entries[i] as CompiledEntry;
      if (entry.allow && (entry.methods & bit) !== 0 && entry.access !== ACCESS_READ && entry.matches(text, start, end)) return true;
    }
    return false;
  }

  const malformedDecisions = new Map<string, Decision>();
  function malformedDecision(why: string): Decision {
    let decision = malformedDecisions.get(why);
    if (decision === undefined) {
      decision = Object.freeze(deny(400, null, `The request-target was refused: ${why}.`, null));
      malformedDecisions.set(why, decision);
    }
    return decision;
  }

  return function evaluate(method: string, target: string, request?: RequestInfo): Decision {
    const parsed = parseTarget(target);
    if ('malformed' in parsed) return malformedDecision(parsed.malformed);
    const { decoded, restStart, restEnd, version } = parsed;
    const forwarded = parsed.target;
    const shownPath = parsed.path;

    const bit = methodBit(method);
    if (bit === 0) {
      const shown = typeof method === 'string' && /^[A-Za-z]{1,16}$/.test(method) ? method : 'This method';
      return deny(403, 'method', `${shown} is refused: the Docker Engine API uses only GET, HEAD, POST, PUT and DELETE.`, forwarded);
    }
    if (version >= 0 && version < minApiVersion) {
      return deny(
        400,
        'min-api-version',
        `API version ${formatVersion(version)} is older than the minimum ${formatVersion(minApiVersion)} this filter accepts (old versions let a start request reconfigure the container).`,
        forwarded,
      );
    }

    let write = bit > METHOD_BITS.HEAD || request?.upgrade === true;
    const nameStart = containerNameStart(decoded, restStart);
    if (nameStart > 0) {
      let shape = containerShape(decoded, nameStart, restEnd);
      // dockerd's only DELETE route here is `/containers/{name:.*}`: a second segment is an alias.
      if (bit === METHOD_BITS.DELETE && slashBefore(decoded, nameStart, restEnd) >= 0) shape = ContainerShape.MultiSegmentName;
      if (shape === ContainerShape.MultiSegmentName) {
        return deny(
          403,
          'container-name',
          `${method} ${shownPath} is refused: a container name must be exactly one path segment (dockerd would resolve "a/b" as a link alias of another container).`,
          forwarded,
        );
      }
      if (shape === ContainerShape.AttachWebsocket) write = true;
      const bodyLength = request?.bodyLength;
      if (
        bit === METHOD_BITS.POST &&
        bodyLength !== undefined &&
        (bodyLength === -1 || bodyLength > START_BODY_LIMIT) &&
        slashBefore(decoded, nameStart, restEnd) === restEnd - 6 &&
        decoded.startsWith('/start', restEnd - 6)
      ) {
        return deny(
          403,
          'start-body',
          `${method} ${shownPath} is refused: a start request must not carry a configuration body.`,
          forwarded,
        );
      }
    }

    const entries = entriesFor(decoded, restStart, restEnd);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as CompiledEntry;
      if ((entry.methods & bit) === 0) continue;
      if (entry.access === ACCESS_WRITE ? !write : entry.access === ACCESS_READ && write) continue;
      if (!entry.matches(decoded, restStart, restEnd)) continue;
      const rule = entry.rule;
      if (entry.allow) {
        return {
          allowed: true,
          status: 200,
          rule: rule.id,
          reason: method + ' ' + shownPath + entry.reasonSuffix,
          path: forwarded,
        };
      }
      let reason: string;
      if (rule.reason === undefined && entry.access === ACCESS_WRITE && writeHint !== undefined) {
        const granted = grantedApartFromWrites(entries, i, bit, decoded, restStart, restEnd);
        const hint = granted ? undefined : sectionHint(decoded.slice(restStart, restEnd));
        const what =
          bit > METHOD_BITS.HEAD
            ? `${method} ${shownPath}`
            : request?.upgrade === true
              ? `${method} ${shownPath} (an upgrade, which counts as a write)`
              : `${method} ${shownPath} (a websocket attach, which writes to the container)`;
        reason = `${what} needs ${writeHint}${hint === undefined ? '' : ` and ${hint}`}`;
      } else reason = method + ' ' + shownPath + entry.reasonSuffix;
      return deny(403, rule.id, reason, forwarded);
    }

    const hint = sectionHint(decoded.slice(restStart, restEnd));
    return deny(
      403,
      'default-deny',
      hint === undefined
        ? `${method} ${shownPath} is not allowed by any rule of the ${policy.name} policy`
        : `${method} ${shownPath} needs ${hint}`,
      forwarded,
    );
  };
}

export type { Method };
