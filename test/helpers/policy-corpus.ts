// Runs check-policy many times in-process with random seeds (the seed is what varies between
// runs) at a reduced budget: one random scenario, no shrinking. The canonical saturated run is
// part of every check whatever the budget, which is what makes detection independent of luck.

import { checkPolicy, type CheckPolicyResult } from '../../src/check/policy-check.ts';

export const CORPUS_DIR = 'test/fixtures/broken-policies';
export const CHECKS = 200;

export interface Tally {
  /** How many checks ended with each outcome (`ok`, or the failed property). */
  outcomes: Record<string, number>;
  /** One failing report, and the seed of any check that passed. */
  sample: CheckPolicyResult | null;
  passedSeeds: number[];
}

export async function checkMany(module: string, checks = CHECKS): Promise<Tally> {
  const t: Tally = { outcomes: {}, sample: null, passedSeeds: [] };
  for (let i = 0; i < checks; i++) {
    const r = await checkPolicy(module, { runs: 1, shrink: false });
    const key = r.ok ? 'ok' : (r.failed ?? '?');
    t.outcomes[key] = (t.outcomes[key] ?? 0) + 1;
    if (r.ok) t.passedSeeds.push(r.seed ?? NaN);
    else t.sample ??= r;
  }
  return t;
}
