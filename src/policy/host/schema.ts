import { ANY, arrayOf, BOOL, mapOf, STRING, STRSLICE, struct, type Schema, type StructSchema } from './go-json.js';

/**
 * dockerd's request structs, as far as the host checks read them: the union of every field from
 * Docker Engine 20.10 (`api/types`, `runconfig`) to 28.x and moby's master, so that a field any of
 * those releases reads is read here. Fields that cannot carry a host escape are `ANY` (not judged;
 * their type is dockerd's business). A `strict` struct is one where an escape could hide: a key that
 * matches none of its fields is refused rather than ignored, since a newer dockerd may read it.
 */

const fields = (names: readonly string[], schema: Schema = ANY): Record<string, Schema> =>
  Object.fromEntries(names.map((name) => [name, schema]));

/** `mount.Driver`: a volume driver and its options. */
const DRIVER = struct({ Name: STRING, Options: mapOf(STRING) }, true);

/** `mount.Mount` (`HostConfig.Mounts[]`, service `ContainerSpec.Mounts[]`). */
const MOUNT: StructSchema = struct(
  {
    Type: STRING,
    Source: STRING,
    // Read because Podman writes them into one comma-separated option string (see podman.ts).
    Target: STRING,
    Consistency: STRING,
    BindOptions: struct({ Propagation: STRING }, false),
    ...fields(['ReadOnly', 'ImageOptions', 'ClusterOptions']),
    TmpfsOptions: struct({ SizeBytes: ANY, Mode: ANY, Options: arrayOf(arrayOf(STRING)) }, true),
    VolumeOptions: struct({ NoCopy: ANY, Labels: ANY, Subpath: STRING, DriverConfig: DRIVER }, true),
  },
  true,
);

/** `container.Resources`, embedded in `HostConfig` and `UpdateConfig`. */
const RESOURCES: Record<string, Schema> = {
  ...fields([
    'CpuShares', 'Memory', 'NanoCpus', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps',
    'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime',
    'CpusetCpus', 'CpusetMems', 'KernelMemory', 'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness',
    'OomKillDisable', 'PidsLimit', 'Ulimits', 'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth',
  ]),
  CgroupParent: STRING,
  Devices: arrayOf(ANY),
  DeviceCgroupRules: arrayOf(ANY),
  DeviceRequests: arrayOf(ANY),
};

/** `container.HostConfig` (with the embedded `Resources`). */
const HOST_CONFIG_FIELDS: Record<string, Schema> = {
  ...fields([
    'ContainerIDFile', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'ConsoleSize', 'CapDrop', 'Dns',
    'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'Links', 'OomScoreAdj', 'PublishAllPorts', 'ReadonlyRootfs',
    'StorageOpt', 'ShmSize', 'Isolation', 'Init',
  ]),
  Binds: arrayOf(STRING),
  // Podman reads a `path` option as a host file it appends the container's output to.
  LogConfig: struct({ Type: STRING, Config: mapOf(STRING) }, false),
  Tmpfs: mapOf(STRING),
  NetworkMode: STRING,
  VolumeDriver: STRING,
  VolumesFrom: arrayOf(STRING),
  Annotations: mapOf(ANY),
  CapAdd: STRSLICE,
  CgroupnsMode: STRING,
  IpcMode: STRING,
  Cgroup: STRING,
  PidMode: STRING,
  Privileged: BOOL,
  SecurityOpt: arrayOf(STRING),
  UTSMode: STRING,
  UsernsMode: STRING,
  Sysctls: mapOf(STRING),
  Runtime: STRING,
  Mounts: arrayOf(MOUNT),
  MaskedPaths: arrayOf(STRING),
  ReadonlyPaths: arrayOf(STRING),
  ...RESOURCES,
};

const HOST_CONFIG: StructSchema = struct(HOST_CONFIG_FIELDS, true);

/** `container.Config`: nothing in it reaches the host. */
const CONFIG_FIELDS = fields([
  'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin',
  'StdinOnce', 'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'WorkingDir', 'Entrypoint',
  'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal', 'StopTimeout', 'Shell',
]);

/**
 * The body of `POST /containers/create`: 20.10's `runconfig.ContainerConfigWrapper`, which embeds
 * `*container.Config` and, deprecated, `*container.HostConfig` (so a top-level `"Privileged": true`
 * is read into a HostConfig that dockerd uses when `"HostConfig"` is absent or null, and whose
 * `VolumeDriver` and some resources it merges into the inner one otherwise); `container.CreateRequest`
 * from 27.0 on. Top-level HostConfig fields are judged like `HostConfig`'s, whatever the release.
 *
 * @example
 * ```ts
 * const decoded = decode(tree, CREATE_BODY, '');
 * ```
 */
