import { describe, expect, test } from 'vitest';
import { formatRequirement, labelsSatisfy, parseLabelRequirements, type LabelRequirement } from '../../src/index.js';

describe('parseLabelRequirements reads VISIBLE_LABELS', () => {
  test.each<[string, LabelRequirement[]]>([
    ['traefik.enable=true', [{ key: 'traefik.enable', value: 'true' }]],
    ['traefik.enable', [{ key: 'traefik.enable' }]],
    ['traefik.enable=true,com.example.public', [{ key: 'traefik.enable', value: 'true' }, { key: 'com.example.public' }]],
    [' a=1 , b ', [{ key: 'a', value: '1' }, { key: 'b' }]],
    ['a=b=c', [{ key: 'a', value: 'b=c' }]],
    ['a = b', [{ key: 'a', value: 'b' }]],
    ['com.docker.compose.project=web', [{ key: 'com.docker.compose.project', value: 'web' }]],
  ])('%j', (text, requirements) => {
    expect(parseLabelRequirements(text)).toEqual({ requirements, problem: null });
  });

  test.each<[string, string]>([
    ['', 'is empty'],
    ['  ', 'is empty'],
    ['a,,b', 'item 2 is empty'],
    ['a,', 'item 2 is empty'],
    ['=true', 'item 1 ("=true") has an empty label key'],
    ['a=', 'item 1 ("a=") requires "a" to be empty'],
    ['name=web', 'item 1 ("name=web") uses the key "name"'],
    ['image', 'item 1 ("image") uses the key "image"'],
    ['exitCode=0', 'uses the key "exitCode"'],
    ['execID', 'uses the key "execID"'],
    ['signal=9', 'uses the key "signal"'],
    ['a=b\u0000', 'contains a control character'],
  ])('%j is refused: %s', (text, problem) => {
    const parsed = parseLabelRequirements(text);
    expect(parsed.requirements).toEqual([]);
    expect(parsed.problem).toContain(problem);
  });
});

describe('labelsSatisfy', () => {
  const traefik: LabelRequirement[] = [{ key: 'traefik.enable', value: 'true' }];
  const hasPublic: LabelRequirement[] = [{ key: 'public' }];
  test.each<[unknown, LabelRequirement[], boolean]>([
    [{ 'traefik.enable': 'true' }, traefik, true],
    [{ 'traefik.enable': 'true', other: 'x' }, traefik, true],
    [{ 'traefik.enable': 'false' }, traefik, false],
    [{ 'traefik.enable': 'TRUE' }, traefik, false],
    [{ 'Traefik.enable': 'true' }, traefik, false],
    [{}, traefik, false],
    [null, traefik, false],
    [undefined, traefik, false],
    [['traefik.enable=true'], traefik, false],
    [{ public: '' }, hasPublic, true],
    [{ public: 'anything' }, hasPublic, true],
    [{ publicity: 'x' }, hasPublic, false],
    [{ 'traefik.enable': 'true', public: '' }, [...traefik, ...hasPublic], true],
    [{ 'traefik.enable': 'true' }, [...traefik, ...hasPublic], false],
    // Inherited properties are not labels.
    [Object.create({ 'traefik.enable': 'true' }), traefik, false],
    [{ 'traefik.enable': true }, traefik, false],
    [null, [], true],
  ])('%j with %j: %s', (labels, requirements, expected) => {
    expect(labelsSatisfy(labels, requirements)).toBe(expected);
  });
});

test.each<[LabelRequirement, string]>([
  [{ key: 'a', value: 'b' }, 'a=b'],
  [{ key: 'a' }, 'a'],
  [{ key: 'a', value: 'b=c' }, 'a=b=c'],
])('formatRequirement(%j) = %j', (requirement, text) => {
  expect(formatRequirement(requirement)).toBe(text);
});
