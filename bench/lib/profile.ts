// Summarises a V8 .cpuprofile (`node --cpu-prof`): where the samples fall, by function and by
// component (our src/ files through dist's source map, http-proxy-3, debug, node internals, GC).
import { readFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

/** One row of the summary: a function or a component, with its share of the busy (non-idle) samples. */
export interface ProfileRow {
  readonly name: string;
  readonly where: string;
  readonly selfPct: number;
  readonly totalPct: number;
}

export interface ProfileSummary {
  readonly samples: number;
  readonly durationMs: number;
  /** Share of samples the process was busy (not idle). */
  readonly busyPct: number;
  /** Functions by self time. */
  readonly functions: readonly ProfileRow[];
  /** Functions of our code (src/) and of packages by total time: what they cost with their callees. */
  readonly inclusive: readonly ProfileRow[];
  /** Components: self time, and total (on the stack) time. */
  readonly components: readonly ProfileRow[];
}

const sourceMaps = new Map<string, SourceMap | null>();

async function sourceMapFor(file: string): Promise<SourceMap | null> {
  if (!sourceMaps.has(file)) {
    try {
      sourceMaps.set(file, new SourceMap(JSON.parse(await readFile(`${file}.map`, 'utf8'))));
    } catch {
      sourceMaps.set(file, null);
    }
  }
  return sourceMaps.get(file) ?? null;
}

/** `where` and `component` of a frame: a src/ file and line for our bundle, else a package or node module. */
async function locate(frame: ProfileNode['callFrame']): Promise<{ where: string; component: string }> {
  const { url, functionName, lineNumber, columnNumber } = frame;
  if (url === '') {
    if (functionName.startsWith('(')) return { where: '', component: functionName };
    return { where: '(native)', component: '(V8 builtins, native)' };
  }
  if (url.startsWith('node:')) return { where: `${url}:${lineNumber + 1}`, component: url };
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = file.lastIndexOf('/node_modules/');
  if (modules !== -1) {
    const rest = file.slice(modules + '/node_modules/'.length).split('/');
    const name = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?');
    return { where: `${rest.join('/')}:${lineNumber + 1}`, component: name };
  }
  if (basename(dirname(file)) === 'dist') {
    const map = await sourceMapFor(file);
    const entry = map?.findEntry(lineNumber, columnNumber) as { originalSource?: string; originalLine?: number } | undefined;
    if (entry?.originalSource !== undefined) {
      const source = entry.originalSource.replace(/^.*?\bsrc\//, 'src/');
      return { where: `${source}:${(entry.originalLine ?? 0) + 1}`, component: source.replace(/\/[^/]+$/, '/') };
    }
    return { where: `${join('dist', basename(file))}:${lineNumber + 1}`, component: 'dist (unmapped)' };
  }
  return { where: `${file}:${lineNumber + 1}`, component: file.replace(/^.*\/bench\//, 'bench/') };
}

/**
 * Reads a .cpuprofile and returns the `top` functions by self time, our and the packages' functions
 * by total time, and every component by self and total time, as percentages of the samples where the
 * process was busy (idle samples, before, between and after the load, are left out).
 */
export async function summariseProfile(file: string, top = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; startTime: number; endTime: number };
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const info = new Map<number, { name: string; where: string; component: string }>();
  for (const node of profile.nodes) {
    const { where, component } = await locate(node.callFrame);
    info.set(node.id, { name: node.callFrame.functionName || '(anonymous)', where, component });
  }

  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const fnSelf = new Map<string, { name: string; where: string; self: number; total: number }>();
  const compSelf = new Map<string, { self: number; total: number }>();
  let idle = 0;
  for (const [id, count] of hits) {
    const leaf = info.get(id) as { name: string; where: string; component: string };
    if (leaf.component === '(idle)') idle += count;
    const key = `${leaf.name} ${leaf.where}`;
    const fn = fnSelf.get(key) ?? { name: leaf.name, where: leaf.where, self: 0, total: 0 };
    fn.self += count;
    fnSelf.set(key, fn);
    const comp = compSelf.get(leaf.component) ?? { self: 0, total: 0 };
    comp.self += count;
    compSelf.set(leaf.component, comp);
    // Total time: once per component and per function on this sample's stack.
    const seenComponents = new Set<string>();
    const seenFunctions = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = info.get(at) as { name: string; where: string; component: string };
      if (!nodes.has(at)) break;
      if (!seenComponents.has(frame.component)) {
        seenComponents.add(frame.component);
        const entry = compSelf.get(frame.component) ?? { self: 0, total: 0 };
        entry.total += count;
        compSelf.set(frame.component, entry);
      }
      const fnKey = `${frame.name} ${frame.where}`;
      if (!seenFunctions.has(fnKey)) {
        seenFunctions.add(fnKey);
        const entry = fnSelf.get(fnKey) ?? { name: frame.name, where: frame.where, self: 0, total: 0 };
        entry.total += count;
        fnSelf.set(fnKey, entry);
      }
    }
  }
  // Shares of the time the process was on CPU: idle samples (waiting in epoll) are left out.
  const busy = Math.max(1, total - idle);
  const pct = (count: number): number => Math.round((count / busy) * 1000) / 10;
  const row = (fn: { name: string; where: string; self: number; total: number }): ProfileRow => ({
    name: fn.name,
    where: fn.where,
    selfPct: pct(fn.self),
    totalPct: pct(fn.total),
  });
  return {
    samples: total,
    durationMs: Math.round((profile.endTime - profile.startTime) / 1000),
    busyPct: Math.round(((total - idle) / total) * 1000) / 10,
    functions: [...fnSelf.values()]
      .filter((fn) => fn.self > 0 && fn.name !== '(idle)' && fn.name !== '(root)')
      .sort((a, b) => b.self - a.self)
      .slice(0, top)
      .map(row),
    inclusive: [...fnSelf.values()]
      .filter((fn) => /:\d+$/.test(fn.where) && !fn.where.startsWith('node:'))
      .sort((a, b) => b.total - a.total)
      .slice(0, top)
      .map(row),
    components: [...compSelf.entries()]
      .filter(([name]) => name !== '(root)' && name !== '(idle)')
      .sort((a, b) => b[1].self - a[1].self)
      .map(([name, value]) => ({ name, where: '', selfPct: pct(value.self), totalPct: pct(value.total) })),
  };
}
