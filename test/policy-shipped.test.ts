// The shipped policies: their pick() rules on hand-made views, the loader, and the property
// suite passing on each (the user-facing `check-policy`).
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import edf from '../policies/edf.ts';
import priority from '../policies/priority.ts';
import roundRobin from '../policies/round-robin.ts';
import weightedFair from '../policies/weighted-fair.ts';
import sim from '../machines/sim.ts';
import { checkPolicy } from '../src/check/policy-check.ts';
import { measureFairness } from '../src/check/properties.ts';
import { loadPolicy, policyConfigOf, PolicyLoadError, SHIPPED_POLICIES, type OwnerView, type WaiterView } from '../src/mux/policy.ts';

const owner = (o: Partial<OwnerView> = {}): OwnerView => ({ id: 'o', weight: 1, priority: 0, deadlineNs: Infinity, usedNs: 0, heldNs: 0, ...o });
const waiter = (id: string, o: Partial<WaiterView> = {}): WaiterView => ({ id, weight: 1, priority: 0, deadlineNs: Infinity, waitedNs: 0, usedNs: 0, ...o });

describe('shipped policies: pick rules', () => {
  it('round-robin keeps the owner for its quantum, then takes the longest waiting', () => {
    const p = roundRobin({ quantumNs: 1000 });
    expect(p.pick({ now: 0, owner: owner({ heldNs: 999 }), waiting: [waiter('a'), waiter('b')] })).toBe('o');
    expect(p.pick({ now: 0, owner: owner({ heldNs: 1000 }), waiting: [waiter('a', { waitedNs: 9 }), waiter('b')] })).toBe('a');
    expect(p.pick({ now: 0, owner: null, waiting: [waiter('b')] })).toBe('b');
  });

  it('weighted-fair gives the device to the least device time per weight', () => {
    const p = weightedFair({ quantumNs: 100 });
    const at = (now: number, oUsed: number, aUsed: number, bUsed: number, heldNs = 100) =>
      p.pick({ now, owner: owner({ heldNs, usedNs: oUsed, weight: 4 }), waiting: [waiter('a', { usedNs: aUsed, weight: 1 }), waiter('b', { usedNs: bUsed, weight: 2 })] });
    expect(at(0, 0, 0, 0, 0)).toBe('o'); // within its quantum
    expect(at(50, 800, 150, 200)).toBe('b'); // virtual times 200, 150, 100
    expect(at(90, 200, 150, 400)).toBe('o'); // 50, 150, 200
  });

  it('weighted-fair does not let a guest back from a pause claim the time it did not use', () => {
    const p = weightedFair({ quantumNs: 100 });
    p.pick({ now: 0, owner: owner({ heldNs: 0 }), waiting: [waiter('a')] });
    // 'late' shows up only at t=10000 with no device time: it starts at the others' virtual time,
    // so it does not get the device for the next 10000 ns in a row.
    expect(p.pick({ now: 10_000, owner: owner({ heldNs: 100, usedNs: 5000 }), waiting: [waiter('a', { usedNs: 5000, waitedNs: 50 }), waiter('late')] })).toBe('a');
  });

  it('priority: a strictly higher waiter preempts; aging lets a low one through', () => {
    const p = priority({ agingNs: 100, quantumNs: 1000 });
    expect(p.pick({ now: 0, owner: owner({ priority: 1, heldNs: 10 }), waiting: [waiter('lo'), waiter('hi', { priority: 3 })] })).toBe('hi');
    expect(p.pick({ now: 0, owner: owner({ priority: 2, heldNs: 2000 }), waiting: [waiter('lo', { waitedNs: 150 })] })).toBe('o');
    expect(p.pick({ now: 0, owner: owner({ priority: 2, heldNs: 2000 }), waiting: [waiter('lo', { waitedNs: 250 })] })).toBe('lo');
  });

  it('edf picks the earliest absolute deadline and preempts when one is due', () => {
    const p = edf({ quantumNs: 1000, defaultDeadlineNs: 5000 });
    const waiting = [waiter('late', { waitedNs: 100, deadlineNs: 3000 }), waiter('soon', { waitedNs: 50, deadlineNs: 1000 })];
    expect(p.pick({ now: 10_000, owner: owner({ heldNs: 10 }), waiting })).toBe('o');
    expect(p.pick({ now: 10_000, owner: owner({ heldNs: 1000 }), waiting })).toBe('soon');
    expect(p.pick({ now: 10_000, owner: owner({ heldNs: 10 }), waiting: [waiter('due', { waitedNs: 2000, deadlineNs: 1000 })] })).toBe('due');
  });
});

describe('policy loader', () => {
  it('loads every shipped policy by name, with options', async () => {
    for (const name of SHIPPED_POLICIES) {
      const p = await loadPolicy(name, { quantumNs: 1 });
      expect(p.name).toBe(name);
      expect(['equal', 'weighted', 'none']).toContain(p.fairness);
    }
  });

  it('loads a path and names what is wrong with a bad module', async () => {
    expect((await loadPolicy('test/fixtures/policies/lowest-id.ts')).name).toBe('lowest-id');
    await expect(loadPolicy('test/fixtures/policies/no-such.ts')).rejects.toThrow(PolicyLoadError);
    await expect(loadPolicy('test/fixtures/policies/bad-shape.ts')).rejects.toThrow(/fairness must be one of/);
  });

  it('reads a command line --policy as a shipped name or a module path', () => {
    expect(policyConfigOf('edf')).toEqual({ name: 'edf' });
    expect(policyConfigOf('nosuch')).toEqual({ name: 'nosuch' }); // the config check names it unknown
    expect(policyConfigOf('./p.ts')).toEqual({ module: resolve('p.ts') });
    expect(policyConfigOf('my.mjs')).toEqual({ module: resolve('my.mjs') });
  });

  it('loads plain JavaScript policies: an ES module (.mjs) and CommonJS (exports.default)', async () => {
    const mjs = await loadPolicy('test/fixtures/policies/js/longest-waiting.mjs', { quantumNs: 10 });
    expect(mjs.name).toBe('longest-waiting-mjs');
    expect(mjs.pick({ now: 0, owner: owner({ heldNs: 10 }), waiting: [waiter('a'), waiter('b', { waitedNs: 5 })] })).toBe('b');
    const cjs = await loadPolicy('test/fixtures/policies/js/first-waiting.cjs.js');
    expect(cjs.name).toBe('first-waiting-cjs');
    expect(cjs.pick({ now: 0, owner: null, waiting: [waiter('a'), waiter('b')] })).toBe('a');
    const r = await checkPolicy('test/fixtures/policies/js/longest-waiting.mjs', { runs: 10, seed: 7 });
    expect(r.ok, r.report).toBe(true);
  });
});

describe('shipped policies pass the property suite', () => {
  for (const name of SHIPPED_POLICIES)
    it(`check-policy ${name}`, async () => {
      const r = await checkPolicy(name, { runs: 20, seed: 42 });
      expect(r.ok, r.report).toBe(true);
      expect(r.report).toMatch(/ok: safety, solo equivalence, isolation, liveness/);
    });

  it('regression: weighted-fair keeps weights 1:4:1 within 10% (found by check-policy, seed 480078274)', async () => {
    const f = await measureFairness([1, 4, 1], sim, weightedFair(), 40_000_000);
    expect(f.error).toBeLessThanOrEqual(0.1);
  });
});
