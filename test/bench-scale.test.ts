// The scale bench (src/bench/scale.ts) run briefly at small counts: 1 and 64 scripted guests on
// one disk for 1 s each. Structure and correctness only, never a speed: every guest served and
// verified, no unsafe switch, Jain's index and the efficiency computed from the per-guest
// figures, every figure described for the table.
import { describe, expect, it } from 'vitest';
import { describeFigures } from '../src/cli/bench-figures.ts';
import { figuresOf } from '../src/bench/scale.ts';
import { ownerAccessNs } from '../src/bench/scale/engine-cost.ts';
import { jainIndex, runScale, type ScaleRunResult } from '../src/bench/scale/scenario.ts';

/** Jain's index written out: (sum x)^2 / (n * sum x^2). */
function jain(xs: number[]): number {
  let sum = 0;
  let sq = 0;
  for (const x of xs) {
    sum += x;
    sq += x * x;
  }
  return (sum * sum) / (xs.length * sq);
}

describe('scale bench', () => {
  it("Jain's index: 1 for equal shares, 1/n when one guest gets everything", () => {
    expect(jainIndex([3, 3, 3, 3])).toBe(1);
    expect(jainIndex([5, 0, 0, 0])).toBe(0.25);
    expect(jainIndex([1, 2, 3])).toBeCloseTo(36 / 42, 12);
  });

  it('the engine-alone figure runs an owner access with guests waiting and gives a time', () => {
    const ns = ownerAccessNs(64, 200, 1);
    expect(Number.isFinite(ns) && ns > 0).toBe(true);
  });

  it('1 and 64 guests for 1 s: every guest served and verified, figures computed from the per-guest counts', async () => {
    const runs = new Map<number, ScaleRunResult>();
    for (const guests of [1, 64]) runs.set(guests, await runScale({ guests, seconds: 1 }));
    for (const [n, r] of runs) {
      expect(r.guests).toHaveLength(n);
      expect(new Set(r.guests.map((g) => g.guest)).size).toBe(n);
      expect(r.guests.filter((g) => g.ops === 0).map((g) => g.guest)).toEqual([]); // every guest served
      expect(r.guests.filter((g) => !g.verified).map((g) => g.firstError)).toEqual([]);
      expect(r.guests.every((g) => g.bytes > 0 && g.bytes % 512 === 0)).toBe(true);
      expect(r.guests.every((g) => g.deviceMs > 0)).toBe(true);
      expect(r.unsafeSwitches).toBe(0);
      expect(r.seconds).toBeGreaterThanOrEqual(1);
      expect(r.rssMiB).toBeGreaterThan(0);
      expect(r.switches).toBeGreaterThanOrEqual(n);
    }

    const f = figuresOf(runs);
    expect(f['scale.guests']).toEqual([1, 64]);
    expect(f['scale.error']).toBeUndefined();
    const per = (key: string) => f[key] as Record<string, number>;
    for (const n of [1, 64]) {
      const r = runs.get(n)!; // set above
      expect(per('scale.jain')[n]).toBeCloseTo(jain(r.guests.map((g) => g.bytes)), 4);
      expect(per('scale.jainDeviceTime')[n]).toBeCloseTo(jain(r.guests.map((g) => g.deviceMs)), 4);
      expect(per('scale.unserved')[n]).toBe(0);
      const mbps = r.guests.reduce((a, g) => a + g.bytes, 0) / 1e6 / r.seconds;
      expect(per('scale.aggregateMBps')[n]).toBeCloseTo(mbps, 2);
      expect(per('scale.longestWaitMs')[n]).toBeCloseTo(Math.max(...r.guests.map((g) => g.longestWaitMs)), 2);
      expect(per('scale.livenessBoundMs')[n]).toBeGreaterThan(0);
    }
    expect(per('scale.jain')[1]).toBe(1);
    expect(per('scale.efficiency')[1]).toBe(1);
    const aggregate = (r: ScaleRunResult) => r.guests.reduce((a, g) => a + g.bytes, 0) / r.seconds;
    expect(per('scale.efficiency')[64]).toBeCloseTo(aggregate(runs.get(64)!) / aggregate(runs.get(1)!), 2); // both ran
    expect(typeof f['scale.rssPerGuestMiB']).toBe('number');
    // The engine-alone cost figure is added by run(), not by figuresOf.
    expect(f['scale.ownerAccessNs']).toBeUndefined();

    const described = describeFigures(f);
    expect(described.filter((d) => !d.described).map((d) => d.key)).toEqual([]);
    // The longest wait is judged against the bound of the same count.
    expect(described.find((d) => d.key === 'scale.longestWaitMs.64')?.target?.value).toBe(per('scale.livenessBoundMs')[64]);
  }, 120_000);
});
