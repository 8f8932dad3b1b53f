// Fairness of the shipped policies on the simulated device, in virtual time, through the
// real engine: 4 equal-weight guests saturating the device with round-robin (Jain's index of
// device-time shares), and weights 1:2:4 with the weighted policy (largest relative error of
// a share against weight / sum of weights).

import sim from '../../machines/sim.ts';
import roundRobin from '../../policies/round-robin.ts';
import weightedFair from '../../policies/weighted-fair.ts';
import { measureFairness } from '../check/properties.ts';

export async function run(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const windowNs = opts.quick ? 100_000_000 : 400_000_000;
  const equal = await measureFairness([1, 1, 1, 1], sim, roundRobin(), windowNs);
  const weighted = await measureFairness([1, 2, 4], sim, weightedFair(), windowNs);
  const r = (x: number) => Math.round(x * 10_000) / 10_000;
  return {
    'fairness.jainEqual': r(equal.jain),
    'fairness.weightedShareError': r(weighted.error),
    'fairness.weightedShares': weighted.shares.map(r),
    'fairness.windowMs': windowNs / 1e6,
  };
}
