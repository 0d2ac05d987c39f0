// The cost of PROTECT_HOST's body check, on the built package (run `npm run build` first):
//   node bench/protect-host.mjs [--json] [--socket /path/to/docker.sock]
// - `evaluate` of a typical `docker run` create body (recorded from the docker CLI 28), with and
//   without PROTECT_HOST, in microseconds per decision;
// - with --socket, dockerd's own time for the same create (and its removal), straight on its socket,
//   so the two can be read side by side (the body check is paid once per create).
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createSocketFilter, tecnativaPreset } from '../dist/index.js';

const recorded = JSON.parse(readFileSync(new URL('../test/fixtures/host-bodies/docker-cli-28.json', import.meta.url), 'utf8'));
const create = recorded.find((entry) => entry.path.split('?')[0].endsWith('/containers/create'));
const body = Buffer.from(create.body);
const daemon = { defaultRuntime: 'runc', cgroupVersion: '1', apiVersion: '1.41', engineVersion: '20.10.24' };
const env = { CONTAINERS: '1', VOLUMES: '1', POST: '1', ALLOW_BIND_MOUNTS: '/srv/appdata' };
const checked = createSocketFilter({ policy: tecnativaPreset({ ...env, PROTECT_HOST: '1' }) }).evaluate;
const plain = createSocketFilter({ policy: tecnativaPreset(env) }).evaluate;
const target = '/v1.41/containers/create?name=cli';
const info = { body, contentType: 'application/json', bodyLength: body.length, daemon };
if (!checked('POST', target, info).allowed) throw new Error('the recorded body is refused: the bench measures nothing');

function perDecision(fn, seconds) {
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 1000; i++) if (fn().allowed) n++;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1e3 / n;
}

const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
const measure = (fn) => {
  perDecision(fn, 0.5);
  return median([perDecision(fn, 1), perDecision(fn, 1), perDecision(fn, 1)]);
};

const result = {
  bodyBytes: body.length,
  // The first decision (no body yet: it asks for it), then the one on the body.
  checkedCreateUs: measure(() => (checked('POST', target, { bodyLength: body.length }), checked('POST', target, info))),
  plainCreateUs: measure(() => plain('POST', target, { bodyLength: body.length })),
  // An endpoint without a check: the hook must cost nothing there.
  checkedPsUs: measure(() => checked('GET', '/v1.41/containers/json?all=1')),
  plainPsUs: measure(() => plain('GET', '/v1.41/containers/json?all=1')),
};

function ask(socketPath, method, path, payload) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {} }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const socketAt = process.argv.indexOf('--socket');
if (socketAt !== -1) {
  const socketPath = process.argv[socketAt + 1];
  // The recorded body names a bind and a volume that may not exist here: a plain busybox create.
  const payload = Buffer.from(JSON.stringify({ Image: 'dsf-busybox:latest', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } }));
  const times = [];
  for (let i = 0; i < 20; i++) {
    const started = process.hrtime.bigint();
    const created = await ask(socketPath, 'POST', '/containers/create', payload);
    times.push(Number(process.hrtime.bigint() - started) / 1e3);
    if (created.status !== 201) throw new Error(`create: ${created.status} ${created.body}`);
    await ask(socketPath, 'DELETE', `/containers/${JSON.parse(created.body).Id}?force=1`);
  }
  result.dockerdCreateUs = median(times);
}

if (process.argv.includes('--json')) console.log(JSON.stringify(result));
else {
  const us = (value) => `${value.toFixed(1)} µs`;
  console.log(`create body of ${result.bodyBytes} bytes (docker CLI 28, recorded)`);
  console.log(`  evaluate with PROTECT_HOST (both decisions): ${us(result.checkedCreateUs)}`);
  console.log(`  evaluate without PROTECT_HOST:               ${us(result.plainCreateUs)}`);
  console.log(`GET /containers/json (no check): ${us(result.checkedPsUs)} with, ${us(result.plainPsUs)} without`);
  if (result.dockerdCreateUs !== undefined) console.log(`dockerd's own create (median of 20): ${us(result.dockerdCreateUs)}`);
}
