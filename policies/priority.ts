// Strict priority with aging: a waiting guest with a higher priority (larger number) takes the
// device at the next safe state; among the rest, after the owner's quantum, the guest with the
// highest effective priority goes next, where waiting raises a guest's priority by one level
// per `agingNs` so that a low-priority guest is not starved.

import type { Policy, PolicyView } from '../src/mux/policy.ts';
import { durationNs, policyOptions, positiveNs } from '../src/mux/policy-options.ts';

export interface PriorityOptions {
  /** Waiting time that raises a guest's effective priority by one (default 250 µs). */
  agingNs?: number;
  quantumNs?: number;
}

export default function create(options: PriorityOptions = {}): Policy {
  const opts = policyOptions('priority', { agingNs: positiveNs.optional(), quantumNs: durationNs.optional() }, options);
  const agingNs = opts.agingNs ?? 250_000;
  const quantumNs = opts.quantumNs ?? 500_000;
  return {
    name: 'priority',
    fairness: 'none',
    pick(view: PolicyView): string {
      let best = view.waiting[0];
      let bestEff = -Infinity;
      for (const w of view.waiting) {
        const eff = w.priority + w.waitedNs / agingNs;
        if (eff > bestEff) {
          bestEff = eff;
          best = w;
        }
      }
      const o = view.owner;
      if (!o) return best.id;
      // Strictly higher base priority preempts at once; otherwise the owner keeps its quantum.
      if (view.waiting.some((w) => w.priority > o.priority) && o.heldNs > 0) {
        const top = view.waiting.reduce((a, w) => (w.priority > a.priority || (w.priority === a.priority && w.waitedNs > a.waitedNs) ? w : a));
        return top.id;
      }
      if (o.heldNs < quantumNs) return o.id;
      return bestEff >= o.priority ? best.id : o.id;
    },
  };
}
