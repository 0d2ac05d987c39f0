import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dockerCli, type DockerCli } from '../helpers/docker-cli.js';
import { BUSYBOX_IMAGE } from '../helpers/fixtures.js';
import { startGuard, type Guard, type GuardProbe } from '../helpers/guard.js';
import { FULL, SIZE } from '../helpers/reliability-size.js';

// Long-lived streams: many `docker events` held open through one guard while other traffic flows,
// then a `docker run` through the same guard, whose events every stream must receive. CI holds 200
// streams for 15 s; DSF_RELIABILITY=full holds the 500 for 60 s.

const STREAMS = SIZE.eventStreams;
const HOLD_MS = SIZE.eventSeconds * 1000;
const ENV = { CONTAINERS: '1', POST: '1' };

let guard: Guard;
let docker: DockerCli;
let idle: GuardProbe;

beforeAll(async () => {
  guard = await startGuard(inject('guardCli'), { SOCKET_PATH: inject('dockerSocket'), ...ENV });
  idle = await guard.probe();
  docker = dockerCli(`tcp://127.0.0.1:${guard.port}`);
});

afterAll(async () => {
  const exit = await guard?.stop();
  docker?.dispose();
  expect(exit).toEqual({ code: 0, signal: null });
});

interface EventStream {
  readonly req: ClientRequest;
  /** Container events received, as `action name`. */
  readonly seen: Set<string>;
  closedEarly: boolean;
}

function openStream(port: number): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    const req = request({ host: '127.0.0.1', port, path: `/v1.41/events?filters=${filters}`, agent: false });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        reject(new Error(`events answered ${res.statusCode}`));
        return;
      }
      const stream: EventStream = { req, seen: new Set(), closedEarly: false };
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        // One JSON object per line.
        let newline = buffered.indexOf('\n');
        while (newline !== -1) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          const event = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: { name?: string } } };
          stream.seen.add(`${event.Action} ${event.Actor?.Attributes?.name}`);
          newline = buffered.indexOf('\n');
        }
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        if (!req.destroyed) stream.closedEarly = true;
      });
      resolve(stream);
    });
    req.end();
  });
}

function ping(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 20_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within 20 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('long-lived streams', () => {
  it(`${STREAMS} docker events streams held ${HOLD_MS / 1000} s while other traffic flows all receive the events of a docker run`, async () => {
    const streams: EventStream[] = [];
    try {
      // Opened in batches, as clients arrive.
      for (let opened = 0; opened < STREAMS; opened += 50) {
        streams.push(...(await Promise.all(Array.from({ length: Math.min(50, STREAMS - opened) }, () => openStream(guard.port)))));
      }
      const held = performance.now();

      // Other traffic meanwhile: allowed requests answered 200, denied ones 403, none lost.
      const traffic: { status: number; expected: number }[] = [];
      let trafficErrors = 0;
      const background = Promise.all(
        Array.from({ length: 10 }, async (_, worker) => {
          while (performance.now() - held < HOLD_MS) {
            const [path, expected] = worker % 2 === 0 ? ['/v1.41/containers/json', 200] : ['/v1.41/images/json', 403];
            try {
              traffic.push({ status: await ping(guard.port, path as string), expected: expected as number });
            } catch {
              trafficErrors += 1;
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }),
      );
      const sample = await guard.probe();
      await background;

      // After the hold, a container run through the same guard.
      const name = `dsf-events-${Date.now()}`;
      const run = await docker.run(['run', '--rm', '--name', name, '--network', 'none', BUSYBOX_IMAGE, 'true'], { timeoutMs: 60_000 });
      expect(run.code, run.stderr).toBe(0);
      const deadline = Date.now() + 20_000;
      const missing = (): EventStream[] => streams.filter((stream) => !stream.seen.has(`die ${name}`));
      while (missing().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));

      console.log(
        `events (${FULL ? 'full' : 'CI'} size): ${STREAMS} streams held ${((performance.now() - held) / 1000).toFixed(1)} s; ` +
          `${traffic.length} other requests; guard sockets during the hold ${sample.sockets}`,
      );
      expect(streams.filter((stream) => stream.closedEarly)).toHaveLength(0);
      expect(missing()).toHaveLength(0);
      for (const action of ['create', 'start', 'die']) {
        expect(streams.filter((stream) => !stream.seen.has(`${action} ${name}`)), action).toHaveLength(0);
      }
      expect(trafficErrors).toBe(0);
      expect(traffic.every(({ status, expected }) => status === expected)).toBe(true);
      expect(traffic.length).toBeGreaterThan(HOLD_MS / 1000);
      // The streams really were held at once: a client socket and a dockerd socket each.
      expect(sample.sockets).toBeGreaterThanOrEqual(2 * STREAMS);
    } finally {
      for (const stream of streams) stream.req.destroy();
    }
    // Hanging up every stream leaves nothing open in the guard.
    const after = await guard.settle((probe) => probe.sockets <= idle.sockets && probe.fds <= idle.fds + 2, { timeoutMs: 20_000 });
    expect(after.sockets).toBeLessThanOrEqual(idle.sockets);
  }, HOLD_MS + 180_000);
});
