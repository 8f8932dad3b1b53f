// `muxvisor check-policy` catches the bad policies in test/fixtures/policies (exit 1 with a
// shrunk counterexample, a timeline and a replay seed) and the replay reproduces the failure.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkPolicy } from '../src/check/policy-check.ts';

const FIX = 'test/fixtures/policies';

describe('check-policy catches bad policies', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['lowest-id.ts', 'liveness', /g\d waited [\d.]+ ms .* bound [\d.]+ ms/],
    ['ignores-weights.ts', 'fairness', /device-time shares .* expected .*\(weighted\)/],
    ['throws.ts', 'policy', /pick threw: three-way contention not implemented/],
    ['not-waiting.ts', 'policy', /pick returned "g\d", which is neither the owner nor waiting/],
  ];
  for (const [file, property, message] of cases)
    it(`${file}: ${property}`, async () => {
      const r = await checkPolicy(`${FIX}/${file}`, { runs: 30, seed: 7 });
      expect(r.ok).toBe(false);
      expect(r.failed).toBe(property);
      expect(r.report).toMatch(message);
      expect(r.report).toMatch(/counterexample/);
      expect(r.report).toMatch(/owns the device/); // the timeline
      expect(r.report).toMatch(/replay: muxvisor check-policy .* --seed -?\d+/);
    });

  it('replays a reported failure from its seed and path', async () => {
    const first = await checkPolicy(`${FIX}/lowest-id.ts`, { runs: 30, seed: 11 });
    expect(first.ok).toBe(false);
    const again = await checkPolicy(`${FIX}/lowest-id.ts`, { runs: 30, seed: first.seed, path: first.path });
    expect(again.failed).toBe('liveness');
    expect(again.counterexample).toEqual(first.counterexample);
  });

  it('reports a module that is not a policy', async () => {
    const r = await checkPolicy(`${FIX}/bad-shape.ts`);
    expect(r).toMatchObject({ ok: false, failed: 'load' });
    expect(r.report).toMatch(/fairness must be one of/);
  });

  it('exits 1 with the counterexample from the CLI', () => {
    const out = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', 'check-policy', `${FIX}/lowest-id.ts`, '--runs', '20', '--seed', '3'], { encoding: 'utf8' });
    expect(out.status).toBe(1);
    expect(out.stdout).toMatch(/FAILED: liveness/);
    expect(out.stdout).toMatch(/--seed/);
  });

  it('exits 0 for a shipped policy from the CLI (--json)', () => {
    const out = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', '--json', 'check-policy', 'round-robin', '--runs', '5'], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true, policy: 'round-robin', fairness: 'equal' });
  });
});
