import picomatch from 'picomatch';
import { parseVersionSetting } from './canonical.js';
import { compilePolicy } from './compile.js';
import { createEvaluator } from './evaluate.js';
import type { Method, Policy } from './types.js';

const METHODS: readonly Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];

/** Rows every table shows: each Docker section, and the container routes presets treat apart. */
const DEFAULT_ROWS: readonly string[] = [
  '/_ping',
  '/version',
  '/events',
  '/auth',
  '/build',
  '/commit',
  '/configs',
  '/containers',
  '/containers/json',
  '/containers/create',
  '/containers/{name}',
  '/containers/{name}/json',
  '/containers/{name}/start',
  '/containers/{name}/stop',
  '/containers/{name}/restart',
  '/containers/{name}/kill',
  '/containers/{name}/pause',
  '/containers/{name}/unpause',
  '/containers/{name}/exec',
  '/containers/{name}/attach',
  '/containers/{name}/attach/ws',
  '/containers/{name}/logs',
  '/containers/{name}/archive',
  '/containers/{name}/export',
  '/distribution',
  '/exec',
  '/grpc',
  '/images',
  '/info',
  '/networks',
  '/nodes',
  '/plugins',
  '/secrets',
  '/services',
  '/session',
  '/swarm',
  '/system',
  '/tasks',
  '/volumes',
];

/**
 * One cell of a permission table.
 *
 * @example
 * ```ts
 * const cell: PermissionCell = { allowed: false, rule: 'POST' };
 * ```
 */
export interface PermissionCell {
  readonly allowed: boolean;
  readonly rule: string | null;
}

/**
 * A policy rendered as route x method -> allowed, for snapshots and `--print-policy`.
 *
 * @example
 * ```ts
 * const table: PermissionTable = permissionTable(tecnativaPreset({}));
 * table.rows.find((row) => row.path === '/_ping')?.methods.GET.allowed; // true
 * ```
 */
export interface PermissionTable {
  readonly policy: string;
  readonly methods: readonly Method[];
  readonly rows: ReadonlyArray<{ readonly path: string; readonly methods: Readonly<Record<Method, PermissionCell>> }>;
}

/** Literal bases of the policy's globs, so custom sections (e.g. `/libpod/pods`) get rows too. */
function ruleBases(policy: Policy): string[] {
  const bases: string[] = [];
  for (const rule of policy.rules) {
    for (const glob of rule.paths) {
      const base = picomatch.scan(glob).base;
      if (base.length > 1) bases.push(base);
    }
  }
  return bases;
}

/**
 * Evaluates a policy on a fixed set of routes (`{name}` stands for a container name) for every method.
 * Routes are requested with the `/v1.41` prefix; `/containers/{name}/attach/ws` is asked as an upgrade.
 *
 * @example
 * ```ts
 * import { permissionTable, tecnativaPreset } from 'docker-socket-filter';
 * expect(permissionTable(tecnativaPreset({ CONTAINERS: '1' }))).toMatchSnapshot();
 * ```
 */
export function permissionTable(policy: Policy, options: { readonly minApiVersion?: string } = {}): PermissionTable {
  const evaluate = createEvaluator(compilePolicy(policy), {
    minApiVersion: parseVersionSetting(options.minApiVersion ?? '1.24'),
  });
  const paths = [...new Set([...DEFAULT_ROWS, ...ruleBases(policy)])].sort();
  const rows = paths.map((path) => {
    const target = '/v1.41' + path.replaceAll('{name}', 'web');
    const upgrade = path.endsWith('/attach') || path.endsWith('/attach/ws');
    const methods = Object.fromEntries(
      METHODS.map((method) => {
        const decision = evaluate(method, target, { upgrade });
        return [method, { allowed: decision.allowed, rule: decision.rule }];
      }),
    ) as Record<Method, PermissionCell>;
    return { path, methods };
  });
  return { policy: policy.name, methods: METHODS, rows };
}

/**
 * Renders `permissionTable` as aligned text: `yes` or `-` per method, and the deciding rule of allowed
 * cells.
 *
 * @example
 * ```ts
 * console.log(formatPermissionTable(tecnativaPreset(process.env)));
 * ```
 */
export function formatPermissionTable(policy: Policy, options: { readonly minApiVersion?: string } = {}): string {
  const table = permissionTable(policy, options);
  const width = Math.max(...table.rows.map((row) => row.path.length), 'route'.length) + 2;
  const cellWidth = 7;
  const header = 'route'.padEnd(width) + table.methods.map((method) => method.padEnd(cellWidth)).join('') + 'allowed by';
  const lines = table.rows.map((row) => {
    const cells = table.methods.map((method) => (row.methods[method].allowed ? 'yes' : '-').padEnd(cellWidth)).join('');
    const rules = [...new Set(table.methods.filter((m) => row.methods[m].allowed).map((m) => row.methods[m].rule))];
    return (row.path.padEnd(width) + cells + rules.join(', ')).trimEnd();
  });
  return [`policy: ${table.policy}`, header, ...lines].join('\n') + '\n';
}
