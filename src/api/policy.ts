// `muxvisor/policy`: the policy contract (what a policy module default-exports) and the
// views it decides from, with the options helpers the shipped policies use.

export type { Fairness, OwnerView, Policy, PolicyFactory, PolicyView, WaiterView } from '../mux/policy.ts';
export { validatePolicy, PolicyLoadError } from '../mux/policy.ts';
export { policyOptions, durationNs, positiveNs, PolicyOptionsError } from '../mux/policy-options.ts';
