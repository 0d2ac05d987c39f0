import { isFormContentType, parseQuery, queryOf, type ParsedQuery } from '../query.js';
import type { Decision, Obligations, RequestInfo } from '../types.js';
import { CHECKPOINT, CREATE, EXEC, PLUGIN_SET, SERVICE, UPDATE, VOLUME, type BodyEndpoint } from './bodies.js';
import type { CheckContext, Violation } from './checks.js';
import { decode, isUnreadable, parseJsonBody } from './go-json.js';
import { checkBuildQuery, checkImageCreateQuery, checkStartQuery } from './queries.js';
import { HOST_LISTS, HOST_SWITCHES, type HostSettings } from './settings.js';

/**
 * `protectHost` in `evaluate`: after a rule allowed a `POST`, the endpoints that carry a
 * configuration are judged on it. Pure: no `node:` imports.
 */

type QueryCheck = (query: ParsedQuery, context: CheckContext) => Violation | undefined;

/** The most volumes and networks one request may name (each is looked up on dockerd). */
const MAX_LOOKUPS = 64;

/** What an endpoint needs judged. */
type Route =
  | { readonly body: BodyEndpoint }
  | { readonly query: QueryCheck }
  | { readonly refuse: Violation };

const PLUGIN_INSTALL: Route = {
  refuse: { status: 403, setting: 'allowPluginInstall', field: '', what: 'installs a plugin, which runs with the privileges its author asks for' },
};
const LIBPOD: Route = {
  refuse: { status: 403, setting: null, field: '', what: "carries a Podman configuration, which this guard does not read" },
};

/** Podman's endpoints that carry a container, pod or volume configuration. */
const LIBPOD_CONFIG = new Set(['containers/create', 'pods/create', 'play/kube', 'kube/play', 'volumes/create', 'build', 'images/import']);
const LIBPOD_CONTAINER_CONFIG = new Set(['exec', 'update', 'restore']);

/** The route of a `POST` path (after the version prefix), or undefined when nothing is judged. */
function routeOf(path: string): Route | undefined {
  const segments = path.split('/');
  // segments[0] is '' (the path starts with '/').
  const [, first, second, third] = segments;
  const count = segments.length - 1;
  switch (first) {
    case 'containers':
      if (count === 2 && second === 'create') return { body: CREATE };
      if (count !== 3) return undefined;
      if (third === 'update') return { body: UPDATE };
      if (third === 'exec') return { body: EXEC };
      if (third === 'start') return { query: checkStartQuery };
      if (third === 'checkpoints') return { body: CHECKPOINT };
      return undefined;
    case 'volumes':
      return count === 2 && second === 'create' ? { body: VOLUME } : undefined;
    case 'services':
      if (count === 2 && second === 'create') return { body: SERVICE };
      return count === 3 && third === 'update' ? { body: SERVICE } : undefined;
    case 'plugins':
      if (count === 2 && (second === 'pull' || second === 'create')) return PLUGIN_INSTALL;
      if (count === 3 && third === 'upgrade') return PLUGIN_INSTALL;
      return count === 3 && third === 'set' ? { body: PLUGIN_SET } : undefined;
    case 'build':
      return count === 1 ? { query: checkBuildQuery } : undefined;
    case 'images':
      return count === 2 && second === 'create' ? { query: checkImageCreateQuery } : undefined;
    case 'libpod': {
      const rest = segments.slice(2);
      if (LIBPOD_CONFIG.has(rest.join('/'))) return LIBPOD;
      if (rest[0] === 'containers' && rest.length === 3 && LIBPOD_CONTAINER_CONFIG.has(rest[2] as string)) return LIBPOD;
      return undefined;
    }
    default:
      return undefined;
  }
}

/**
 * Whether the request's `Content-Type` is one dockerd reads a JSON body under: absent (where dockerd
 * allows it), or exactly one header whose media type is `application/json` (any case, with
 * well-formed parameters, as Go's `mime.ParseMediaType` reads it). Returns why not, or null.
 */
