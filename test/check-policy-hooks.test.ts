// A policy whose accounting hooks (onGrant/onRelease) throw is caught by check-policy like a
// pick that throws: the engine contains it, the property suite reports it.
import { describe, expect, it } from 'vitest';
import { checkPolicy } from '../src/check/policy-check.ts';

describe('check-policy: throwing hooks', () => {
  it('reports a policy whose onRelease throws', async () => {
    const r = await checkPolicy('test/fixtures/policies/hook-throws.ts', { runs: 10, seed: 3 });
    expect(r.ok).toBe(false);
    expect(r.failed).toBe('policy');
    expect(r.report).toMatch(/onRelease\("g\d"\) threw: release accounting for g\d not implemented/);
    expect(r.report).toMatch(/replay: muxvisor check-policy/);
  });
});
