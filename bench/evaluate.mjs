// Decisions per second of `evaluate`, on the built package (run `npm run build` first).
// Usage: node bench/evaluate.mjs [--json] [--quick]
// (--quick: one 0.5 s run after a short warm-up, for bench/run.ts --smoke; the numbers are rougher.)
import { createSocketFilter, tecnativaPreset } from '../dist/index.js';

const { evaluate } = createSocketFilter({
  policy: tecnativaPreset({ CONTAINERS: '1', IMAGES: '0', POST: '0', ALLOW_START: '1' }),
});

// A mix a Traefik or Portainer-like client sends, plus denials and a malformed target.
const CORPUS = [
  ['GET', '/_ping'],
  ['HEAD', '/_ping'],
  ['GET', '/v1.41/version'],
  ['GET', '/v1.41/containers/json?limit=0&all=1'],
  ['GET', '/v1.41/containers/4f1c2d0e9a7b/json'],
  ['GET', '/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D'],
  ['GET', '/v1.41/images/json'],
  ['POST', '/v1.41/containers/create?name=web'],
  ['POST', '/v1.41/containers/web/start'],
  ['GET', '/v1.41/containers/../images/json'],
];

function measure(seconds) {
  const methods = CORPUS.map(([method]) => method);
  const targets = CORPUS.map(([, target]) => target);
  const n = CORPUS.length;
  let sink = 0;
  let decisions = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 100_000; i++) {
      const k = i % n;
      if (evaluate(methods[k], targets[k]).allowed) sink++;
    }
    decisions += 100_000;
    now = process.hrtime.bigint();
  }
  const elapsed = Number(now - start) / 1e9;
  if (sink === 0) throw new Error('nothing was allowed: the corpus is wrong');
  return decisions / elapsed;
}

const quick = process.argv.includes('--quick');
measure(quick ? 0.2 : 1); // warm-up: let V8 optimise before measuring
const runs = (quick ? [measure(0.5)] : [measure(2), measure(2), measure(2)]).sort((a, b) => a - b);
const median = runs[Math.floor(runs.length / 2)];
const result = { decisionsPerSecond: Math.round(median), runs: runs.map(Math.round), corpus: CORPUS.length };
if (process.argv.includes('--json')) console.log(JSON.stringify(result));
else {
  const how = quick ? '1 x 0.5 s' : 'median of 3 x 2 s';
  console.log(`evaluate(): ${(median / 1e6).toFixed(2)} M decisions/s (${how}, mixed corpus of ${CORPUS.length} targets)`);
}
