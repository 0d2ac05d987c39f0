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

/**
 * The query parameters each action has in the Docker API (1.41 and later: `signal` on stop and
 * restart since 1.42) and in Podman's libpod API. Nothing else passes an action rule: the query is
 * configuration too (`start?checkpoint=<dir>` restores a checkpoint on a daemon run with
 * `--experimental`).
 */
const ACTION_QUERY: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = Object.freeze({
  '/containers': { start: ['detachKeys'], stop: ['t', 'signal'], restart: ['t', 'signal'], kill: ['signal'], pause: [], unpause: [] },
  '/libpod/containers': {
    start: ['detachKeys'],
    stop: ['timeout', 't', 'ignore', 'Ignore'],
    restart: ['t'],
    kill: ['signal'],
    pause: [],
    unpause: [],
  },
  '/libpod/pods': { start: [], stop: ['t'], restart: [], kill: ['signal'], pause: [], unpause: [] },
});

/**
 * A container action rule (`ALLOW_START` and friends): POST on `<base>/<name>/<action>` only, with
 * the action's own query parameters only. One rule per action, so that each knows its parameters.
 */
export function actionRules(variable: string, base: string, actions: readonly string[]): Rule[] {
  return actions.map((action) => ({
    id: variable,
    effect: 'allow',
    methods: ['POST'],
    paths: [`${base}/${CONTAINER_NAME}/${action}`],
    query: ACTION_QUERY[base]?.[action] ?? [],
  }));
}

/** Hints for reasons: which setting grants each section. */
export function sectionHints(sections: Readonly<Record<string, string>>): Record<string, string> {
  const hints: Record<string, string> = {};
  for (const [variable, base] of Object.entries(sections)) hints[base.slice(1)] = `${variable}=1`;
  return hints;
}

/** Container sub-resources that leak files, filesystems or logs: denied unless `ALLOW_<NAME>`. */
export const SUB_RESOURCES = ['archive', 'changes', 'export', 'logs', 'top'] as const;

/** `ALLOW_ARCHIVE` for `archive`, and so on. */
export const subResourceVariable = (resource: string): string => `ALLOW_${resource.toUpperCase()}`;

/**
 * linuxserver's sub-resource gates, for the resources whose variable is not granted: what its
 * current configuration gates, `(/libpod)?/(containers|pods)/<name>/(archive|change|export|logs|top)`
 * (`/pods` without `/libpod` is no route of dockerd's, so no rule grants it anyway), and `attach`
 * with `logs=1` (it replays the logs) under `ALLOW_LOGS`.
 */
export function subResourceGates(settings: Readonly<Record<string, boolean>>): Rule[] {
  const rules: Rule[] = [];
  for (const resource of SUB_RESOURCES) {
    const variable = subResourceVariable(resource);
    if (settings[variable]) continue;
    rules.push({
      id: variable,
      effect: 'deny',
      paths: [`/containers/*/${resource}`, `/libpod/containers/*/${resource}`, `/libpod/pods/*/${resource}`],
      reason: `it needs ${variable}=1 (a container's ${resource} can expose its files, filesystem or logs)`,
    });
    if (resource === 'logs') {
      rules.push({
        id: variable,
        effect: 'deny',
        paths: ['/containers/*/attach', '/containers/*/attach/ws', '/libpod/containers/*/attach'],
        whenQueryTrue: ['logs'],
        reason: `it needs ${variable}=1 (attach with logs=1 replays the container's logs)`,
      });
    }
  }
  return rules;
}

/**
 * Creating an exec instance needs what starting it needs: an exec instance has no other use, and a
 * `docker exec` refused only at its start prints `unable to upgrade to tcp, received 403`, the
 * docker CLI never showing why. Refused at the create, it prints the reason. `base` is
 * `/containers` or `/libpod/containers`; `variables` what the exec needs, the missing ones named.
 */
export function execCreateGate(
  settings: Readonly<Record<string, boolean>>,
  base: string,
  execVariable: string,
  variables: readonly string[],
): Rule | undefined {
  if (settings[execVariable]) return undefined;
  const missing = variables.filter((variable) => !settings[variable]).map((variable) => `${variable}=1`);
  return {
    id: execVariable,
    effect: 'deny',
    paths: [`${base}/*/exec`],
    reason: `it needs ${missing.join(' and ')} (an exec instance is only good for an exec start, which ${execVariable} grants)`,
  };
}

