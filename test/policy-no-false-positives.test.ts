// The shipped policies pass check-policy in 200 of 200 checks with random seeds: the saturated
// runs that catch the broken corpus (test/broken-policies.test.ts) do not reject a good policy.

import { describe, expect, it } from 'vitest';
import { SHIPPED_POLICIES } from '../src/catalog/policies.ts';
import { CHECKS, checkMany } from './helpers/policy-corpus.ts';

describe(`shipped policies pass ${CHECKS} of ${CHECKS} checks`, () => {
  for (const name of SHIPPED_POLICIES)
    it(name, async () => {
      const t = await checkMany(name);
      expect(t.outcomes, t.sample?.report).toEqual({ ok: CHECKS });
    }, 120_000);
});
