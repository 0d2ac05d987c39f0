export { createSocketFilter, DEFAULT_MIN_API_VERSION, DEFAULT_SOCKET_PATH } from './filter.js';
export type {
  RequestEvent,
  ResolvedSocketFilterOptions,
  SocketFilter,
  SocketFilterHandler,
  SocketFilterOptions,
  SocketFilterUpdate,
  SocketFilterUpgradeHandler,
} from './filter.js';
export type { ClientMatch, ClientSpec } from './policy/clients.js';
export { createFilterServer, FILTER_SERVER_DEFAULTS, MAX_TARGET_LENGTH, OVERLOADED_MESSAGE } from './proxy/index.js';
export type { FilterHandlers, FilterServerOptions, HeldBytesStats, RejectEvent } from './proxy/index.js';
export { tecnativaPreset, TECNATIVA_DEFAULTS } from './presets/tecnativa.js';
export { linuxserverPreset, LINUXSERVER_DEFAULTS } from './presets/linuxserver.js';
export { parseGrant } from './presets/env.js';
export type { EnvLike } from './presets/env.js';
export { canonicalize } from './policy/canonical.js';
export { formatPermissionTable, permissionTable } from './policy/table.js';
export { definePolicy } from './policy/define.js';
export type { PolicySpec, RuleSpec } from './policy/define.js';
export type { PermissionCell, PermissionTable } from './policy/table.js';
export type { CanonicalTarget, MalformedTarget } from './policy/canonical.js';
export type { Evaluate } from './policy/evaluate.js';
export type {
  Access,
  ClientInfo,
  DaemonFacts,
  Decision,
  LabelRequirement,
  Method,
  Obligations,
  Policy,
  ProtectHost,
  ReadPolicy,
  RequestInfo,
  ResponseKind,
  ResponseRewrite,
  Rule,
  VisibleKind,
} from './policy/types.js';
export { formatRequirement, labelsSatisfy, parseLabelRequirements } from './policy/read/labels.js';
export { encodeFilters, mergeLabelFilter, mergeQuery, parseFilters } from './policy/read/filters.js';
export type { FilterArgs, FilterKind, MergedQuery } from './policy/read/filters.js';
export { REDACTED, redactEnvList, rewriteEvent, rewriteResponse } from './policy/read/rewrite.js';
export { SocketFilterError, SocketFilterTypeError, isSocketFilterError } from './errors.js';
export type { SocketFilterErrorCode } from './errors.js';
