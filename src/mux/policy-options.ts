// Options of the shipped policies, checked when a policy is created: a config's
// `policy.options` with a typo or a wrong type is an error naming the option, not a policy
// that silently runs on its defaults.

import { z } from 'zod';

/** A policy's options were wrong: `message` names the option and what was expected. */
export class PolicyOptionsError extends Error {
  constructor(policy: string, message: string) {
    super(`policy ${policy}: options${message}`);
    this.name = 'PolicyOptionsError';
  }
}

/** A duration in ns: a number >= 0 (0 = no quantum: switch at every safe state). */
export const durationNs = z.number().finite().nonnegative();
/** A duration in ns that divides or bounds something: > 0. */
export const positiveNs = z.number().finite().positive();

/** Parse `options` against `shape` (unknown keys refused); throws PolicyOptionsError. */
export function policyOptions<S extends z.ZodRawShape>(policy: string, shape: S, options: unknown): z.infer<z.ZodObject<S>> {
  const r = z.strictObject(shape).safeParse(options ?? {});
  if (r.success) return r.data as z.infer<z.ZodObject<S>>;
  const issue = r.error.issues[0];
  const path = issue.path.map((p) => `.${String(p)}`).join('');
  const known = Object.keys(shape).join(', ');
  const what = issue.code === 'unrecognized_keys' ? `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (known: ${known})` : issue.message;
  throw new PolicyOptionsError(policy, `${path}: ${what}`);
}
