import picomatch from 'picomatch';
import { parseVersionSetting } from './canonical.js';
import { compilePolicy } from './compile.js';
import { createEvaluator } from './evaluate.js';
import type { Method, Policy } from './types.js';

const METHODS: readonly Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];

/**
 * Rows every table shows, with the methods dockerd routes there (API 1.41; `{name}` stands for a
 * container, image, network, … name): each section, and the container routes presets treat apart.
 */
const DEFAULT_ROUTES: ReadonlyArray<readonly [string, readonly Method[]]> = [
  ['/_ping', ['GET', 'HEAD']],
  ['/version', ['GET']],
  ['/events', ['GET']],
  ['/auth', ['POST']],
  ['/build', ['POST']],
  ['/commit', ['POST']],
  ['/configs', ['GET']],
  ['/configs/create', ['POST']],
  ['/configs/{name}', ['GET', 'DELETE']],
  ['/containers/json', ['GET']],
  ['/containers/create', ['POST']],
  ['/containers/prune', ['POST']],
  ['/containers/{name}', ['DELETE']],
  ['/containers/{name}/json', ['GET']],
  ['/containers/{name}/start', ['POST']],
  ['/containers/{name}/stop', ['POST']],
  ['/containers/{name}/restart', ['POST']],
  ['/containers/{name}/kill', ['POST']],
  ['/containers/{name}/pause', ['POST']],
  ['/containers/{name}/unpause', ['POST']],
  ['/containers/{name}/update', ['POST']],
  ['/containers/{name}/rename', ['POST']],
  ['/containers/{name}/wait', ['POST']],
  ['/containers/{name}/exec', ['POST']],
  ['/containers/{name}/attach', ['POST']],
  ['/containers/{name}/attach/ws', ['GET']],
  ['/containers/{name}/logs', ['GET']],
  ['/containers/{name}/top', ['GET']],
  ['/containers/{name}/changes', ['GET']],
  ['/containers/{name}/stats', ['GET']],
  ['/containers/{name}/archive', ['GET', 'HEAD', 'PUT']],
  ['/containers/{name}/export', ['GET']],
  ['/distribution/{name}/json', ['GET']],
  ['/exec/{name}/start', ['POST']],
  ['/exec/{name}/json', ['GET']],
  ['/grpc', ['POST']],
  ['/images/json', ['GET']],
  ['/images/create', ['POST']],
  ['/images/load', ['POST']],
  ['/images/{name}', ['DELETE']],
  ['/images/{name}/json', ['GET']],
  ['/images/{name}/get', ['GET']],
  ['/images/{name}/push', ['POST']],
  ['/info', ['GET']],
  ['/networks', ['GET']],
  ['/networks/create', ['POST']],
  ['/networks/{name}', ['GET', 'DELETE']],
  ['/nodes', ['GET']],
  ['/plugins', ['GET']],
  ['/plugins/pull', ['POST']],
  ['/secrets', ['GET']],
  ['/secrets/create', ['POST']],
  ['/services', ['GET']],
  ['/services/create', ['POST']],
  ['/services/{name}/update', ['POST']],
  ['/session', ['POST']],
  ['/swarm', ['GET']],
  ['/swarm/init', ['POST']],
  ['/system/df', ['GET']],
  ['/tasks', ['GET']],
  ['/volumes', ['GET']],
  ['/volumes/create', ['POST']],
  ['/volumes/{name}', ['GET', 'DELETE']],
];

/** Routes dockerd serves as upgrades (hijacks, websocket, h2c): asked as upgrades. */
const UPGRADE_ROUTES = new Set(['/containers/{name}/attach', '/containers/{name}/attach/ws', '/grpc', '/session']);

/**
 * One cell of a permission table.
 *
 * @example
 * ```ts
 * const cell: PermissionCell = { allowed: false, rule: 'POST', needs: 'POST=1 and CONTAINERS=1' };
 * ```
 */
export interface PermissionCell {
  readonly allowed: boolean;
  readonly rule: string | null;
  /** For a denied cell: what would grant it (`POST=1 and CONTAINERS=1`), from the decision's reason. */
  readonly needs?: string;
}

