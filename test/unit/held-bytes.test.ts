import { describe, expect, test } from 'vitest';
import { createHeldBytes, heldSaturated, refusalOf } from '../../src/proxy/held.js';

// The budget of bytes held whole (src/proxy/held.ts): what each step of a few holds leaves held,
// what it answers, and that nothing is given back twice or left behind.

type Step = readonly [hold: number, action: 'grow' | 'resize' | 'release', bytes: number, answer: boolean | undefined];

const cases: readonly { name: string; max: number; steps: readonly Step[]; held: number; refused: number }[] = [
  { name: 'grows within the budget', max: 100, steps: [[0, 'grow', 40, true], [0, 'grow', 60, true]], held: 100, refused: 0 },
  { name: 'refuses what would pass the budget, taking nothing of it', max: 100, steps: [[0, 'grow', 90, true], [0, 'grow', 11, false]], held: 90, refused: 1 },
  { name: 'holds share one budget', max: 100, steps: [[0, 'grow', 60, true], [1, 'grow', 50, false], [1, 'grow', 40, true]], held: 100, refused: 1 },
  { name: 'a release gives back to the others', max: 100, steps: [[0, 'grow', 60, true], [1, 'grow', 50, false], [0, 'release', 0, undefined], [1, 'grow', 50, true]], held: 50, refused: 1 },
  { name: 'a second release gives nothing back twice', max: 100, steps: [[0, 'grow', 60, true], [1, 'grow', 30, true], [0, 'release', 0, undefined], [0, 'release', 0, undefined]], held: 30, refused: 0 },
  { name: 'a released hold takes nothing more', max: 100, steps: [[0, 'grow', 10, true], [0, 'release', 0, undefined], [0, 'grow', 10, false], [0, 'resize', 5, false]], held: 0, refused: 0 },
  { name: 'more than the whole budget is refused even when it is free', max: 100, steps: [[0, 'grow', 101, false]], held: 0, refused: 1 },
  { name: 'exactly the budget fits', max: 100, steps: [[0, 'grow', 100, true]], held: 100, refused: 0 },
  { name: 'a resize down gives back the difference', max: 100, steps: [[0, 'grow', 80, true], [0, 'resize', 30, true], [1, 'grow', 70, true]], held: 100, refused: 0 },
  { name: 'a resize up takes the difference, or nothing', max: 100, steps: [[0, 'grow', 50, true], [1, 'grow', 40, true], [0, 'resize', 60, true], [0, 'resize', 61, false]], held: 100, refused: 1 },
  { name: 'a grow of nothing always works on a live hold', max: 1, steps: [[0, 'grow', 1, true], [1, 'grow', 0, true]], held: 1, refused: 0 },
];

describe('createHeldBytes', () => {
  test.each(cases)('$name', ({ max, steps, held, refused }) => {
    const budget = createHeldBytes(max);
    const holds = [budget.hold(), budget.hold()];
    for (const [index, action, bytes, answer] of steps) {
      const hold = holds[index]!;
      if (action === 'release') hold.release();
      else expect(hold[action](bytes), `${action}(${bytes}) on hold ${index}`).toBe(answer);
    }
    expect(budget.stats()).toEqual({ held, max, refused });
    expect(holds.reduce((sum, hold) => sum + hold.bytes, 0)).toBe(held);
    for (const hold of holds) hold.release();
    expect(budget.stats().held).toBe(0);
  });

  test.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses a budget of %s', (max) => {
    expect(() => createHeldBytes(max)).toThrow(RangeError);
  });

  test('release works detached from its hold (as an event listener)', () => {
    const budget = createHeldBytes(10);
    const hold = budget.hold();
    hold.grow(10);
    const { release } = hold;
    release();
    expect(budget.stats().held).toBe(0);
  });
});

describe('heldSaturated', () => {
  const MiB = 1024 * 1024;
  test.each([
    [16 * MiB, 4096, 'docker-socket-filter is saturated: the 16 MiB it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES) are in use; retry later'],
    [16 * MiB, 16 * MiB, 'docker-socket-filter is saturated: the 16 MiB it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES) are in use; retry later'],
    [16 * MiB, 16 * MiB + 1, 'docker-socket-filter is saturated: this request needs more than the 16 MiB it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES); raise it'],
    [1000, 10, 'docker-socket-filter is saturated: the 1000 bytes it holds at most for checked request bodies and rewritten answers (maxHeldBytes, MAX_HELD_BYTES) are in use; retry later'],
  ])('a budget of %d, a request needing %d', (max, needed, message) => {
    const error = heldSaturated(max, needed);
    expect(error.message).toBe(message);
    // The code the proxy answers 503 for, as for a pool with no connection free.
    expect(error.code).toBe('ERR_DSF_SATURATED');
  });

  test('refusalOf counts what the hold has with what it asked for', () => {
    const budget = createHeldBytes(100);
    const other = budget.hold();
    other.grow(50);
    const hold = budget.hold();
    hold.grow(40);
    expect(hold.grow(20)).toBe(false);
    expect(refusalOf(hold, 20).message).toContain('are in use; retry later');
    expect(refusalOf(hold, 61).message).toContain('this request needs more than the 100 bytes');
  });
});
