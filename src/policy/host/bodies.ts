import {
  checkBind,
  checkCapabilities,
  checkHostConfig,
  checkHostPath,
  checkMounts,
  checkResources,
  checkSysctls,
  checkVolumeDriver,
  shown,
  type CheckContext,
  type Violation,
} from './checks.js';
import type { Decoded, Schema } from './go-json.js';
import {
  CHECKPOINT_BODY,
  CREATE_BODY,
  EXEC_BODY,
  PLUGIN_SET_BODY,
  SERVICE_BODY,
  UPDATE_BODY,
  VOLUME_BODY,
} from './schema.js';

/**
 * The body checks of each endpoint, on the decoded body. Pure: no `node:` imports.
 */

type Struct = ReadonlyMap<string, Decoded>;
const asStruct = (value: Decoded): Struct => (value instanceof Map ? (value as Struct) : new Map());
const asArray = (value: Decoded): readonly Decoded[] => (Array.isArray(value) ? value : []);
const asString = (value: Decoded): string => (typeof value === 'string' ? value : '');

/**
 * What a body check found: a violation, or what only dockerd can tell: the named volumes the request
 * would create if missing, and the networks it names that could be the host's under another name.
 *
 * @example
 * ```ts
 * const verdict: BodyVerdict = { volumes: ['data'], networks: ['web_default'] };
 * ```
 */
export type BodyVerdict =
  | { readonly violation: Violation }
  | { readonly volumes: readonly string[]; readonly networks?: readonly string[] };

/**
 * One endpoint with a body check: how to decode its body, whether dockerd insists on
 * `Content-Type: application/json` (`httputils.CheckForJSON`), and the check.
 *
 * @example
 * ```ts
 * const verdict = CREATE.check(decode(tree, CREATE.schema, ''), context);
 * ```
 */
export interface BodyEndpoint {
  readonly schema: Schema;
  readonly needsJsonType: boolean;
  readonly check: (body: Decoded, context: CheckContext) => BodyVerdict;
}

const verdict = (violation: Violation | undefined, volumes: readonly string[] = [], networks: readonly string[] = []): BodyVerdict =>
  violation === undefined ? { volumes: [...new Set(volumes)], networks: [...new Set(networks)] } : { violation };

/** Network modes that name no network dockerd could resolve to the host's. */
const PLAIN_NETWORK_MODES = new Set(['', 'default', 'bridge', 'none', 'host']);

function checkCreate(body: Decoded, context: CheckContext): BodyVerdict {
  const top = asStruct(body);
  const volumes: string[] = [];
  // dockerd 20.10 reads top-level HostConfig fields into the deprecated embedded HostConfig, used
  // when `HostConfig` is absent and partly merged into it otherwise; 27.0 ignores them. Both are
  // judged, whatever the release.
  const inner = top.get('HostConfig');
  const violation =
    (inner instanceof Map ? checkHostConfig(inner as Struct, 'HostConfig', context, volumes) : undefined) ??
    checkHostConfig(top, '', context, volumes) ??
    checkVolumeKeys(top.get('Volumes'), context, volumes) ??
    checkEndpoints(top.get('NetworkingConfig'), context);
  // A user-defined network mode or endpoint may be the host network by its ID: dockerd is asked.
  const networks: string[] = [];
  if (!context.settings.switches.allowHostNamespaces) {
    for (const config of [asStruct(inner), top]) {
      const mode = asString(config.get('NetworkMode'));
      if (!PLAIN_NETWORK_MODES.has(mode) && !mode.startsWith('container:')) networks.push(mode);
    }
    for (const [name, endpoint] of asStruct(asStruct(top.get('NetworkingConfig')).get('EndpointsConfig'))) {
      if (!PLAIN_NETWORK_MODES.has(name)) networks.push(name);
      const id = asString(asStruct(endpoint).get('NetworkID'));
      if (id !== '') networks.push(id);
    }
  }
  return verdict(violation, volumes, networks);
}

