// `muxvisor check-machine` passes machines/sim and names the state and the problem of each
// bad machine in test/fixtures/machines; --diagram writes Mermaid with safe states marked.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMachine } from '../src/check/machine-lint.ts';

const FIX = 'test/fixtures/machines';

describe('check-machine', () => {
  it('passes machines/sim', async () => {
    const r = await checkMachine('sim');
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.safeStates).toEqual(['idle']);
    expect(r.states).toHaveLength(6);
  });

  it('explores a guarded machine with its context', async () => {
    const r = await checkMachine(`${FIX}/guarded.ts`);
    expect(r.problems).toEqual([]);
    expect(r.states.sort()).toEqual(['idle', 'xfer']);
  });

  it('names a state with no way to a safe state', async () => {
    const r = await checkMachine(`${FIX}/no-way-to-safe.ts`);
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual({ state: 'jammed', problem: expect.stringMatching(/no way to a safe state/) });
    expect(r.report).toMatch(/state jammed: no way to a safe state/);
  });

  it('names an unreachable state', async () => {
    const r = await checkMachine(`${FIX}/unreachable.ts`);
    expect(r.problems).toEqual([{ state: 'orphan', problem: expect.stringMatching(/unreachable/) }]);
  });

  it('reports a context that grows without bound instead of crashing', async () => {
    const r = await checkMachine(`${FIX}/unbounded.ts`);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([{ problem: expect.stringMatching(/context grows without bound/) }]);
    expect(r.report).toMatch(/FAILED: 1 problem/);
  });

  it('names the states from which the reset path does not reach safety', async () => {
    const r = await checkMachine(`${FIX}/bad-reset.ts`);
    expect(r.problems.map((p) => p.state).sort()).toEqual(['aborting', 'busy']);
    expect(r.problems[0].problem).toMatch(/reset path \(CMD=9; events ABORT\) ends in aborting, not a safe state/);
  });

  it('flags context registers missing from the map or classified as events', async () => {
    const r = await checkMachine(`${FIX}/bad-registers.ts`);
    expect(r.problems.map((p) => p.problem)).toEqual([
      expect.stringMatching(/^context register LBA_LOW is not in the register map/),
      expect.stringMatching(/context register CMD: replaying it \(=1\) is the event START, which leaves this safe state for busy/),
    ]);
  });

  it('reports a module that cannot be loaded', async () => {
    const r = await checkMachine(`${FIX}/does-not-exist.ts`);
    expect(r.ok).toBe(false);
    expect(r.report).toMatch(/cannot load module/);
  });

  it('CLI: exit 1 naming the state; --diagram writes Mermaid with the safe states marked', () => {
    const bad = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', 'check-machine', `${FIX}/unreachable.ts`], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/state orphan: unreachable/);
    const file = join(mkdtempSync(join(tmpdir(), 'muxvisor-mmd-')), 'sim.mmd');
    const ok = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', 'check-machine', 'machines/sim.ts', '--diagram', file], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const mmd = readFileSync(file, 'utf8');
    expect(mmd).toMatch(/^stateDiagram-v2/);
    expect(mmd).toMatch(/class idle safe/);
    expect(mmd).toMatch(/idle --> cmd_busyRead : READ/);
  });
});
