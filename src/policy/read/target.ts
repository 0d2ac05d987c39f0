import { parseQuery } from '../query.js';
import { encodeFilters, parseFilters } from './filters.js';

/**
 * Where the object a `visible` obligation names sits in a decided target, and the target with
 * another reference there. Pure: no `node:` imports.
 */

/**
 * A reference dockerd can never resolve: not a name (names start with a letter or digit), not an ID
 * prefix (IDs are hexadecimal), not a service or task name. The proxy forwards it in place of a
 * reference the client may not see, so dockerd answers as for a missing object, validation order,
 * status, headers and endpoint-specific wording included; the proxy then writes the client's own
 * reference back into the answer.
 *
 * @example
 * ```ts
 * withVisibleRef('/v1.41/containers/web/logs?stdout=1', MISSING_REF); // '/v1.41/containers/_dsf-no-such-object_/logs?stdout=1'
 * ```
 */
export const MISSING_REF = '_dsf-no-such-object_';

const VERSION_SEGMENT = /^v[0-9.]+$/;

/**
 * The decided target with `ref` in place of the object reference its `visible` obligation names:
 * the second segment after the version prefix (`/containers/<ref>/…`, `/exec/<id>/…`,
 * `/services/<ref>`, `/tasks/<id>`), or, for a task list, the value of its `service` filter.
 * `ref` must be a full ID or `MISSING_REF` (characters that need no encoding).
 *
 * @example
 * ```ts
 * withVisibleRef('/v1.41/containers/web/json', '4f1c…'); // '/v1.41/containers/4f1c…/json'
 * ```
 */
export function withVisibleRef(target: string, ref: string): string {
  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = queryStart === -1 ? '' : target.slice(queryStart + 1);
  const segments = path.split('/');
  const first = VERSION_SEGMENT.test(segments[1] ?? '') ? 2 : 1;
  if (segments[first] === 'tasks' && segments.length === first + 1) {
    const pairs = query.split('&').map((pair) => {
      const values = parseQuery(pair).params.get('filters');
      if (values === undefined) return pair;
      const parsed = parseFilters(values[0] as string);
      if (parsed.args === null) return pair;
      parsed.args.set('service', new Map([[ref, true]]));
      return `filters=${encodeURIComponent(encodeFilters(parsed.args))}`;
    });
    return `${path}?${pairs.join('&')}`;
  }
  if (segments.length <= first + 1) return target;
  segments[first + 1] = ref;
  return queryStart === -1 ? segments.join('/') : `${segments.join('/')}?${query}`;
}

/**
 * The reference a `visible` obligation's `id` is, as the client wrote it: what dockerd's messages
 * would quote.
 *
 * @example
 * ```ts
 * jsonEscapedRef('we"b'); // 'we\\"b'
 * ```
 */
export function jsonEscapedRef(ref: string): string {
  return JSON.stringify(ref).slice(1, -1);
}
