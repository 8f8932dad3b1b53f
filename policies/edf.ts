// Earliest deadline first: a waiting guest's absolute deadline is when it started waiting plus
// its relative deadline (GuestLink.deadlineNs; `defaultDeadlineNs` when it has none). After the
// owner's quantum, or at once when a waiter's deadline has come, the waiter with the earliest
// deadline goes next.

import type { Policy, PolicyView } from '../src/mux/policy.ts';
import { durationNs, policyOptions, positiveNs } from '../src/mux/policy-options.ts';

export interface EdfOptions {
  quantumNs?: number;
  /** Relative deadline of guests without one (default 2 ms), so they are served too. */
  defaultDeadlineNs?: number;
}

export default function create(options: EdfOptions = {}): Policy {
  const opts = policyOptions('edf', { quantumNs: durationNs.optional(), defaultDeadlineNs: positiveNs.optional() }, options);
  const quantumNs = opts.quantumNs ?? 500_000;
  const fallback = opts.defaultDeadlineNs ?? 2_000_000;
  return {
    name: 'edf',
    fairness: 'none',
    pick(view: PolicyView): string {
      let best = view.waiting[0];
      let bestDue = Infinity;
      for (const w of view.waiting) {
        const rel = Number.isFinite(w.deadlineNs) ? w.deadlineNs : fallback;
        const due = view.now - w.waitedNs + rel;
        if (due < bestDue) {
          bestDue = due;
          best = w;
        }
      }
      const o = view.owner;
      if (o && o.heldNs < quantumNs && bestDue > view.now) return o.id;
      return best.id;
    },
  };
}
