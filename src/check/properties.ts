// The DESIGN.md properties as checks over one run of scripted guests through the real engine:
// safety, solo equivalence, isolation, liveness (a bound), fairness (as the policy declares).

import type { MuxDefinition } from '../mux/define.ts';
import type { Policy } from '../mux/policy.ts';
import { runShared, runSolo, type GuestSpec, type SharedRun, type Violation } from './harness.ts';
import { generateScript } from './script.ts';

/** A guest of a scenario, as a few integers (fast-check shrinks these, not long op lists). */
export interface GuestParams {
  weight: number;
  priority: number;
  deadlineNs: number;
  sectors: number;
  commands: number;
  seed: number;
  thinkEvery: number;
  thinkNs: number;
  /** The guest hangs mid-command after its script (watchdog scenarios). */
  hang?: boolean;
}

export interface Scenario {
  guests: GuestParams[];
}

export interface Bounds {
  /** Longest hold a policy may give an owner while others wait (default 1 ms). */
  quantumBoundNs: number;
  /** Extra waiting a policy may add on top (priority aging, deadlines); default 3 ms. */
  slackNs: number;
  /** Engine recheck interval in the runs (default 100 µs). */
  recheckNs: number;
  accessCostNs: number;
}

export const DEFAULT_BOUNDS: Bounds = { quantumBoundNs: 1_000_000, slackNs: 3_000_000, recheckNs: 100_000, accessCostNs: 5_000 };

export const MEM_SIZE = 64;

export function specsOf(s: Scenario): GuestSpec[] {
  return s.guests.map((g, i) => {
    const ops = generateScript({ seed: g.seed, commands: g.commands, sectors: g.sectors, memSize: MEM_SIZE, thinkEvery: g.thinkEvery, thinkNs: g.thinkNs });
    if (g.hang) ops.push({ op: 'hang' });
    return { id: `g${i}`, weight: g.weight, priority: g.priority, deadlineNs: g.deadlineNs, sectors: g.sectors, memSize: MEM_SIZE, ops };
  });
}

/**
 * The longest an owner may keep the device while another guest waits: a quantum, then the
 * rest of its command (the longest unsafe span), plus the engine's recheck and two accesses.
 */
export function holdBound(maxUnsafeNs: number, b: Bounds): number {
  return b.quantumBoundNs + maxUnsafeNs + b.recheckNs + 2 * b.accessCostNs;
}

/**
 * The liveness bound of a run (DESIGN.md property 4): each of the n-1 other guests may hold
 * the device once for the hold bound before the waiter's turn, plus the slack a policy may
 * add (priority aging, deadlines).
 */
export function livenessBound(n: number, maxUnsafeNs: number, b: Bounds): number {
  return Math.max(1, n - 1) * holdBound(maxUnsafeNs, b) + b.slackNs;
}

/** Each hold of the device while someone else waited longer than the hold bound (+ slack). */
export function longHolds(run: SharedRun, limitNs: number): Violation[] {
  const out: Violation[] = [];
  const grantedAt = new Map<string, number>();
  for (const e of run.trace) {
    if (e.kind === 'grant' && e.guest) grantedAt.set(e.guest, e.t);
    if (e.kind !== 'release' || !e.guest || !grantedAt.has(e.guest)) continue;
    const from = grantedAt.get(e.guest)!;
    grantedAt.delete(e.guest);
    // The first moment in this hold at which another guest was waiting.
    let first = Infinity;
    let who = '';
    for (const w of run.waits)
      if (w.guest !== e.guest && w.from < e.t && w.to > from && Math.max(w.from, from) < first) {
        first = Math.max(w.from, from);
        who = w.guest;
      }
    if (first === Infinity || e.t - first <= limitNs) continue;
    out.push({
      t: first,
      property: 'liveness',
      message: `${e.guest} kept the device ${fmtMs(e.t - first, limitNs)} (from ${fmtMs(first)} to ${fmtMs(e.t)}) while ${who} waited, hold bound ${fmtMs(limitNs, e.t - first)}`,
    });
  }
  return out;
}

export interface ScenarioOutcome {
  run: SharedRun;
  boundNs: number;
  violations: Violation[];
}

/** Run a scenario through the engine and check safety, solo equivalence, isolation and liveness. */
export async function checkScenario(
  s: Scenario,
  def: MuxDefinition,
  policy: Policy,
  b: Bounds = DEFAULT_BOUNDS,
  mode?: 'fast' | 'xstate',
  asyncDevice = false,
): Promise<ScenarioOutcome> {
  const specs = specsOf(s);
  const run = await runShared(specs, { def, policy, recheckNs: b.recheckNs, accessCostNs: b.accessCostNs, mode, asyncDevice });
  const violations = [...run.violations];
  if (run.stats.unsafeSwitches !== 0)
    violations.push({ t: run.endNs, property: 'safety', message: `${run.stats.unsafeSwitches} ownership changes outside a safe state` });

  // Solo equivalence (and isolation of data and DMA memory): every guest that was not cut off
  // read exactly what it reads alone on its own device, and its memory ends the same.
  const faulted = new Set(run.stats.perGuest.filter((g) => g.faulted).map((g) => g.guest));
  for (const [i, spec] of specs.entries()) {
    if (faulted.has(spec.id) || s.guests[i].hang) continue;
    const shared = run.results.get(spec.id);
    if (!shared) continue; // reported as a progress violation
    const solo = await runSolo(spec, i);
    const at = firstDifference(solo.result.seen, shared.seen);
    if (at >= 0)
      violations.push({
        t: run.endNs,
        property: 'solo-equivalence',
        message: `${spec.id} read ${show(shared.seen, at)} where alone it reads ${show(solo.result.seen, at)} (item ${at})`,
      });
    const mem = run.memories.get(spec.id)!;
    const m = firstDifference([...solo.memory], [...mem]);
    if (m >= 0) violations.push({ t: run.endNs, property: 'isolation', message: `${spec.id}'s DMA memory byte ${m} is ${mem[m]}, alone it is ${solo.memory[m]}` });
    if (shared.errors.length) violations.push({ t: run.endNs, property: 'isolation', message: `${spec.id} got refused accesses: ${shared.errors[0]}` });
  }

  const boundNs = livenessBound(specs.length, run.stats.maxUnsafeNs, b);
  violations.push(...longHolds(run, holdBound(run.stats.maxUnsafeNs, b) + b.slackNs));
  for (const w of run.waits) {
    if (faulted.has(w.guest) && w.to === Infinity) continue;
    if (w.to - w.from > boundNs)
      violations.push({
        t: w.from,
        property: 'liveness',
        message: `${w.guest} waited ${fmtMs(w.to - w.from, boundNs)} (from ${fmtMs(w.from)} to ${fmtMs(w.to)}), bound ${fmtMs(boundNs, w.to - w.from)}`,
      });
  }
  return { run, boundNs, violations };
}

