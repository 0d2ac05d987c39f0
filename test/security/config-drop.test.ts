/**
 * Attack class (operator side): a guard that serves without the protection its environment asks
 * for. With `--config`, the policy comes from the file alone (its `env` and sections) and the
 * environment's `PROTECT_HOST`, `REDACT_ENV`, `STRICT_READ` and `VISIBLE_LABELS` are not read. A guard
 * started with `PROTECT_HOST=1` and a file granting `CONTAINERS=1 POST=1` served every privileged
 * create, logging nothing about it. It must refuse to start instead (exit 2), saying where to put it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { settingsDroppedByConfigFile } from '../../src/cli/config-file.js';

let directory: string;
let file: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'dsf-config-drop-'));
  file = join(directory, 'policy.yaml');
  await writeFile(file, 'policy: { preset: tecnativa, env: { CONTAINERS: 1, POST: 1 } }\n');
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string>): Promise<{ code: number; stderr: string; stdout: string }> {
  let stderr = '';
  let stdout = '';
  const code = await main(argv, env, { stderr: (text) => (stderr += text), stdout: (text) => (stdout += text) });
  return { code, stderr, stdout };
}

describe('security settings of the environment with --config', () => {
  test.each([['PROTECT_HOST', '1'], ['REDACT_ENV', '1'], ['STRICT_READ', '1'], ['VISIBLE_LABELS', 'traefik.enable=true'], ['PROTECT_HOST', 'true']])(
    '%s=%s: `check` and `--print-policy` refuse to run (exit 2) instead of deciding without it',
    async (name, value) => {
      for (const argv of [['check', '--config', file, 'POST', '/v1.41/containers/create'], ['--print-policy', '--config', file]]) {
        const result = await run(argv, { [name]: value });
        expect(result.code).toBe(2);
        expect(result.stderr).toContain(`${name}=${value}`);
        expect(result.stderr).toContain('--config');
        expect(result.stderr).toContain('Put it in the file');
        expect(result.stdout).toBe('');
      }
    },
  );

  test('unset, empty or 0 changes nothing', async () => {
    expect(settingsDroppedByConfigFile({ PROTECT_HOST: '0', REDACT_ENV: '', CONTAINERS: '1' })).toEqual([]);
    const result = await run(['check', '--config', file, 'GET', '/v1.41/containers/json'], { PROTECT_HOST: '0' });
    expect(result.code).toBe(0);
  });

  test('`validate` judges the file alone', async () => {
    expect((await run(['validate', file], { PROTECT_HOST: '1' })).code).toBe(0);
  });
});
