import { SocketFilterTypeError } from '../../errors.js';
import type { LabelRequirement, ReadPolicy } from '../types.js';
import { labelRequirementProblem, parseLabelRequirements } from './labels.js';

/**
 * Validation of a policy's read section. Pure: no `node:` imports.
 */

/**
 * Every key of a policy's `read` section.
 *
 * @example
 * ```ts
 * READ_POLICY_KEYS; // ['redactEnv', 'visibleLabels']
 * ```
 */
export const READ_POLICY_KEYS: readonly string[] = Object.freeze(['redactEnv', 'visibleLabels']);

const READ_KEYS = new Set(READ_POLICY_KEYS);

function invalid(where: string, message: string): never {
  throw new SocketFilterTypeError('ERR_DSF_INVALID_OPTION', `The \`${where}\` option ${message}`);
}

/**
 * The requirements without repeats; a key required twice with two meanings is refused: swarm keeps
 * one value per label key, so the merged filter could not hold both.
 */
function uniqueRequirements(requirements: readonly LabelRequirement[], where: string): LabelRequirement[] {
  const byKey = new Map<string, LabelRequirement>();
  for (const requirement of requirements) {
    const seen = byKey.get(requirement.key);
    if (seen === undefined) byKey.set(requirement.key, requirement);
    else if (seen.value !== requirement.value) invalid(where, `requires the label ${JSON.stringify(requirement.key)} twice, with two meanings`);
  }
  return [...byKey.values()];
}

/**
 * The read section a spec gives, validated and frozen: `redactEnv` a boolean; `visibleLabels` an
 * array of requirements, each `{ key, value? }` or a string `key=value` / `key`, or one string of
 * comma-separated requirements (as `VISIBLE_LABELS`). Throws a `TypeError` naming the path
 * (`policy.read.visibleLabels[1]`). `undefined` stays `undefined`.
 *
 * @example
 * ```ts
 * checkReadPolicy({ redactEnv: true, visibleLabels: 'traefik.enable=true' }, 'read');
 * // { redactEnv: true, visibleLabels: [{ key: 'traefik.enable', value: 'true' }] }
 * ```
 */
export function checkReadPolicy(read: unknown, where: string): ReadPolicy | undefined {
  if (read === undefined) return undefined;
  if (typeof read !== 'object' || read === null || Array.isArray(read)) invalid(where, 'must be an object such as { redactEnv: true }');
  for (const key of Object.keys(read)) if (!READ_KEYS.has(key)) invalid(`${where}.${key}`, 'is not a known option');
  const { redactEnv, visibleLabels } = read as { redactEnv?: unknown; visibleLabels?: unknown };
  if (redactEnv !== undefined && typeof redactEnv !== 'boolean') invalid(`${where}.redactEnv`, 'must be a boolean');
  let requirements: LabelRequirement[] | undefined;
  if (visibleLabels !== undefined) {
    const items: readonly unknown[] = typeof visibleLabels === 'string' ? [visibleLabels] : Array.isArray(visibleLabels) ? visibleLabels : invalid(`${where}.visibleLabels`, 'must be an array of label requirements or a string such as "traefik.enable=true"');
    requirements = [];
    items.forEach((item, index) => {
      const at = typeof visibleLabels === 'string' ? `${where}.visibleLabels` : `${where}.visibleLabels[${index}]`;
      if (typeof item === 'string') {
        const parsed = parseLabelRequirements(item);
        if (parsed.problem !== null) invalid(at, parsed.problem);
        requirements?.push(...parsed.requirements);
        return;
      }
      const problem = labelRequirementProblem(item);
      if (problem !== null) invalid(at, problem);
      const { key, value } = item as LabelRequirement;
      requirements?.push(Object.freeze(value === undefined ? { key } : { key, value }));
    });
    if (requirements.length === 0) invalid(`${where}.visibleLabels`, 'must name at least one label');
    requirements = uniqueRequirements(requirements, `${where}.visibleLabels`);
  }
  return Object.freeze({
    ...(redactEnv === undefined ? {} : { redactEnv }),
    ...(requirements === undefined ? {} : { visibleLabels: Object.freeze(requirements) }),
  });
}

/**
 * The read section of a policy extending another: never looser than the base. Redaction holds if
 * either asks for it; visibility requires the base's labels and the extension's.
 *
 * @example
 * ```ts
 * combineRead({ redactEnv: true }, { visibleLabels: [{ key: 'a' }] }); // { redactEnv: true, visibleLabels: [{ key: 'a' }] }
 * ```
 */
export function combineRead(base: ReadPolicy | undefined, extension: ReadPolicy | undefined): ReadPolicy | undefined {
  if (base === undefined) return extension;
  if (extension === undefined) return base;
  const redactEnv = base.redactEnv === true || extension.redactEnv === true;
  const labels = uniqueRequirements([...(base.visibleLabels ?? []), ...(extension.visibleLabels ?? [])], 'read.visibleLabels');
  return Object.freeze({
    ...(redactEnv ? { redactEnv } : {}),
    ...(labels.length === 0 ? {} : { visibleLabels: Object.freeze(labels) }),
  });
}
