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

  it('names an event the classifier produces that the chart never handles (a typo)', async () => {
    const r = await checkMachine(`${FIX}/typo-event.ts`);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([{ problem: expect.stringMatching(/^the classifier produces event DONEE \(e\.g\. on read STATUS=0x00\) that no state of the chart handles: .*\(handled: ABORT, DONE, START\)$/) }]);
  });

  it("names a register whose region the device kind does not have: the machine's kind, or --kind", async () => {
    const own = await checkMachine(`${FIX}/bad-region.ts`);
    expect(own.problems).toEqual([{ problem: 'register BM_CMD: region "bmdma" is not a region of device kind ata (cmd, ctl, bmide)' }]);
    expect(own.report).toMatch(/regions checked against device kind ata: cmd, ctl, bmide/);
    // A toy machine on regs: fine for scratch (regs, mem), wrong for ata.
    const scratch = await checkMachine(`${FIX}/guarded.ts`, { kind: 'scratch' });
    expect(scratch.problems).toEqual([]);
    const ata = await checkMachine(`${FIX}/guarded.ts`, { kind: 'ata' });
    expect(ata.problems.map((p) => p.problem)).toContainEqual(expect.stringMatching(/^register CMD: region "regs" is not a region of device kind ata/));
    const unknown = await checkMachine('sim', { kind: 'nope' });
    expect(unknown.report).toMatch(/--kind nope: unknown device kind; known kinds: .*ata/);
    // Without --kind, a machine whose kind is not registered says its regions went unchecked.
    expect((await checkMachine('sim')).report).toMatch(/regions not checked: sim is not a registered device kind/);
  });

  it('the shipped machines handle every event their classifiers produce, in their kinds\' regions', async () => {
    for (const m of ['sim', 'ata', 'uart16550']) expect((await checkMachine(m)).problems, m).toEqual([]);
    expect((await checkMachine('ata')).report).toMatch(/regions checked against device kind ata/);
  });

  it('draws a transition declared at the root once, from "any state"', async () => {
    const r = await checkMachine('sim');
    const resets = r.diagram!.split('\n').filter((l) => / : RESET$/.test(l));
    expect(resets).toEqual(['  any_state --> idle : RESET']);
    expect(r.diagram).toMatch(/^  state "any state" as any_state$/m);
    // Another chart's root RESET: one edge too, not one per state.
    const ata = await checkMachine(`${FIX}/bad-region.ts`);
    expect(ata.diagram!.match(/ : RESET$/gm)).toHaveLength(1);
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