export interface FairnessOutcome {
  shares: number[];
  expected: number[];
  /** Largest relative error of a share against its expected share. */
  error: number;
  jain: number;
  run: SharedRun;
}

/** Saturating guests (back-to-back block commands) for `untilNs`; device-time shares at that time. */
export async function measureFairness(weights: number[], def: MuxDefinition, policy: Policy, untilNs: number, b: Bounds = DEFAULT_BOUNDS): Promise<FairnessOutcome> {
  const specs: GuestSpec[] = weights.map((w, i) => ({
    id: `g${i}`,
    weight: w,
    priority: 0,
    deadlineNs: Infinity,
    sectors: 4,
    memSize: MEM_SIZE,
    // Enough work to outlast untilNs (a block command takes ~7-14 accesses).
    ops: generateScript({ seed: 1000 + i, commands: Math.ceil(untilNs / b.accessCostNs / 6), sectors: 3, memSize: MEM_SIZE, thinkEvery: 0, thinkNs: 0, plain: true }),
  }));
  const run = await runShared(specs, { def, policy, recheckNs: b.recheckNs, accessCostNs: b.accessCostNs, untilNs });
  const st = run.statsAtStop ?? run.stats;
  const used = specs.map((s) => st.perGuest.find((g) => g.guest === s.id)?.usedNs ?? 0);
  const total = used.reduce((a, x) => a + x, 0) || 1;
  const shares = used.map((u) => u / total);
  const wsum = weights.reduce((a, x) => a + x, 0);
  const expected = policy.fairness === 'weighted' ? weights.map((w) => w / wsum) : weights.map(() => 1 / weights.length);
  const error = Math.max(...shares.map((x, i) => Math.abs(x - expected[i]) / expected[i]));
  const jain = used.reduce((a, x) => a + x, 0) ** 2 / (used.length * used.reduce((a, x) => a + x * x, 0) || 1);
  return { shares, expected, error, jain, run };
}

/** ns as ms; with `other`, enough digits that the two do not print alike. */
export function fmtMs(ns: number, other?: number): string {
  if (ns === Infinity) return 'forever';
  const digits = other !== undefined && other !== ns && (ns / 1e6).toFixed(3) === (other / 1e6).toFixed(3) ? 6 : 3;
  return `${(ns / 1e6).toFixed(digits)} ms`;
}

function firstDifference(a: ReadonlyArray<unknown>, b: ReadonlyArray<unknown>): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function show(seen: ReadonlyArray<unknown>, at: number): string {
  const v = seen[at];
  const op = [...seen.slice(0, at + 1)].reverse().find((x) => typeof x === 'string');
  return `${v === undefined ? '(nothing)' : typeof v === 'number' ? '0x' + v.toString(16) : String(v)} during ${String(op ?? '?')}`;
}

/** The run as a readable timeline: who owned, who waited how long, what the bound was. */
export function formatTimeline(run: SharedRun, boundNs: number, maxLines = 60): string {
  const lines: string[] = [];
  const waitingSince = new Map<string, number>();
  for (const e of run.trace) {
    const t = (e.t / 1e6).toFixed(3).padStart(9);
    if (e.kind === 'stall') {
      if (!waitingSince.has(e.guest!)) {
        waitingSince.set(e.guest!, e.t);
        lines.push(`${t} ms  ${e.guest} starts waiting (device in state ${e.state})`);
      }
    } else if (e.kind === 'grant') {
      const since = waitingSince.get(e.guest!);
      waitingSince.delete(e.guest!);
      const waited = since === undefined ? '' : `, waited ${fmtMs(e.t - since, boundNs)}${e.t - since > boundNs ? ` > bound ${fmtMs(boundNs, e.t - since)}` : ''}`;
      lines.push(`${t} ms  ${e.guest} owns the device (${e.detail}${waited})`);
    } else if (e.kind === 'release') lines.push(`${t} ms  ${e.guest} releases (${e.detail})`);
    else if (e.kind === 'fault' || e.kind === 'reset' || e.kind === 'policy-error' || e.kind === 'unsafe-switch')
      lines.push(`${t} ms  ${[e.kind.toUpperCase(), e.guest, e.detail].filter(Boolean).join(' ')} [state ${e.state}]`);
  }
  for (const [g, since] of waitingSince) lines.push(`    (end)  ${g} still waiting since ${fmtMs(since)}`);
  if (lines.length > maxLines) {
    const head = lines.slice(0, maxLines / 2);
    const tail = lines.slice(-maxLines / 2);
    return [...head, `      ... ${lines.length - maxLines} more lines ...`, ...tail].join('\n');
  }
  return lines.join('\n');
}