/**
 * A policy rendered as route x method -> allowed, for snapshots and `--print-policy`.
 *
 * @example
 * ```ts
 * const table: PermissionTable = permissionTable(tecnativaPreset({}));
 * table.rows.find((row) => row.path === '/_ping')?.methods.GET?.allowed; // true
 * ```
 */
export interface PermissionTable {
  readonly policy: string;
  readonly methods: readonly Method[];
  /**
   * One row per route, with a cell for each method dockerd routes there (every method for a route
   * of a custom rule, whose methods the table cannot know).
   */
  readonly rows: ReadonlyArray<{ readonly path: string; readonly methods: Readonly<Partial<Record<Method, PermissionCell>>> }>;
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
 * Routes are requested with the `/v1.41` prefix; the hijack, websocket and h2c routes are asked as upgrades.
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
  const routes = new Map<string, readonly Method[]>(DEFAULT_ROUTES);
  // A rule's literal base gets a row of its own only where the routes above do not already
  // cover it (`/containers` is their section; `/libpod/pods` is not).
  const covered = (base: string): boolean => [...routes.keys()].some((path) => path === base || path.startsWith(`${base}/`));
  for (const base of ruleBases(policy)) if (!covered(base)) routes.set(base, METHODS);
  const rows = [...routes.keys()].sort().map((path) => {
    const target = '/v1.41' + path.replaceAll('{name}', 'web');
    const upgrade = UPGRADE_ROUTES.has(path);
    const methods: Partial<Record<Method, PermissionCell>> = {};
    for (const method of routes.get(path) as readonly Method[]) {
      const decision = evaluate(method, target, { upgrade });
      const needs = decision.allowed ? undefined : NEEDS.exec(decision.reason)?.[1];
      methods[method] = needs === undefined ? { allowed: decision.allowed, rule: decision.rule } : { allowed: false, rule: decision.rule, needs };
    }
    return { path, methods };
  });
  return { policy: policy.name, methods: METHODS, rows };
}

// The variables a preset's reason names: `…: it needs POST=1 and CONTAINERS=1` (and the
// explanation in parentheses that some reasons add is left out).
const NEEDS = /: it needs ([^(]+?)(?: \(|$)/;

/**
 * Renders `permissionTable` as aligned text, one line per route: the allowed methods with the rules
 * that allow them, then each denied method with what would grant it (`POST: POST=1 and
 * CONTAINERS=1`). Methods dockerd does not route there are not shown.
 *
 * @example
 * ```ts
 * console.log(formatPermissionTable(tecnativaPreset(process.env)));
 * ```
 */
export function formatPermissionTable(policy: Policy, options: { readonly minApiVersion?: string } = {}): string {
  const table = permissionTable(policy, options);
  const allowedText = (row: PermissionTable['rows'][number]): string => {
    const cells = table.methods.filter((method) => row.methods[method]?.allowed === true);
    if (cells.length === 0) return '-';
    const rules = [...new Set(cells.map((method) => row.methods[method]?.rule))];
    return `${cells.join(' ')} (${rules.join(', ')})`;
  };
  const deniedText = (row: PermissionTable['rows'][number]): string =>
    table.methods
      .filter((method) => row.methods[method] !== undefined && row.methods[method]?.allowed !== true)
      .map((method) => `${method}: ${row.methods[method]?.needs ?? 'no rule allows it'}`)
      .join('; ');
  const pathWidth = Math.max(...table.rows.map((row) => row.path.length), 'route'.length) + 2;
  const allowedWidth = Math.max(...table.rows.map((row) => allowedText(row).length), 'allowed'.length) + 2;
  const header = 'route'.padEnd(pathWidth) + 'allowed'.padEnd(allowedWidth) + 'denied: what would grant it';
  const lines = table.rows.map((row) => (row.path.padEnd(pathWidth) + allowedText(row).padEnd(allowedWidth) + deniedText(row)).trimEnd());
  return [`policy: ${table.policy}`, header, ...lines].join('\n') + '\n';
}
