// Scale: 1, 16, 64, 256 and 1024 scripted guests on one disk through the MUX (round-robin),
// each count for a fixed window (10 s; --quick 2 s). Per count:
//  - scale.aggregateMBps.N: bytes all guests moved in the window, per second;
//  - scale.efficiency.N: that over the aggregate of one guest (target >= 0.8);
//  - scale.jain.N: Jain's index of the service each guest got, the bytes it moved in the window
//    (target >= 0.99; transfers are 1 to 16 sectors at random, so with few operations per
//    guest it is spread even when every guest gets the same turns); scale.jainDeviceTime.N:
//    the same over the device time each held (a hold that waits on a slow file read counts);
//  - scale.unserved.N: guests that finished no operation in the window (target 0);
//  - scale.longestWaitMs.N: the longest any guest access waited for its answer, against
//    scale.livenessBoundMs.N: N-1 other guests ahead, each holding the device at most a
//    quantum plus a recheck interval plus the longest unsafe span the run measured;
//  - scale.cpuMsPerMB.N: CPU time of the process per MB moved (steadier than throughput when
//    the machine is shared: what each guest more costs);
//  - scale.rssMiB.N: process RSS at the end of the window (supervisor, MUX, device and the
//    in-process guests), and scale.rssPerGuestMiB: its growth per guest from the smallest to
//    the largest count (memory linear in guests: a constant).
//  - scale.ownerAccessNs.N: the engine alone (simulated device, no I/O): one owner access
//    while N-1 guests wait; flat when no decision walks the waiting guests.
// A guest whose workload did not verify, or an unsafe switch, is scale.error.

import { ownerAccessNs } from './scale/engine-cost.ts';
import { jainIndex, runScale, type ScaleRunResult } from './scale/scenario.ts';

export const GUEST_COUNTS = [1, 16, 64, 256, 1024];
/** round-robin's default quantum and the engine's default recheck interval (ns). */
const QUANTUM_NS = 500_000;
const RECHECK_NS = 500_000;

export interface ScaleBenchOptions {
  quick: boolean;
  /** Window per guest count (s); default 10, 2 with quick. */
  seconds?: number;
  guests?: number[];
  /** A short unmeasured run first, so the first count does not pay for the JIT (default true). */
  warmup?: boolean;
}

/** The figures of one run, keyed by guest count. */
export function figuresOf(runs: Map<number, ScaleRunResult>): Record<string, unknown> {
  const per = (f: (r: ScaleRunResult, n: number) => number): Record<string, number> =>
    Object.fromEntries([...runs].map(([n, r]) => [String(n), f(r, n)]));
  const round = (x: number, d: number): number => Number(x.toFixed(d));
  const aggregate = (r: ScaleRunResult): number => r.guests.reduce((a, g) => a + g.bytes, 0) / 1e6 / r.seconds;
  const one = runs.get(Math.min(...runs.keys()));
  const figures: Record<string, unknown> = {
    'scale.guests': [...runs.keys()],
    'scale.windowMs': per((r) => Math.round(r.seconds * 1000)),
    'scale.aggregateMBps': per((r) => round(aggregate(r), 2)),
    'scale.efficiency': per((r) => round(one ? aggregate(r) / aggregate(one) : NaN, 3)),
    'scale.jain': per((r) => round(jainIndex(r.guests.map((g) => g.bytes)), 4)),
    'scale.jainDeviceTime': per((r) => round(jainIndex(r.guests.map((g) => g.deviceMs)), 4)),
    'scale.cpuMsPerMB': per((r) => round(r.cpuMs / (r.guests.reduce((a, g) => a + g.bytes, 0) / 1e6), 1)),
    'scale.unserved': per((r) => r.guests.filter((g) => g.ops === 0).length),
    'scale.longestWaitMs': per((r) => round(Math.max(...r.guests.map((g) => g.longestWaitMs)), 2)),
    'scale.livenessBoundMs': per((r, n) => round((Math.max(1, n - 1) * (QUANTUM_NS + RECHECK_NS + r.maxUnsafeNs)) / 1e6, 2)),
    'scale.rssMiB': per((r) => round(r.rssMiB, 1)),
  };
  const counts = [...runs.keys()].sort((a, b) => a - b);
  if (counts.length > 1) {
    const lo = runs.get(counts[0])!; // both keys are in the map
    const hi = runs.get(counts[counts.length - 1])!;
    figures['scale.rssPerGuestMiB'] = round((hi.rssMiB - lo.rssMiB) / (counts[counts.length - 1] - counts[0]), 4);
  }
  const problems: string[] = [];
  for (const [n, r] of runs) {
    const bad = r.guests.filter((g) => !g.verified);
    if (bad.length) problems.push(`${n} guests: ${bad.length} did not verify (${bad[0].firstError ?? bad[0].guest})`);
    if (r.unsafeSwitches) problems.push(`${n} guests: ${r.unsafeSwitches} unsafe switches`);
  }
  if (problems.length) figures['scale.error'] = problems.join('; ');
  return figures;
}

export async function run(opts: ScaleBenchOptions): Promise<Record<string, unknown>> {
  const seconds = opts.seconds ?? (opts.quick ? 2 : 10);
  const counts = opts.guests ?? GUEST_COUNTS;
  if (opts.warmup ?? true) await runScale({ guests: 4, seconds: Math.min(1, seconds) });
  const runs = new Map<number, ScaleRunResult>();
  for (const guests of counts) runs.set(guests, await runScale({ guests, seconds }));
  const cost = Object.fromEntries(counts.map((n) => [String(n), Math.round(ownerAccessNs(n, opts.quick ? 5_000 : 20_000))]));
  return { ...figuresOf(runs), 'scale.ownerAccessNs': cost };
}
