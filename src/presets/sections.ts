import type { Rule } from '../policy/types.js';

/**
 * A container name as Tecnativa's `ALLOW_*` rules accept it (`[a-zA-Z0-9_.-]+`), as a picomatch
 * extglob. It is one segment by construction; the evaluator also refuses multi-segment names.
 */
export const CONTAINER_NAME = '+([a-zA-Z0-9_.-])';

/**
 * The Docker Engine API sections both images gate, variable -> first path segment. Tecnativa
 * additionally has `GRPC`.
 */
export const DOCKER_SECTIONS: Readonly<Record<string, string>> = Object.freeze({
  AUTH: 'auth',
  BUILD: 'build',
  COMMIT: 'commit',
  CONFIGS: 'configs',
  CONTAINERS: 'containers',
  DISTRIBUTION: 'distribution',
  EVENTS: 'events',
  EXEC: 'exec',
  IMAGES: 'images',
  INFO: 'info',
  NETWORKS: 'networks',
  NODES: 'nodes',
  PING: '_ping',
  PLUGINS: 'plugins',
  SECRETS: 'secrets',
  SERVICES: 'services',
  SESSION: 'session',
  SWARM: 'swarm',
  SYSTEM: 'system',
  TASKS: 'tasks',
  VERSION: 'version',
  VOLUMES: 'volumes',
});

/** Variables granted when unset, in both images. */
export const DEFAULT_GRANTED = new Set(['EVENTS', 'PING', 'VERSION']);

/**
 * The rule that grants a whole section: the section itself and everything below it, on whole
 * segments (`/containersXYZ` is not `/containers`).
 */
export function sectionRule(variable: string, base: string): Rule {
  return { id: variable, effect: 'allow', paths: [base, `${base}/**`] };
}

/** The write gate: every write (non-GET/HEAD, upgrade, websocket attach) is denied. */
export const WRITE_GATE: Rule = Object.freeze({ id: 'POST', effect: 'deny', access: 'write', paths: ['/**'] });

/** A container action rule (`ALLOW_START` and friends): POST on `<base>/<name>/<action>` only. */
export function actionRule(variable: string, base: string, actions: readonly string[]): Rule {
  return {
    id: variable,
    effect: 'allow',
    methods: ['POST'],
    paths: actions.map((action) => `${base}/${CONTAINER_NAME}/${action}`),
  };
}

/** Hints for reasons: which setting grants each section. */
export function sectionHints(sections: Readonly<Record<string, string>>): Record<string, string> {
  const hints: Record<string, string> = {};
  for (const [variable, base] of Object.entries(sections)) hints[base.slice(1)] = `${variable}=1`;
  return hints;
}

/** Container sub-resources that leak files, filesystems or logs: linuxserver's `ALLOW_<NAME>` gates. */
export const SUB_RESOURCES = ['archive', 'changes', 'export', 'logs', 'top'] as const;

/** The variable of a sub-resource gate: `archive` -> `ALLOW_ARCHIVE`. */
export const subResourceVariable = (resource: string): string => `ALLOW_${resource.toUpperCase()}`;

/** The denial of one sub-resource, on `/containers/<name>/<resource>` (and Podman's, if asked). */
export function subResourceRule(resource: string, withLibpod: boolean): Rule {
  const variable = subResourceVariable(resource);
  return {
    id: variable,
    effect: 'deny',
    paths: withLibpod ? [`/containers/*/${resource}`, `/libpod/containers/*/${resource}`] : [`/containers/*/${resource}`],
    reason: `needs ${variable}=1 (a container's ${resource} can expose its files, filesystem or logs)`,
  };
}
