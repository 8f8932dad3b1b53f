// The policies that ship in policies/, by name: what a config's `policy.name` may say and
// what `muxvisor list policies` prints. Knows names and files only; loading a policy is
// src/mux/policy.ts's concern.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Policies shipped in policies/, by name. */
export const SHIPPED_POLICIES = ['round-robin', 'weighted-fair', 'priority', 'edf'] as const;

/** Whether `name` is a shipped policy's name. */
export function isShippedPolicy(name: string): boolean {
  return (SHIPPED_POLICIES as readonly string[]).includes(name);
}

/** What a config's `policy.name` that is no shipped policy is told (a name is never a path). */
export function unknownPolicyMessage(name: string): string {
  return `unknown policy "${name}"; shipped: ${SHIPPED_POLICIES.join(', ')} (a policy file is given as {"module": "path"})`;
}

/** The file URL of the shipped policy `name` (check isShippedPolicy first). */
export function shippedPolicyUrl(name: string): string {
  const ts = new URL(`../../policies/${name}.ts`, import.meta.url);
  // The compiled copy in dist/ has policies/<name>.js only (plain Node cannot load .ts).
  return existsSync(fileURLToPath(ts)) ? ts.href : new URL(`../../policies/${name}.js`, import.meta.url).href;
}
