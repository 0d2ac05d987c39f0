import { formatVersion, parseTarget } from './canonical.js';
import {
  ACCESS_READ,
  ACCESS_WRITE,
  codeUnits,
  METHOD_BITS,
  regionEquals,
  type CompiledEntry,
  type CompiledPolicy,
} from './compile.js';
import { createHostGuard, type VolumeGrant } from './host/guard.js';
import { isFormContentType, isGoTrue, parseQuery, queryOf } from './query.js';
import { createReadHook } from './read/decide.js';
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

/**
 * `method + ' '` for each Docker method, by its bit: the reason of every rule decision starts with
 * it, and a constant saves building it per request.
 */
function methodPrefix(bit: number): string {
  switch (bit) {
    case METHOD_BITS.GET:
      return 'GET ';
    case METHOD_BITS.HEAD:
      return 'HEAD ';
    case METHOD_BITS.POST:
      return 'POST ';
    case METHOD_BITS.PUT:
      return 'PUT ';
    default:
      return 'DELETE ';
  }
}

function deny(status: 400 | 403, rule: string | null, reason: string, path: string | null): Decision {
  return { allowed: false, status, rule, reason, path };
}

/**
 * How every denial's reason starts: it names the filter, so a user reading `Error response from
 * daemon: …` knows who refused, and then the request.
 */
export const DENIED_BY = 'docker-socket-filter denied ';

/** How a malformed target's reason starts. */
export const MALFORMED_BY = 'docker-socket-filter refused the request-target: ';

/**
 * Whether a request may set one of `names` to a value dockerd reads as true: its query does, or it
 * cannot be read one way only, or a form body could (dockerd reads a form's fields as parameters).
 */
function querySetsAny(target: string, names: readonly string[], request: RequestInfo | undefined): boolean {
  if (isFormContentType(request?.contentType)) return true;
  const query = parseQuery(queryOf(target));
  if (query.problem !== null) return true;
  return names.some((name) => {
    const value = query.params.get(name)?.[0];
    return value !== undefined && isGoTrue(value);
  });
}

/**
 * Why an allow rule that accepts only some query parameters refuses this request, or undefined:
 * a parameter it does not accept (403, named), a query Go releases read differently or a form body
 * that would add parameters (400).
 */
function queryRefusal(entry: CompiledEntry, method: string, shownPath: string, target: string, request: RequestInfo | undefined): Decision | undefined {
  const accepted = entry.query as ReadonlySet<string>;
  const id = entry.rule.id;
  if (isFormContentType(request?.contentType)) {
    return deny(400, id, `${DENIED_BY}${method} ${shownPath}: its form body would add parameters dockerd reads, and ${id} accepts only its own`, target);
  }
  const query = parseQuery(queryOf(target));
  if (query.problem !== null) {
    return deny(400, id, `${DENIED_BY}${method} ${shownPath}: its query cannot be read one way only (${query.problem})`, target);
  }
  for (const name of query.params.keys()) {
    if (accepted.has(name)) continue;
    const allowed = accepted.size === 0 ? 'none' : [...accepted].join(', ');
    return {
      allowed: false,
      status: 403,
      rule: id,
      reason: `${DENIED_BY}${method} ${shownPath}: ${id} allows no query parameter ${JSON.stringify(name.slice(0, 64))} (it allows: ${allowed})`,
      path: target,
      field: `query.${name.slice(0, 64)}`,
    };
  }
  return undefined;
}

/** Whether an absolute-form target's authority is the `Host` header (host names ignore case). */
function sameAuthority(authority: string, host: string | undefined): boolean {
  return host !== undefined && authority.length === host.length && authority.toLowerCase() === host.toLowerCase();
}

/** Which first segments can start a container-scoped route (see `containerNameStart`). */
const enum ContainerRoutes {
  None,
  /** `/containers/<name>/…` */
  Docker,
  /** Podman's `/libpod/containers/<name>/…` and `/libpod/pods/<name>/…` */
  Libpod,
}

const SLASH_CONTAINERS_SLASH = codeUnits('/containers/');
const SLASH_PODS_SLASH = codeUnits('/pods/');
const SLASH_ATTACH_WS = codeUnits('/attach/ws');

/**
 * Where the container name starts in the path `text[start, end)`, whose first segment is known to
 * be `containers` (for `ContainerRoutes.Docker`) or `libpod` (for `ContainerRoutes.Libpod`), or -1
 * when the path is not container-scoped.
 */
