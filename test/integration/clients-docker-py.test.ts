import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSocketFilter, tecnativaPreset } from '../../src/index.js';
import { ALL_GRANTED, BUSYBOX_IMAGE } from '../helpers/fixtures.js';
import { serve, type ServedFilter } from '../helpers/filter-server.js';
import { CLIENT_PATH, runProcess } from '../helpers/run-process.js';

// docker-py 5.0.3 (Debian's python3-docker, under Debian's /usr/bin/python3: a python3 earlier on
// PATH may be another interpreter without it) over its broad API: the same script straight at
// dockerd and through the guard with everything granted must see the same thing, step by step.
const SCRIPT = fileURLToPath(new URL('../clients/docker_py_broad.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

const socketPath = inject('dockerSocket');

interface Step {
  readonly step: string;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
  readonly status?: number | null;
  readonly explanation?: string;
}

async function runScript(dockerHost: string): Promise<{ steps: Step[]; stderr: string }> {
  const result = await runProcess(PYTHON, [SCRIPT], {
    env: { PATH: CLIENT_PATH, HOME: '/tmp', DOCKER_HOST: dockerHost, DSF_IMAGE: BUSYBOX_IMAGE, DSF_PREFIX: 'dsf-py' },
    timeoutMs: 90_000,
  });
  if (result.code !== 0 || result.timedOut) {
    throw new Error(`docker-py script ${result.timedOut ? 'hung' : `exited ${result.code}`} against ${dockerHost}; last steps:\n${result.stderr.slice(-2000)}`);
  }
  return { steps: JSON.parse(result.stdout) as Step[], stderr: result.stderr };
}

describe('docker-py 5.0.3 through the guard (everything granted) sees what it sees direct', () => {
  let guard: ServedFilter;
  let direct: Step[];
  let through: Step[];
  beforeAll(async () => {
    guard = await serve(createSocketFilter({ policy: tecnativaPreset(ALL_GRANTED), socketPath }));
    direct = (await runScript(`unix://${socketPath}`)).steps;
    through = (await runScript(guard.dockerHost)).steps;
  }, 240_000);
  afterAll(async () => {
    await guard?.close();
  });

  it('the control run itself succeeds at every step', () => {
    const failed = direct.filter((step) => !step.ok).map((step) => step.step);
    expect(failed).toEqual([]);
    expect(direct.length).toBeGreaterThan(30);
  });

  it('every step has the same outcome', () => {
    const names = direct.map((step) => step.step);
    expect(through.map((step) => step.step)).toEqual(names);
    // One comparison per step, so a failure names the step.
    const differences = names.flatMap((name, index) =>
      JSON.stringify(through[index]) === JSON.stringify(direct[index])
        ? []
        : [{ step: name, direct: direct[index], through: through[index] }],
    );
    expect(differences).toEqual([]);
  });
});