function contentTypeProblem(contentType: string | readonly string[] | undefined, needsJsonType: boolean): string | null {
  const values = contentType === undefined ? [] : typeof contentType === 'string' ? [contentType] : contentType;
  if (values.length > 1) return 'the request has more than one Content-Type header';
  if (values.length === 0) return needsJsonType ? 'the request has no Content-Type; dockerd reads this body only as application/json' : null;
  const [type, ...parameters] = (values[0] as string).split(';');
  if ((type as string).trim().toLowerCase() !== 'application/json') {
    return 'the Content-Type is not application/json, the only type dockerd reads this body as';
  }
  for (const parameter of parameters) {
    if (!/^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+=("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*$/.test(parameter)) {
      return 'the Content-Type has a malformed parameter';
    }
  }
  return null;
}

/**
 * How a setting is named in reasons: its preset variable or its option path, and what it must be set
 * to. `entry` is what a list needs.
 */
function needs(violation: Violation, naming: HostSettings['naming']): string {
  const { setting, entry } = violation;
  if (setting === null) {
    return violation.status === 400 ? 'this guard cannot judge it, so it refuses it' : 'no setting allows it';
  }
  if (setting in HOST_SWITCHES) {
    const name = naming === 'env' ? `${HOST_SWITCHES[setting as keyof typeof HOST_SWITCHES]}=1` : `protectHost.${setting}: true`;
    return `it needs ${name}`;
  }
  const name = naming === 'env' ? HOST_LISTS[setting as keyof typeof HOST_LISTS] : `protectHost.${setting}`;
  if (setting === 'allowBindMounts') {
    return violation.what.includes('Docker daemon')
      ? `it needs ${name} to list ${entry ?? ''} exactly`
      : `it needs ${name} to list ${entry ?? ''} or a directory above it`;
  }
  return `it needs ${name} to list ${entry ?? ''}`;
}

function ruleOf(violation: Violation): string {
  const { setting } = violation;
  if (setting === null) return 'PROTECT_HOST';
  return setting in HOST_SWITCHES ? HOST_SWITCHES[setting as keyof typeof HOST_SWITCHES] : HOST_LISTS[setting as keyof typeof HOST_LISTS];
}

/**
 * The volumes a create names and this policy would not let the client create (`VOLUMES` not
 * granted): what to say, and the rule to name.
 *
 * @example
 * ```ts
 * const grant: VolumeGrant = { granted: false, rule: 'VOLUMES', needs: 'needs VOLUMES=1' };
 * ```
 */
export interface VolumeGrant {
  readonly granted: boolean;
  readonly rule: string;
  readonly needs: string;
}

/**
 * Builds the `protectHost` hook of an evaluator. `judge` is called for an allowed `POST` with the
 * decision the rules made and the path after the version prefix; it returns the decision to give.
 *
 * @example
 * ```ts
 * const judge = createHostGuard(settings, () => volumeGrant);
 * const decision = judge(allowed, 'POST', '/v1.41/containers/create', '/containers/create', request);
 * ```
 */
export function createHostGuard(
  settings: HostSettings,
  volumeGrant: () => VolumeGrant,
): (allowed: Decision, method: string, shownPath: string, path: string, request: RequestInfo | undefined) => Decision {
  const maxBytes = settings.maxBodyBytes;
  const bodyObligation: Obligations = Object.freeze({ body: Object.freeze({ maxBytes }) });

  return function judge(allowed, method, shownPath, path, request) {
    const route = routeOf(path);
    if (route === undefined) return allowed;
    const prefix = `docker-socket-filter denied ${method} ${shownPath}: `;
    const deny = (status: 400 | 403 | 413, rule: string, reason: string, field?: string): Decision => ({
      allowed: false,
      status,
      rule,
      reason: prefix + reason,
      path: allowed.path,
      ...(field === undefined ? {} : { field }),
    });
    const refuse = (violation: Violation): Decision => {
      const reason = `${violation.field === '' ? 'it' : violation.field} ${violation.what}; ${needs(violation, settings.naming)}`;
      return deny(violation.status, ruleOf(violation), reason, violation.field === '' ? undefined : violation.field);
    };

    if ('refuse' in route) {
      const setting = route.refuse.setting;
      return setting !== null && setting in HOST_SWITCHES && settings.switches[setting as keyof typeof HOST_SWITCHES] ? allowed : refuse(route.refuse);
    }
    if ('query' in route) {
      const query = parseQuery(queryOf(allowed.path ?? ''));
      if (query.problem !== null) return deny(400, 'PROTECT_HOST', `${query.problem}, so its parameters cannot be read one way only`, 'query');
      if (isFormContentType(request?.contentType)) {
        return deny(400, 'PROTECT_HOST', 'the body is a form, whose parameters dockerd reads before the query', 'query');
      }
      const violation = route.query(query, { settings, daemon: request?.daemon });
      return violation === undefined ? allowed : refuse(violation);
    }

    const endpoint = route.body;
    const declared = request?.bodyLength ?? 0;
    const tooLarge = (): Decision =>
      deny(413, 'PROTECT_HOST', `the body is larger than ${maxBytes} bytes, the most this guard reads to judge it`);
    if (declared > maxBytes) return tooLarge();
    const body = request?.body;
    if (body === undefined) return { ...allowed, obligations: bodyObligation };
    if ((typeof body === 'string' ? body.length : body.byteLength) > maxBytes) return tooLarge();

    const typeProblem = contentTypeProblem(request?.contentType, endpoint.needsJsonType);
    if (typeProblem !== null) return deny(400, 'PROTECT_HOST', typeProblem);
    const tree = parseJsonBody(body);
    if (isUnreadable(tree)) return deny(400, 'PROTECT_HOST', tree.unreadable);
    const decoded = decode(tree, endpoint.schema, '');
    if (isUnreadable(decoded)) return deny(400, 'PROTECT_HOST', decoded.unreadable, decoded.field);

    const result = endpoint.check(decoded, { settings, daemon: request?.daemon });
    if ('violation' in result) return refuse(result.violation);
    // Each name below is a question to dockerd: a body naming thousands would make one request
    // thousands of lookups. A create names a handful.
    if (result.volumes.length + (result.networks?.length ?? 0) > MAX_LOOKUPS) {
      return deny(400, 'PROTECT_HOST', `it names more than ${MAX_LOOKUPS} volumes and networks, each of which this guard would have to ask dockerd about`);
    }
    const obligations: { -readonly [K in 'existingVolumes' | 'notHostNetworks']?: NonNullable<Obligations[K]> } = {};
    if (result.volumes.length > 0) {
      const grant = volumeGrant();
      if (!grant.granted) {
        obligations.existingVolumes = Object.freeze({
          names: Object.freeze([...result.volumes]),
          rule: grant.rule,
          reason: `${prefix}the volume {name} does not exist, and creating it ${grant.needs}`,
        });
      }
    }
    const networks = result.networks ?? [];
    if (networks.length > 0) {
      const violation: Violation = { status: 403, setting: 'allowHostNamespaces', field: '', what: '' };
      obligations.notHostNetworks = Object.freeze({
        names: Object.freeze([...networks]),
        rule: 'ALLOW_HOST_NAMESPACES',
        reason: `${prefix}the network {name} is the host's network; ${needs(violation, settings.naming)}`,
      });
    }
    return obligations.existingVolumes === undefined && obligations.notHostNetworks === undefined
      ? allowed
      : { ...allowed, obligations: Object.freeze(obligations) };
  };
}
