// Round-robin with a quantum: the owner keeps the device until it has held it for `quantumNs`
// while others wait; then the guest that has waited longest goes next. Weights are ignored:
// every guest gets an equal share.

import type { Policy, PolicyView } from '../src/mux/policy.ts';
import { durationNs, policyOptions } from '../src/mux/policy-options.ts';

export interface RoundRobinOptions {
  /** Device time an owner may keep while others wait (default 500 µs). */
  quantumNs?: number;
}

export default function create(options: RoundRobinOptions = {}): Policy {
  const quantumNs = policyOptions('round-robin', { quantumNs: durationNs.optional() }, options).quantumNs ?? 500_000;
  return {
    name: 'round-robin',
    fairness: 'equal',
    pick(view: PolicyView): string {
      if (view.owner && view.owner.heldNs < quantumNs) return view.owner.id;
      // `waiting` is longest-waiting first: taking the head is round-robin order.
      return view.waiting[0].id;
    },
  };
}
