import { describe, expect, test } from 'vitest';
import { psArgsShowEnvironment } from '../../src/policy/read/ps-args.js';

// What procps-ng 4.0.2 printed for each `ps_args`, as dockerd runs it (split on spaces, with and
// without `-q <pids>`): the environment after the command, or not.
describe('psArgsShowEnvironment', () => {
  test.each(['e', 'aux e', 'auxe', 'ae', 'ee', 'eww', '-axe', '-auxe', '-ex', '-e -x', '-ef -x', '-ef e', '-opid,args e', '-o pid,args e', '--format pid e', '-e  -x', 'axe', '--sort=start_time'])(
    '%j may print the environment',
    (args) => expect(psArgsShowEnvironment(args)).toBe(true),
  );
  test.each(['', '-ef', '-e', '-eF', '-efL', '-eLf', 'aux', '-A', '-eo pid,comm,start_time', '-o pid,user,args', '-opid,time', '--format pid,time', 'axo pid,comm', '-x -o e', '-ww', '-u root'])(
    '%j does not',
    (args) => expect(psArgsShowEnvironment(args)).toBe(false),
  );
});
