// Weighted fair share by device time (start-time fair queueing): each guest's virtual time is
// its device time divided by its weight; after a quantum, the guest with the least virtual
// time goes next. A guest that comes back after a pause (absent longer than a quantum) is not
// owed the time it did not ask for: its virtual time is raised to the least among the others.

import type { Policy, PolicyView } from '../src/mux/policy.ts';
import { durationNs, policyOptions } from '../src/mux/policy-options.ts';

export interface WeightedFairOptions {
  /** Device time an owner keeps before virtual times are compared (default 250 µs). */
  quantumNs?: number;
}

export default function create(options: WeightedFairOptions = {}): Policy {
  const quantumNs = policyOptions('weighted-fair', { quantumNs: durationNs.optional() }, options).quantumNs ?? 250_000;
  /** Virtual-time offset per guest (weighted ns added when it came back after a pause). */
  const lag = new Map<string, number>();
  /** When each guest was last seen waiting or owning. */
  const lastSeen = new Map<string, number>();
  const vtime = (id: string, usedNs: number, weight: number) => (lag.get(id) ?? 0) + usedNs / Math.max(weight, 1e-9);

  return {
    name: 'weighted-fair',
    fairness: 'weighted',
    pick(view: PolicyView): string {
      const o = view.owner;
      const present = [...view.waiting.map((w) => ({ id: w.id, vt: vtime(w.id, w.usedNs, w.weight) }))];
      if (o) present.push({ id: o.id, vt: vtime(o.id, o.usedNs, o.weight) });
      for (const p of present) {
        const seen = lastSeen.get(p.id);
        if (seen === undefined || view.now - seen > quantumNs) {
          // Back after a pause (or new): start at the least virtual time of the others, never below.
          const others = present.filter((q) => q.id !== p.id).map((q) => q.vt);
          const floor = others.length ? Math.min(...others) : p.vt;
          if (p.vt < floor) {
            lag.set(p.id, (lag.get(p.id) ?? 0) + (floor - p.vt));
            p.vt = floor;
          }
        }
        lastSeen.set(p.id, view.now);
      }
      if (o && o.heldNs < quantumNs) return o.id;
      let best = present[0];
      for (const p of present) if (p.vt < best.vt) best = p;
      return best.id;
    },
  };
}