/** The keys of `Volumes`: anonymous volumes for dockerd, `-v` specs for Podman (`/etc:/host`). */
function checkVolumeKeys(value: Decoded, context: CheckContext, volumes: string[]): Violation | undefined {
  for (const key of asStruct(value).keys()) {
    const problem = checkBind(key, `Volumes[${JSON.stringify(key)}]`, context, volumes);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** `NetworkingConfig.EndpointsConfig`: a container attached to the `host` network. */
function checkEndpoints(value: Decoded, context: CheckContext): Violation | undefined {
  if (context.settings.switches.allowHostNamespaces) return undefined;
  const endpoints = asStruct(asStruct(value).get('EndpointsConfig'));
  for (const name of endpoints.keys()) {
    if (name === 'host') {
      return { status: 403, setting: 'allowHostNamespaces', field: 'NetworkingConfig.EndpointsConfig["host"]', what: "attaches the container to the host's network namespace" };
    }
  }
  return undefined;
}

function checkExec(body: Decoded, context: CheckContext): BodyVerdict {
  if (asStruct(body).get('Privileged') === true && !context.settings.switches.allowPrivileged) {
    return { violation: { status: 403, setting: 'allowPrivileged', field: 'Privileged', what: 'is true' } };
  }
  return { volumes: [] };
}

function checkUpdate(body: Decoded, context: CheckContext): BodyVerdict {
  return verdict(checkResources(asStruct(body), '', context));
}

function checkVolumeCreate(body: Decoded, context: CheckContext): BodyVerdict {
  const volume = asStruct(body);
  if (volume.get('ClusterVolumeSpec') !== undefined && !context.settings.switches.allowVolumeOptions) {
    return { violation: { status: 403, setting: 'allowVolumeOptions', field: 'ClusterVolumeSpec', what: 'creates a cluster volume through a CSI plugin, which this guard cannot judge' } };
  }
  return verdict(checkVolumeDriver(asString(volume.get('Driver')), volume.get('DriverOpts'), 'DriverOpts', context));
}

function checkService(body: Decoded, context: CheckContext): BodyVerdict {
  const spec = asStruct(body);
  const task = asStruct(spec.get('TaskTemplate'));
  const { switches } = context.settings;
  let hostNetwork = false;
  const targets: string[] = [];
  for (const [networks, field] of [
    [task.get('Networks'), 'TaskTemplate.Networks'],
    [spec.get('Networks'), 'Networks'],
  ] as const) {
    const list = asArray(networks);
    for (let i = 0; i < list.length; i++) {
      const target = asString(asStruct(list[i]).get('Target'));
      if (target !== 'host') {
        // The docker CLI sends the network's ID: dockerd tells whether it is the host's.
        if (target !== '' && !switches.allowHostNamespaces) targets.push(target);
        continue;
      }
      hostNetwork = true;
      if (!switches.allowHostNamespaces) {
        return { violation: { status: 403, setting: 'allowHostNamespaces', field: `${field}[${i}].Target`, what: "is \"host\", the host's network namespace" } };
      }
    }
  }
  if (!switches.allowPluginInstall) {
    if (task.get('PluginSpec') !== undefined) {
      return { violation: { status: 403, setting: 'allowPluginInstall', field: 'TaskTemplate.PluginSpec', what: 'installs a plugin on the swarm' } };
    }
    const runtime = asString(task.get('Runtime'));
    if (runtime !== '' && runtime !== 'container') {
      return { violation: { status: 403, setting: 'allowPluginInstall', field: 'TaskTemplate.Runtime', what: `is ${shown(runtime)}, not a container` } };
    }
  }
  const container = asStruct(task.get('ContainerSpec'));
  const at = 'TaskTemplate.ContainerSpec';
  const violation =
    checkPrivileges(asStruct(container.get('Privileges')), `${at}.Privileges`, context) ??
    checkCapabilities(container.has('CapabilityAdd') ? asArray(container.get('CapabilityAdd')) : undefined, `${at}.CapabilityAdd`, context) ??
    (switches.allowUnconfined ? undefined : checkSysctls(container.get('Sysctls'), `${at}.Sysctls`, hostNetwork)) ??
    // Swarm creates a service's named volumes on whichever node runs a task: not checked here.
    checkMounts(container.get('Mounts'), `${at}.Mounts`, context, undefined);
  return verdict(violation, [], targets);
}

function checkPrivileges(privileges: Struct, field: string, context: CheckContext): Violation | undefined {
  if (context.settings.switches.allowUnconfined) return undefined;
  const refuse = (name: string, what: string): Violation => ({ status: 403, setting: 'allowUnconfined', field: `${field}.${name}`, what });
  const selinux = asStruct(privileges.get('SELinuxContext'));
  if (selinux.get('Disable') === true) return refuse('SELinuxContext.Disable', 'is true');
  const type = asString(selinux.get('Type'));
  if (type !== '') return refuse('SELinuxContext.Type', `is ${shown(type)}, an SELinux type chosen by the client`);
  const seccomp = asString(asStruct(privileges.get('Seccomp')).get('Mode'));
  if (seccomp !== '' && seccomp !== 'default') return refuse('Seccomp.Mode', `is ${shown(seccomp)}, not the default profile`);
  const apparmor = asString(asStruct(privileges.get('AppArmor')).get('Mode'));
  if (apparmor !== '' && apparmor !== 'default') return refuse('AppArmor.Mode', `is ${shown(apparmor)}, not the default profile`);
  return undefined;
}

/**
 * `plugins/<name>/set`: `NAME=value` sets an environment variable or an argument; `NAME.source=…`
 * the host path of a mount and `NAME.path=…` a host device (moby `plugin/v2/settable.go`).
 */
function checkPluginSet(body: Decoded, context: CheckContext): BodyVerdict {
  if (context.settings.switches.allowPluginInstall) return { volumes: [] };
  const settings = asArray(body);
  for (let i = 0; i < settings.length; i++) {
    const setting = asString(settings[i]);
    const name = setting.split('=', 1)[0] as string;
    const dot = name.indexOf('.');
    const field = dot === -1 ? '' : name.slice(dot + 1);
    if (field !== '' && field !== 'value') {
      return { violation: { status: 403, setting: 'allowPluginInstall', field: `[${i}]`, what: `sets ${shown(name)}, a mount source or device of the plugin` } };
    }
  }
  return { volumes: [] };
}

/** `containers/<id>/checkpoints` (experimental daemons): CRIU writes into `CheckpointDir` on the host. */
function checkCheckpointCreate(body: Decoded, context: CheckContext): BodyVerdict {
  const options = asStruct(body);
  const id = asString(options.get('CheckpointID'));
  if (id.includes('/') || id === '..' || id === '.') {
    return { violation: { status: 403, setting: null, field: 'CheckpointID', what: `is ${shown(id)}, which names a path outside the checkpoint directory` } };
  }
  const directory = asString(options.get('CheckpointDir'));
  return verdict(directory === '' ? undefined : checkHostPath(directory, 'CheckpointDir', context));
}

/** The checked endpoints, by what they carry. */
export const CREATE: BodyEndpoint = { schema: CREATE_BODY, needsJsonType: true, check: checkCreate };
export const UPDATE: BodyEndpoint = { schema: UPDATE_BODY, needsJsonType: true, check: checkUpdate };
export const EXEC: BodyEndpoint = { schema: EXEC_BODY, needsJsonType: true, check: checkExec };
export const VOLUME: BodyEndpoint = { schema: VOLUME_BODY, needsJsonType: true, check: checkVolumeCreate };
export const SERVICE: BodyEndpoint = { schema: SERVICE_BODY, needsJsonType: false, check: checkService };
export const PLUGIN_SET: BodyEndpoint = { schema: PLUGIN_SET_BODY, needsJsonType: false, check: checkPluginSet };
export const CHECKPOINT: BodyEndpoint = { schema: CHECKPOINT_BODY, needsJsonType: true, check: checkCheckpointCreate };
