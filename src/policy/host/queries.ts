import type { ParsedQuery } from '../query.js';
import { checkHostPath, checkSecurityOptValues, type CheckContext, type Violation } from './checks.js';

/**
 * The query checks of `build`, `images/create` and `containers/<id>/start`, on the query as Go's
 * `url.ParseQuery` reads it (`r.FormValue`: the first value of a key). Pure: no `node:` imports.
 */

const first = (query: ParsedQuery, key: string): string => query.params.get(key)?.[0] ?? '';

/**
 * `POST /build`: the network, cgroup and security options of the build's containers, and remote contexts.
 *
 * @example
 * ```ts
 * checkBuildQuery(parseQuery('networkmode=host'), context); // { setting: 'allowHostNetworkBuild', … }
 * ```
 */
export function checkBuildQuery(query: ParsedQuery, context: CheckContext): Violation | undefined {
  const { switches } = context.settings;
  const network = first(query, 'networkmode');
  if (network === 'host' && !switches.allowHostNetworkBuild) {
    return { status: 403, setting: 'allowHostNetworkBuild', field: 'query.networkmode', what: 'is "host"' };
  }
  if (network.startsWith('container:') && !switches.allowHostNamespaces) {
    return { status: 403, setting: 'allowHostNamespaces', field: 'query.networkmode', what: 'joins the network namespace of another container' };
  }
  const remote = first(query, 'remote');
  if (remote !== '' && !switches.allowRemoteFetch) {
    return { status: 403, setting: 'allowRemoteFetch', field: 'query.remote', what: 'makes the daemon fetch a build context from a URL' };
  }
  if (!switches.allowUnconfined) {
    if (first(query, 'cgroupparent') !== '') {
      return { status: 403, setting: 'allowUnconfined', field: 'query.cgroupparent', what: 'puts the build in a cgroup chosen by the client' };
    }
    const problem = checkSecurityOptValues(query.params.get('securityopt') ?? [], 'query.securityopt');
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * `POST /images/create`: `fromSrc` other than `-` (the body) is a URL the daemon fetches.
 *
 * @example
 * ```ts
 * checkImageCreateQuery(parseQuery('fromSrc=http%3A%2F%2Fx'), context); // { setting: 'allowRemoteFetch', … }
 * ```
 */
export function checkImageCreateQuery(query: ParsedQuery, context: CheckContext): Violation | undefined {
  const source = first(query, 'fromSrc');
  if (source !== '' && source !== '-' && !context.settings.switches.allowRemoteFetch) {
    return { status: 403, setting: 'allowRemoteFetch', field: 'query.fromSrc', what: 'makes the daemon fetch an image from a URL' };
  }
  return undefined;
}

/**
 * `POST /containers/<id>/start`: a checkpoint restored from a directory on the host.
 *
 * @example
 * ```ts
 * checkStartQuery(parseQuery('checkpoint=c&checkpoint-dir=%2Fetc'), context); // { setting: 'allowBindMounts', … }
 * ```
 */
export function checkStartQuery(query: ParsedQuery, context: CheckContext): Violation | undefined {
  const checkpoint = first(query, 'checkpoint');
  if (checkpoint.includes('/') || checkpoint === '..' || checkpoint === '.') {
    return { status: 403, setting: null, field: 'query.checkpoint', what: 'names a path outside the checkpoint directory' };
  }
  const directory = first(query, 'checkpoint-dir');
  return directory === '' ? undefined : checkHostPath(directory, 'query.checkpoint-dir', context);
}
