// Saturated runs: every guest always has work waiting (back-to-back block commands, no think
// time) for a fixed window of virtual time, so a policy's choices are all that decide who gets
// the device. Liveness (no hold past the hold bound while others wait, no wait past the
// liveness bound) and the declared fairness are then checked by construction, not by luck.
// Each access costs more virtual time than in the random scenarios (SATURATED_ACCESS_NS), so a
// window of many quanta takes few real engine steps.

import type { MuxDefinition } from '../mux/define.ts';
import type { Fairness, Policy } from '../mux/policy.ts';
import { runShared, type GuestSpec, type SharedRun, type Violation } from './harness.ts';
import { type Bounds, fmtMs, holdBound, livenessBound, longHolds, MEM_SIZE } from './properties.ts';
import { generateScript } from './script.ts';

/** Virtual time of one access in a saturated run. */
export const SATURATED_ACCESS_NS = 10_000;
/** Virtual time of a saturated run: many quanta of the default quantum bound. */
export const SATURATED_WINDOW_NS = 12_000_000;

export interface SaturatedGuest {
  weight: number;
  priority: number;
  deadlineNs: number;
}

/**
 * The canonical saturated scenario every check runs: four guests with different weights,
 * priorities and deadlines. Equal fairness must give each a quarter whatever its weight;
 * weighted fairness 1:1:2:4; every policy must serve each within the liveness bound.
 */
export const CANONICAL: readonly SaturatedGuest[] = [
  { weight: 1, priority: 0, deadlineNs: Infinity },
  { weight: 1, priority: 1, deadlineNs: 2_000_000 },
  { weight: 2, priority: 2, deadlineNs: 1_000_000 },
  { weight: 4, priority: 0, deadlineNs: Infinity },
];

export interface SaturatedOutcome {
  guests: readonly SaturatedGuest[];
  run: SharedRun;
  /** Device-time shares at the end of the window, and what the declared fairness expects. */
  shares: number[];
  expected: number[];
  /** The liveness bound of a wait in this run. */
  boundNs: number;
  violations: Violation[];
}

/** The bounds of a saturated run: the check's bounds with the saturated access cost. */
export function saturatedBounds(b: Bounds): Bounds {
  return { ...b, accessCostNs: SATURATED_ACCESS_NS };
}

/** Run `guests` saturating the device for `windowNs`, and check liveness and the declared fairness. */
export async function runSaturated(
  guests: readonly SaturatedGuest[],
  def: MuxDefinition,
  policy: Policy,
  bounds: Bounds,
  tolerance: number,
  windowNs = SATURATED_WINDOW_NS,
): Promise<SaturatedOutcome> {
  const b = saturatedBounds(bounds);
  const specs: GuestSpec[] = guests.map((g, i) => ({
    id: `g${i}`,
    weight: g.weight,
    priority: g.priority,
    deadlineNs: g.deadlineNs,
    sectors: 4,
    memSize: MEM_SIZE,
    // More commands than the window can serve (one takes at least 5 accesses): never idle.
    ops: generateScript({ seed: 1000 + i, commands: Math.ceil(windowNs / b.accessCostNs / 5) + 1, sectors: 3, memSize: MEM_SIZE, thinkEvery: 0, thinkNs: 0, plain: true }),
  }));
  const run = await runShared(specs, { def, policy, recheckNs: b.recheckNs, accessCostNs: b.accessCostNs, untilNs: windowNs, stopAtViolation: true });
  const violations: Violation[] = run.violations.filter((v) => v.property === 'policy' || v.property === 'safety' || v.property === 'progress');
  const hold = holdBound(run.stats.maxUnsafeNs, b);
  const boundNs = livenessBound(specs.length, run.stats.maxUnsafeNs, b);
  violations.push(...longHolds(run, hold + b.slackNs));
  for (const w of run.waits)
    if (w.to - w.from > boundNs)
      violations.push({ t: w.from, property: 'liveness', message: `${w.guest} waited ${fmtMs(w.to - w.from, boundNs)} (from ${fmtMs(w.from)} to ${fmtMs(w.to)}) with every guest busy, bound ${fmtMs(boundNs, w.to - w.from)}` });
  const st = run.statsAtStop ?? run.stats;
  const used = specs.map((s) => st.perGuest.find((g) => g.guest === s.id)?.usedNs ?? 0);
  const total = used.reduce((a, x) => a + x, 0) || 1;
  const shares = used.map((u) => u / total);
  const expected = expectedShares(policy.fairness, guests);
  if (expected) {
    // A share may miss by the tolerance plus one hold: the window ends inside someone's hold.
    const off = used.map((u, i) => ({ i, miss: Math.abs(u - expected[i] * total), allowed: tolerance * expected[i] * total + hold }));
    const worst = off.reduce((a, x) => (x.miss - x.allowed > a.miss - a.allowed ? x : a));
    if (worst.miss > worst.allowed)
      violations.push({
        t: windowNs,
        property: 'fairness',
        message:
          `weights ${guests.map((g) => g.weight).join(':')}, every guest busy for ${fmtMs(windowNs)}: device-time shares ${shares.map((x) => x.toFixed(3)).join(' ')}, ` +
          `expected ${expected.map((x) => x.toFixed(3)).join(' ')} (${policy.fairness}); g${worst.i} got ${fmtMs(used[worst.i])} of ${fmtMs(total)}, ` +
          `${fmtMs(worst.miss)} off its share, allowed ${fmtMs(worst.allowed)} (tolerance ${tolerance} + one hold ${fmtMs(hold)})`,
      });
  }
  return { guests, run, shares, expected: expected ?? [], boundNs, violations: violations.sort((x, y) => x.t - y.t) };
}

function expectedShares(fairness: Fairness, guests: readonly SaturatedGuest[]): number[] | null {
  if (fairness === 'none') return null;
  if (fairness === 'equal') return guests.map(() => 1 / guests.length);
  const sum = guests.reduce((a, g) => a + g.weight, 0);
  return guests.map((g) => g.weight / sum);
}

/** Who was granted the device when: equal for two runs of one scenario with a deterministic policy. */
export function grantSequence(run: SharedRun): string[] {
  return run.trace.filter((e) => e.kind === 'grant' || e.kind === 'policy-error').map((e) => `${fmtMs(e.t)} ${e.kind === 'grant' ? e.guest : `policy-error ${e.detail}`}`);
}

/** The first difference between two runs' grant sequences, as a sentence; null when they agree. */
export function replayDifference(first: SharedRun, again: SharedRun): string | null {
  const a = grantSequence(first);
  const b = grantSequence(again);
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++)
    if (a[i] !== b[i]) return `grant #${i + 1} was "${a[i] ?? '(none)'}" in the run and "${b[i] ?? '(none)'}" in its replay with a fresh policy from the same factory`;
  return null;
}
