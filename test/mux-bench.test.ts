// The bench modules report what they promise. No timing is asserted: the fairness figures are
// computed in virtual time (deterministic); the decision cost is only checked to be a number.
import { describe, expect, it } from 'vitest';
import { collect } from '../src/cli/bench.ts';

describe('mux and fairness bench figures', () => {
  it('reports decision cost (fast and xstate) and fairness on target', async () => {
    const f = await collect({ quick: true, only: ['mux', 'fairness'] });
    expect(Object.keys(f).filter((k) => k.endsWith('.error'))).toEqual([]);
    const d = f['mux.decisionNs'] as { fast: number; xstate: number };
    expect(d.fast).toBeGreaterThan(0);
    expect(d.xstate).toBeGreaterThan(0);
    expect(f['mux.accessNs']).toBeGreaterThan(0);
    expect(f['fairness.jainEqual']).toBeGreaterThanOrEqual(0.99);
    expect(f['fairness.weightedShareError']).toBeLessThanOrEqual(0.02);
  });
});
