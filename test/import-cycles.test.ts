// No import cycles in src/, machines/ and policies/: not between files, not between folders
// (src/mux <-> src/config, machines <-> src/check, ...). A cycle means a lower layer knows a
// higher one; move the code to where it belongs instead of hiding the import.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cycles, folderGraph, importGraph, importSpecifiers } from './helpers/import-graph.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIRS = ['src', 'machines', 'policies'];

describe('the import graph walker', () => {
  it('sees static, re-export, type-only, dynamic and import-type imports, and skips packages', () => {
    const text = `
      import a from './a.ts'; import type { B } from '../b.ts'; export { c } from './c.ts';
      export * from './d.ts'; import 'xstate'; const e = await import('./e.ts');
      let f: import('./f.ts').F; const g = await import(name);`;
    expect(importSpecifiers('x.ts', text).sort()).toEqual(['../b.ts', './a.ts', './c.ts', './d.ts', './e.ts', './f.ts']);
  });

  it('finds the cycles of a fixture tree, between files and between folders', () => {
    const fixture = join(ROOT, 'test/fixtures/import-cycle');
    const g = importGraph(fixture, DIRS);
    expect(cycles(g).map((c) => c.join(' -> '))).toEqual(['machines/m.ts -> src/two/c.ts -> machines/m.ts', 'src/one/a.ts -> src/one/b.ts -> src/one/a.ts']);
    const { graph, because } = folderGraph(g);
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual(['machines -> src/two -> machines']);
    expect(because.get('src/two machines')).toBe('src/two/c.ts imports machines/m.ts');
  });
});

describe('muxvisor imports', () => {
  const files = importGraph(ROOT, DIRS);

  it('walks every source folder', () => {
    expect(files.size).toBeGreaterThan(100);
    expect([...files.keys()].some((f) => f.startsWith('machines/'))).toBe(true);
    expect([...files.keys()].some((f) => f.startsWith('policies/'))).toBe(true);
  });

  it('has no cycle between files', () => {
    expect(cycles(files).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const { graph, because } = folderGraph(files);
    const named = cycles(graph).map((c) => c.join(' -> ') + ' (' + c.slice(1).map((to, i) => because.get(`${c[i]} ${to}`)).join('; ') + ')');
    expect(named).toEqual([]);
  });
});