function containerNameStart(text: string, start: number, end: number, routes: ContainerRoutes): number {
  // `/containers` is 11 characters: a name follows when the path goes on past them.
  if (routes === ContainerRoutes.Docker) return start + 11 < end ? start + 12 : -1;
  if (routes === ContainerRoutes.Libpod) {
    if (regionEquals(text, start + 7, SLASH_CONTAINERS_SLASH)) return start + 19;
    if (regionEquals(text, start + 7, SLASH_PODS_SLASH)) return start + 13;
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
  if (secondSlash === end - 3 && firstSlash === end - 10 && regionEquals(text, firstSlash, SLASH_ATTACH_WS)) {
    return ContainerShape.AttachWebsocket;
  }
  return ContainerShape.MultiSegmentName;
}

/**
 * What a literal first segment decides: its rules, and whether it may start a container-scoped
 * route. Found by the segment's first character.
 */
interface FirstSegment {
  readonly section: string;
  /** `section` as `codeUnits`. */
  readonly sectionCodes: readonly number[];
  readonly entries: readonly CompiledEntry[];
  readonly containerRoutes: ContainerRoutes;
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
  // Own keys only, in a map: a path segment such as `constructor` must find no hint rather than
  // one inherited from Object.prototype.
  const sectionHints = new Map(Object.entries(policy.hints?.sections ?? {}));
  const writeHint = policy.hints?.write;
  const minApiVersion = settings.minApiVersion;
  // `protectHost`: a hook on allowed POSTs only, so other requests pay one comparison. Whether the
  // policy lets a client create volumes is asked of this evaluator once, when first needed.
  let volumeGrant: VolumeGrant | undefined;
  const judgeHost =
    compiled.protectHost === undefined
      ? undefined
      : createHostGuard(compiled.protectHost, () => (volumeGrant ??= grantOfVolumes(evaluate, sectionHints.get('volumes'))));
  // Undefined without a read section: then an allowed decision costs one comparison more.
  const readHook = createReadHook(compiled.read);

  // First segments by the code of their first character: finding the rules of a request costs a
  // comparison or two instead of slicing the segment and hashing it for a Map lookup. The segments
  // of container-scoped routes are there whether or not the policy has rules for them, so that one
  // comparison answers both questions.
  const segmentsByFirstChar: (FirstSegment[] | undefined)[] = [];
  const addSegment = (section: string, entries: readonly CompiledEntry[]): void => {
    const containerRoutes =
      section === 'containers' ? ContainerRoutes.Docker : section === 'libpod' ? ContainerRoutes.Libpod : ContainerRoutes.None;
    const segment: FirstSegment = { section, sectionCodes: codeUnits(section), entries, containerRoutes };
    (segmentsByFirstChar[section.charCodeAt(0)] ??= []).push(segment);
  };
  for (const [section, entries] of bySection) addSegment(section, entries);
  for (const section of ['containers', 'libpod']) if (!bySection.has(section)) addSegment(section, otherSections);

  /**
   * The known first segment of the path `text[start, end)`, or undefined. A section's entries are
   * only ever tried on paths whose first segment is that section: their matchers rely on it.
   */
  function firstSegment(text: string, start: number, end: number): FirstSegment | undefined {
    const candidates = segmentsByFirstChar[text.charCodeAt(start + 1)];
    if (candidates !== undefined) {
      for (let i = 0; i < candidates.length; i++) {
        const candidate = candidates[i] as FirstSegment;
        const after = start + 1 + candidate.section.length;
        const wholeSegment = after === end || (after < end && text.charCodeAt(after) === 0x2f);
        if (wholeSegment && regionEquals(text, start + 1, candidate.sectionCodes)) return candidate;
      }
    }
    return undefined;
  }

  /** The hint for the path `text[start, end)`: of its first two segments, else of its first. */
  function sectionHint(text: string, start: number, end: number): string | undefined {
    const first = slashBefore(text, start + 1, end);
    if (first > start) {
      const second = slashBefore(text, first + 1, end);
      const twoSegments = text.slice(start + 1, second < 0 ? end : second);
      const hint = sectionHints.get(twoSegments);
      if (hint !== undefined) return hint;
    }
    return sectionHints.get(text.slice(start + 1, first < 0 ? end : first));
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
      decision = Object.freeze(deny(400, null, MALFORMED_BY + why, null));
      malformedDecisions.set(why, decision);
    }
    return decision;
  }

  function evaluate(method: string, target: string, request?: RequestInfo): Decision {
    const parsed = parseTarget(target);
    if ('malformed' in parsed) return malformedDecision(parsed.malformed);
    const { decoded, restStart, restEnd, version } = parsed;
    // HAProxy (the original) refuses an absolute-form target whose authority is not the Host the
    // request carries; dockerd would route it by its path either way, but what a proxy in front
    // of the guard took for the destination must be what the guard decides for.
    if (parsed.authority !== undefined && !sameAuthority(parsed.authority, request?.host)) {
      return malformedDecision('an absolute-form target must name the same host as the Host header');
    }
    const forwarded = parsed.target;
    const shownPath = parsed.path;

    const bit = methodBit(method);
    if (bit === 0) {
      const shown = typeof method === 'string' && /^[A-Za-z]{1,16}$/.test(method) ? method : 'a request with an unreadable method to';
      return deny(403, 'method', `${DENIED_BY}${shown} ${shownPath}: the Docker Engine API uses only GET, HEAD, POST, PUT and DELETE`, forwarded);
    }
    if (version >= 0 && version < minApiVersion) {
      return deny(
        400,
        'min-api-version',
        `${DENIED_BY}${method} ${shownPath}: API version ${formatVersion(version)} is older than the minimum ${formatVersion(minApiVersion)} this filter accepts (old versions let a start request reconfigure the container)`,
        forwarded,
      );
    }

    let write = bit > METHOD_BITS.HEAD || request?.upgrade === true;
    const segment = firstSegment(decoded, restStart, restEnd);
    const nameStart = segment === undefined ? -1 : containerNameStart(decoded, restStart, restEnd, segment.containerRoutes);
    if (nameStart > 0) {
      let shape = containerShape(decoded, nameStart, restEnd);
      // dockerd's only DELETE route here is `/containers/{name:.*}`: a second segment is an alias.
      if (bit === METHOD_BITS.DELETE && slashBefore(decoded, nameStart, restEnd) >= 0) shape = ContainerShape.MultiSegmentName;
      if (shape === ContainerShape.MultiSegmentName) {
        return deny(
          403,
          'container-name',
          `${DENIED_BY}${method} ${shownPath}: a container name must be exactly one path segment (dockerd would resolve "a/b" as a link alias of another container)`,
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
          `${DENIED_BY}${method} ${shownPath}: a start request must not carry a configuration body`,
          forwarded,
        );
      }
    }

    const entries = segment === undefined ? otherSections : segment.entries;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as CompiledEntry;
      if ((entry.methods & bit) === 0) continue;
      if (entry.access === ACCESS_WRITE ? !write : entry.access === ACCESS_READ && write) continue;
      if (!entry.matches(decoded, restStart, restEnd)) continue;
      const rule = entry.rule;
      if (rule.whenQueryTrue !== undefined && !querySetsAny(forwarded, rule.whenQueryTrue, request)) continue;
      if (entry.allow && entry.query !== null) {
        const refusal = queryRefusal(entry, method, shownPath, forwarded, request);
        if (refusal !== undefined) return refusal;
      }
      if (entry.allow) {
        const allowed: Decision = {
          allowed: true,
          status: 200,
          rule: rule.id,
          reason: methodPrefix(bit) + shownPath + entry.reasonSuffix,
          path: forwarded,
        };
        if (judgeHost === undefined && readHook === undefined) return allowed;
        const rest = decoded.slice(restStart, restEnd);
        // The host checks first (a refusal there needs no lookup), then what a reader may see;
        // each adds its obligations to the other's.
        const judged = judgeHost === undefined || bit !== METHOD_BITS.POST ? allowed : judgeHost(allowed, method, shownPath, rest, request);
        return readHook === undefined || !judged.allowed ? judged : readHook(judged, method, rest, request);
      }
      let reason: string;
      if (rule.reason === undefined && entry.access === ACCESS_WRITE && writeHint !== undefined) {
        const granted = grantedApartFromWrites(entries, i, bit, decoded, restStart, restEnd);
        const hint = granted ? undefined : sectionHint(decoded, restStart, restEnd);
        const what =
          bit > METHOD_BITS.HEAD
            ? `${method} ${shownPath}`
            : request?.upgrade === true
              ? `${method} ${shownPath} (an upgrade, which counts as a write)`
              : `${method} ${shownPath} (a websocket attach, which writes to the container)`;
        reason = `${DENIED_BY}${what}: it needs ${writeHint}${hint === undefined ? '' : ` and ${hint}`}`;
      } else reason = DENIED_BY + methodPrefix(bit) + shownPath + entry.reasonSuffix;
      return deny(403, rule.id, reason, forwarded);
    }

    const hint = sectionHint(decoded, restStart, restEnd);
    return deny(
      403,
      'default-deny',
      hint === undefined
        ? `${DENIED_BY}${method} ${shownPath}: no rule of the ${policy.name} policy allows it`
        : `${DENIED_BY}${method} ${shownPath}: it needs ${hint}`,
      forwarded,
    );
  }
  return evaluate;
}

/** Whether this policy lets a request create a volume, and what to say when it does not. */
function grantOfVolumes(evaluate: Evaluate, hint: string | undefined): VolumeGrant {
  const granted = evaluate('POST', '/volumes/create').allowed;
  if (hint === undefined) return { granted, rule: 'default-deny', needs: 'needs a rule allowing POST /volumes/create' };
  return { granted, rule: hint.split('=', 1)[0] as string, needs: `needs ${hint}` };
}

export type { Method };
