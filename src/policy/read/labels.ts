import type { LabelRequirement } from '../types.js';

/**
 * Label requirements: what `VISIBLE_LABELS` (and `read.visibleLabels` of a policy) says an object
 * must carry to be visible. Pure: no `node:` imports.
 */

/**
 * Attribute names dockerd writes into a container event over the container's own labels (`image`,
 * `name`) or next to them (`exitCode`, `signal`, `execID`, and, 20.10 to 28.x, `width`/`height` of
 * `resize`, `oldName` of `rename`, `comment`/`imageID`/`imageRef` of `commit`, `execDuration` of
 * `exec_die`). A requirement on one of these could not be judged on events: dockerd's `label`
 * filter reads the attribute, so a hidden container's event carrying it would pass.
 */
const EVENT_ATTRIBUTES = new Set(['image', 'name', 'exitCode', 'signal', 'execID', 'width', 'height', 'oldName', 'comment', 'imageID', 'imageRef', 'execDuration']);

// Printable ASCII and beyond, but no control characters: a key or value with a line break or a
// NUL is a configuration mistake, never a label anyone routes on.
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Why one requirement cannot be used, or `null`. Shared by the string form and the object form.
 */
function requirementProblem(key: string, value: string | undefined): string | null {
  if (key.length === 0) return 'has an empty label key';
  if (key.includes('=') || key.includes(',')) return `has the key ${JSON.stringify(key)}, which contains "=" or ","`;
  if (CONTROL.test(key) || (value !== undefined && CONTROL.test(value))) return 'contains a control character';
  if (key !== key.trim()) return `has the key ${JSON.stringify(key)} with surrounding blanks`;
  if (value === '') {
    // Swarm's label filter reads `key=` as "has the key", the container filter as "is empty": the
    // two cannot be given the same meaning, so neither is offered.
    return `requires ${JSON.stringify(key)} to be empty, which dockerd's filters read two ways; write "${key}" alone to require the label whatever its value`;
  }
  if (value !== undefined && value.includes(',')) return `has the value ${JSON.stringify(value)}, which contains ","`;
  if (EVENT_ATTRIBUTES.has(key)) {
    return `uses the key ${JSON.stringify(key)}, which dockerd also writes into events (${[...EVENT_ATTRIBUTES].join(', ')}): a label filter on events would read dockerd's value instead`;
  }
  return null;
}

/**
 * Parses a comma-separated list of label requirements (`traefik.enable=true,com.example.public`):
 * each item `key=value` (the label must have exactly that value) or `key` alone (the object must
 * have the label, whatever its value). Blanks around items are ignored. Returns the requirements,
 * or why the text cannot be used (`null` problem means none).
 *
 * @example
 * ```ts
 * parseLabelRequirements('traefik.enable=true, com.example.public').requirements;
 * // [{ key: 'traefik.enable', value: 'true' }, { key: 'com.example.public' }]
 * parseLabelRequirements('a=b,,c').problem; // 'item 2 is empty'
 * ```
 */
export function parseLabelRequirements(text: string): {
  readonly requirements: readonly LabelRequirement[];
  readonly problem: string | null;
} {
  const requirements: LabelRequirement[] = [];
  if (text.trim() === '') return { requirements, problem: 'is empty' };
  const items = text.split(',');
  for (let index = 0; index < items.length; index++) {
    const item = (items[index] as string).trim();
    if (item === '') return { requirements: [], problem: `item ${index + 1} is empty` };
    const equals = item.indexOf('=');
    const key = equals === -1 ? item : item.slice(0, equals).trim();
    const value = equals === -1 ? undefined : item.slice(equals + 1).trim();
    const problem = requirementProblem(key, value);
    if (problem !== null) return { requirements: [], problem: `item ${index + 1} (${JSON.stringify(item)}) ${problem}` };
    requirements.push(value === undefined ? Object.freeze({ key }) : Object.freeze({ key, value }));
  }
  return { requirements: Object.freeze(requirements), problem: null };
}

/**
 * Why a requirement given as an object (`{ key, value? }`) cannot be used, or `null`.
 *
 * @example
 * ```ts
 * labelRequirementProblem({ key: 'traefik.enable', value: 'true' }); // null
 * labelRequirementProblem({ key: 'name' }); // 'uses the key "name", which dockerd also writes into events …'
 * ```
 */
export function labelRequirementProblem(requirement: unknown): string | null {
  if (typeof requirement !== 'object' || requirement === null || Array.isArray(requirement)) return 'must be an object { key, value? }';
  for (const name of Object.keys(requirement)) if (name !== 'key' && name !== 'value') return `has the unknown key \`${name}\``;
  const { key, value } = requirement as { key?: unknown; value?: unknown };
  if (typeof key !== 'string') return '`key` must be a string';
  if (value !== undefined && typeof value !== 'string') return '`value` must be a string';
  return requirementProblem(key, value as string | undefined);
}

/**
 * A requirement as dockerd's `label` filter spells it: `key=value`, or `key`.
 *
 * @example
 * ```ts
 * formatRequirement({ key: 'traefik.enable', value: 'true' }); // 'traefik.enable=true'
 * ```
 */
export function formatRequirement(requirement: LabelRequirement): string {
  return requirement.value === undefined ? requirement.key : `${requirement.key}=${requirement.value}`;
}

/**
 * Whether an object's labels satisfy every requirement: each key present (as an own property), with
 * the required value where one is given. Missing or malformed labels (`null`, not an object) satisfy
 * nothing but an empty list of requirements.
 *
 * @example
 * ```ts
 * const visible = [{ key: 'traefik.enable', value: 'true' }];
 * labelsSatisfy({ 'traefik.enable': 'true', other: 'x' }, visible); // true
 * labelsSatisfy({ 'traefik.enable': 'false' }, visible); // false
 * labelsSatisfy(null, visible); // false
 * ```
 */
export function labelsSatisfy(labels: unknown, requirements: readonly LabelRequirement[]): boolean {
  if (requirements.length === 0) return true;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return false;
  for (const { key, value } of requirements) {
    if (!Object.hasOwn(labels, key)) return false;
    const actual = (labels as Record<string, unknown>)[key];
    if (typeof actual !== 'string') return false;
    if (value !== undefined && actual !== value) return false;
  }
  return true;
}