export const CREATE_BODY: StructSchema = struct(
  {
    ...CONFIG_FIELDS,
    // Anonymous volumes for dockerd; `-v` specs (binds among them) for Podman: the keys are judged.
    Volumes: mapOf(ANY),
    ...HOST_CONFIG_FIELDS,
    Cpuset: ANY,
    HostConfig: HOST_CONFIG,
    // An endpoint names its network by its key, and by `NetworkID` where newer releases read it.
    NetworkingConfig: struct({ EndpointsConfig: mapOf(struct({ NetworkID: STRING }, false)) }, true),
  },
  true,
);

/** `container.UpdateConfig`, the body of `POST /containers/<id>/update`. */
export const UPDATE_BODY: StructSchema = struct({ ...RESOURCES, RestartPolicy: ANY }, true);

/** `types.ExecConfig` (20.10) / `container.ExecCreateRequest`, the body of `POST /containers/<id>/exec`. */
export const EXEC_BODY: StructSchema = struct(
  {
    ...fields(['User', 'Tty', 'ConsoleSize', 'AttachStdin', 'AttachStderr', 'AttachStdout', 'Detach', 'DetachKeys', 'Env', 'WorkingDir', 'Cmd']),
    Privileged: BOOL,
  },
  true,
);

/** `volume.VolumeCreateBody` (20.10) / `volume.CreateRequest`, the body of `POST /volumes/create`. */
export const VOLUME_BODY: StructSchema = struct(
  { Name: ANY, Labels: ANY, Driver: STRING, DriverOpts: mapOf(STRING), ClusterVolumeSpec: ANY },
  true,
);

/** `swarm.NetworkAttachmentConfig`. */
const NETWORK_ATTACHMENT = struct({ Target: STRING, Aliases: ANY, DriverOpts: ANY }, true);

/** `swarm.ContainerSpec`. */
const CONTAINER_SPEC = struct(
  {
    ...fields([
      'Image', 'Labels', 'Command', 'Args', 'Hostname', 'Env', 'Dir', 'User', 'Groups', 'Init', 'StopSignal', 'TTY',
      'OpenStdin', 'ReadOnly', 'StopGracePeriod', 'Healthcheck', 'Hosts', 'DNSConfig', 'Secrets', 'Configs', 'Isolation',
      'CapabilityDrop', 'Ulimits', 'OomScoreAdj',
    ]),
    Privileges: struct(
      {
        CredentialSpec: ANY,
        SELinuxContext: struct({ Disable: BOOL, User: STRING, Role: STRING, Type: STRING, Level: STRING }, true),
        Seccomp: struct({ Mode: STRING, Profile: ANY }, true),
        AppArmor: struct({ Mode: STRING }, true),
        NoNewPrivileges: ANY,
      },
      true,
    ),
    Mounts: arrayOf(MOUNT),
    Sysctls: mapOf(STRING),
    CapabilityAdd: arrayOf(STRING),
  },
  true,
);

/** `swarm.ServiceSpec`, the body of `POST /services/create` and `POST /services/<id>/update`. */
export const SERVICE_BODY: StructSchema = struct(
  {
    ...fields(['Name', 'Labels', 'Mode', 'UpdateConfig', 'RollbackConfig', 'EndpointSpec']),
    TaskTemplate: struct(
      {
        ...fields(['NetworkAttachmentSpec', 'Resources', 'RestartPolicy', 'Placement', 'LogDriver', 'ForceUpdate']),
        ContainerSpec: CONTAINER_SPEC,
        PluginSpec: ANY,
        Networks: arrayOf(NETWORK_ATTACHMENT),
        Runtime: STRING,
      },
      true,
    ),
    // Deprecated since API 1.44, still read by 20.10.
    Networks: arrayOf(NETWORK_ATTACHMENT),
  },
  true,
);

/** The body of `POST /plugins/<name>/set`: `["KEY=value", "mount.source=/path", …]`. */
export const PLUGIN_SET_BODY: Schema = arrayOf(STRING);

/** The body of `POST /containers/<id>/checkpoints` (experimental daemons): `types.CheckpointCreateOptions`. */
export const CHECKPOINT_BODY: StructSchema = struct({ CheckpointID: STRING, CheckpointDir: STRING, Exit: ANY }, true);
