// Weighted fair share by device time (start-time fair queueing): each guest's virtual time is
// its device time divided by its weight; after a quantum the guest with the least virtual time
// goes next. A guest that starts waiting again after a pause is not owed the time it did not
// ask for: its virtual time is raised to the owner's.

import type { Policy, PolicyView } from '../src/mux/policy.ts';

export interface WeightedFairOptions {
  /** Device time an owner keeps before virtual times are compared (default 250 µs). */
  quantumNs?: number;
}

export default function create(options: WeightedFairOptions = {}): Policy {
  const quantumNs = options.quantumNs ?? 250_000;
  /** Virtual-time offset per guest (ns of weighted time added when it rejoined). */
  const lag = new Map<string, number>();
  /** Guests that were waiting or owning at the last pick (backlogged). */
  let backlogged = new Set<string>();
  const vtime = (id: string, usedNs: number, weight: number) => (lag.get(id) ?? 0) + usedNs / Math.max(weight, 1e-9);

  return {
    name: 'weighted-fair',
    fairness: 'weighted',
    pick(view: PolicyView): string {
      const o = view.owner;
      const ownerVt = o ? vtime(o.id, o.usedNs, o.weight) : undefined;
      const floor = ownerVt ?? Math.min(...view.waiting.map((w) => vtime(w.id, w.usedNs, w.weight)));
      for (const w of view.waiting)
        if (!backlogged.has(w.id)) {
          // Newly backlogged: start at the system's virtual time, never below.
          const vt = vtime(w.id, w.usedNs, w.weight);
          if (vt < floor) lag.set(w.id, (lag.get(w.id) ?? 0) + (floor - vt));
        }
      backlogged = new Set(view.waiting.map((w) => w.id));
      if (o) backlogged.add(o.id);
      if (o && o.heldNs < quantumNs) return o.id;
      let best = o ? o.id : view.waiting[0].id;
      let bestVt = ownerVt ?? Infinity;
      for (const w of view.waiting) {
        const vt = vtime(w.id, w.usedNs, w.weight);
        if (vt < bestVt) {
          bestVt = vt;
          best = w.id;
        }
      }
      return best;
    },
  };
}
