import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { exposeToolNames, UPSTREAM_TOOL_NAME } from '../../../src/mcp/upstream/tool-names.js';

const tag = (name: string) => createHash('sha256').update(name).digest('hex').slice(0, 6);
const mapping = (server: string, names: string[]) => Object.fromEntries(exposeToolNames(server, names).map((n) => [n.original, n.exposed]));

describe('upstream tool names', () => {
  it('keeps a valid name as <server>__<tool> and reports no rename', () => {
    expect(exposeToolNames('fx', ['echo', 'get-thing', 'A_1'])).toEqual([
      { original: 'A_1', exposed: 'fx__A_1' },
      { original: 'echo', exposed: 'fx__echo' },
      { original: 'get-thing', exposed: 'fx__get-thing' },
    ]);
  });

  it.each([
    ['late.tool', 'fx__late_tool'],
    ['a b/c', 'fx__a_b_c'],
    ['café', 'fx__caf_'],
    ['😀', 'fx___'],
    ['x:y@z', 'fx__x_y_z'],
  ])('replaces characters outside [a-zA-Z0-9_-] by "_": %j → %s', (original, exposed) => {
    const [name] = exposeToolNames('fx', [original]);
    expect(name?.exposed).toBe(exposed);
    expect(name?.renamed).toMatch(/replaced/);
  });

  it('cuts a name that would pass 64 characters and tags it with a hash of the original', () => {
    const long = 'a'.repeat(100);
    const [name] = exposeToolNames('server', [long]);
    expect(name?.exposed).toHaveLength(64);
    expect(name?.exposed).toBe(`server__${'a'.repeat(64 - 'server__'.length - 7)}_${tag(long)}`);
    expect(name?.renamed).toMatch(/longer than 64/);
  });

  it('keeps a name of exactly 64 characters as it is', () => {
    const tool = 'b'.repeat(64 - 'fx__'.length);
    expect(exposeToolNames('fx', [tool])).toEqual([{ original: tool, exposed: `fx__${tool}` }]);
  });

  it('tells apart long names that share their first 64 characters', () => {
    const names = [`${'p'.repeat(70)}_one`, `${'p'.repeat(70)}_two`];
    const exposed = exposeToolNames('fx', names).map((n) => n.exposed);
    expect(new Set(exposed).size).toBe(2);
  });

  it('when a sanitised name meets an unchanged one, the unchanged one keeps its name', () => {
    expect(mapping('fx', ['a.b', 'a_b'])).toEqual({ a_b: 'fx__a_b', 'a.b': `fx__a_b_${tag('a.b')}` });
  });

  it('when two sanitised names meet, both are tagged and stay distinct', () => {
    const result = mapping('fx', ['a.b', 'a/b']);
    expect(result).toEqual({ 'a.b': `fx__a_b_${tag('a.b')}`, 'a/b': `fx__a_b_${tag('a/b')}` });
  });

  it('is deterministic: the same names in any order give the same mapping, and the result is sorted', () => {
    const names = ['z.tool', 'a_b', 'a.b', 'a/b', 'q'.repeat(80), `${'q'.repeat(80)}!`, 'plain'];
    const forward = exposeToolNames('srv', names);
    const backward = exposeToolNames('srv', [...names].reverse());
    expect(backward).toEqual(forward);
    expect(forward.map((n) => n.original)).toEqual([...names].sort());
  });

  it('every exposed name is valid and unique, whatever the upstream sends', () => {
    const names = ['', ' ', '.', '..', '__', 'a'.repeat(1000), 'ß'.repeat(70), 'tool\nname', 'x'.repeat(57), 'x'.repeat(58), 'x'.repeat(60), 'dup', 'dup'];
    const server = 's'.repeat(32);
    const result = exposeToolNames(server, names);
    expect(result).toHaveLength(new Set(names).size);
    for (const { exposed } of result) {
      expect(exposed).toMatch(UPSTREAM_TOOL_NAME);
      expect(exposed.startsWith(`${server}__`)).toBe(true);
    }
    expect(new Set(result.map((n) => n.exposed)).size).toBe(result.length);
  });

  it('refuses a server name the config would not accept', () => {
    expect(() => exposeToolNames('bad.name', ['x'])).toThrow(/invalid upstream server name/);
  });
});
