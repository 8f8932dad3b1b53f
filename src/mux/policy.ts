// The policy contract: what a module in policies/ (or a user's file) default-exports.
//
//   export default function create(options?) {
//     return { name: 'mine', fairness: 'equal', pick(view) { return view.waiting[0].id; } };
//   }
//
// `pick` is called only in a safe state with at least one guest waiting. It returns a waiting
// guest's id (that guest gets the device next) or the owner's id (the owner goes on; the
// engine asks again after the owner's next access or after its recheck interval).
// A policy never reads a clock: `view.now` is the engine's injected time in ns.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isShippedPolicy, shippedPolicyUrl } from '../catalog/policies.ts';
import { defaultExport, importUserModule } from '../util/import-module.ts';

export type Fairness = 'equal' | 'weighted' | 'none';

export interface OwnerView {
  id: string;
  weight: number;
  priority: number;
  /** Relative deadline (ns); Infinity when none. */
  deadlineNs: number;
  /** Device time used so far in total, including the current hold. */
  usedNs: number;
  /** Time since this owner was granted the device. */
  heldNs: number;
}

export interface WaiterView {
  id: string;
  weight: number;
  priority: number;
  deadlineNs: number;
  /** Time since this guest started waiting. */
  waitedNs: number;
  /** Device time used so far in total. */
  usedNs: number;
}

/** What pick() sees; valid during that call (the engine refills the objects for the next one). */
export interface PolicyView {
  now: number;
  /** null when the device is free. */
  owner: OwnerView | null;
  /** Waiting guests, longest-waiting first. Never empty when pick() is called. */
  waiting: WaiterView[];
}

export interface Policy {
  name: string;
  /** What the property suite checks: equal shares, shares by weight, or nothing. */
  fairness: Fairness;
  pick(view: PolicyView): string;
  onGrant?(id: string, now: number): void;
  /** `usedNs` is the device time of the hold that just ended. */
  onRelease?(id: string, now: number, usedNs: number): void;
}

export type PolicyFactory = (options?: Record<string, unknown>) => Policy;

export class PolicyLoadError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`policy ${source}: ${message}`);
    this.name = 'PolicyLoadError';
  }
}

export { SHIPPED_POLICIES } from '../catalog/policies.ts';

const FAIRNESS: readonly string[] = ['equal', 'weighted', 'none'];

/** Check that a value is a Policy; throws PolicyLoadError naming what is wrong. */
export function validatePolicy(p: unknown, source: string): Policy {
  const pol = p as Partial<Policy> | null;
  if (!pol || typeof pol !== 'object') throw new PolicyLoadError(source, 'create() did not return an object');
  if (typeof pol.name !== 'string' || !pol.name) throw new PolicyLoadError(source, 'policy.name must be a non-empty string');
  if (!FAIRNESS.includes(pol.fairness as string))
    throw new PolicyLoadError(source, `policy.fairness must be one of ${FAIRNESS.join(', ')} (got ${String(pol.fairness)})`);
  if (typeof pol.pick !== 'function') throw new PolicyLoadError(source, 'policy.pick must be a function');
  for (const hook of ['onGrant', 'onRelease'] as const)
    if (pol[hook] !== undefined && typeof pol[hook] !== 'function') throw new PolicyLoadError(source, `policy.${hook} must be a function`);
  return pol as Policy;
}

/** Where a policy name or path points: a shipped name -> policies/<name>.ts, else a path (relative to cwd). */
export function policyUrl(nameOrPath: string): string {
  if (isShippedPolicy(nameOrPath)) return shippedPolicyUrl(nameOrPath);
  return pathToFileURL(resolve(nameOrPath)).href;
}

/**
 * A config's `policy` for a name or a path given on a command line: a path (a slash or a
 * module extension) is a module, anything else a name (checked against the shipped ones).
 */
export function policyConfigOf(nameOrPath: string): { name: string } | { module: string } {
  const isPath = /[\\/]/.test(nameOrPath) || /\.(m|c)?[jt]s$/.test(nameOrPath);
  return isPath ? { module: resolve(nameOrPath) } : { name: nameOrPath };
}

/** Load a policy module's factory (its default export `create`). */
export async function loadPolicyFactory(nameOrPath: string): Promise<PolicyFactory> {
  let mod: { default?: unknown };
  try {
    mod = await importUserModule(policyUrl(nameOrPath));
  } catch (err) {
    throw new PolicyLoadError(nameOrPath, `cannot load module: ${(err as Error).message}`);
  }
  const exported = defaultExport(mod);
  const create = typeof exported === 'function' ? (exported as PolicyFactory) : null;
  if (!create)
    throw new PolicyLoadError(nameOrPath, 'the module must default-export a function create(options?) => policy');
  return (options) => validatePolicy(create(options), nameOrPath);
}

/** Load and create a policy: `loadPolicy('round-robin', { quantumNs: 1e6 })` or a path to a .ts/.js/.mjs module. */
export async function loadPolicy(nameOrPath: string, options?: Record<string, unknown>): Promise<Policy> {
  return (await loadPolicyFactory(nameOrPath))(options);
}
