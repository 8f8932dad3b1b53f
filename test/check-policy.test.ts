// `muxvisor check-policy` catches the bad policies in test/fixtures/policies (exit 1 with a
// shrunk counterexample, a timeline and a replay seed) and the replay reproduces the failure.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import sim from '../machines/sim.ts';
import { checkPolicy, replayCommand, shellQuote } from '../src/check/policy-check.ts';

const FIX = 'test/fixtures/policies';

describe('check-policy catches bad policies', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['lowest-id.ts', 'liveness', /g\d (waited [\d.]+ ms .* bound|kept the device [\d.]+ ms .* while g\d waited, hold bound) [\d.]+ ms/],
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

  it('reports a solo equivalence failure under its own name, not as isolation', async () => {
    // A MUX that forgets the context registers on a switch: a guest reads another's settings.
    const r = await checkPolicy('round-robin', { machine: { ...sim, context: [] }, runs: 20, seed: 1 });
    expect(r.ok).toBe(false);
    expect(r.failed).toBe('solo-equivalence');
    expect(r.report).toMatch(/FAILED: solo-equivalence — g\d read .* where alone it reads /);
  });

  it('reports a pick that returns a Promise as such', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvpol-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'async-pick.mjs');
    writeFileSync(file, "export default () => ({ name: 'async-pick', fairness: 'none', async pick(view) { return view.waiting[0].id; } });\n");
    const r = await checkPolicy(file, { runs: 5, seed: 1 });
    expect(r).toMatchObject({ ok: false, failed: 'policy' });
    expect(r.report).toMatch(/FAILED: policy — pick must return a guest id synchronously, got a Promise/);
    expect(r.report).not.toMatch(/pick threw|pick returned \{\}/);
  });

  it('rejects fewer than one run, or a fraction, instead of passing with 0 scenarios', async () => {
    await expect(checkPolicy('round-robin', { runs: 0 })).rejects.toThrow(/runs must be a whole number >= 1/);
    for (const [runs, message] of [['0', 'whole number >= 1, got "0"'], ['-3', 'whole number >= 1, got "-3"'], ['2.5', 'whole number, got "2.5"'], ['many', 'whole number, got "many"']]) {
      const out = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', 'check-policy', 'round-robin', '--runs', runs], { encoding: 'utf8' });
      expect(out.status, runs).not.toBe(0);
      expect(out.stderr).toContain(`--runs must be a ${message}`);
      expect(out.stdout).not.toMatch(/ok:/);
    }
  });

  it('the replay line repeats every option given, shell-quoted, and replays the failure verbatim', () => {
    const args = ['check-policy', 'round-robin', '--options', '{"quantumNs":4000000}', '--seed', '5', '--slack-ms', '3', '--fairness-tolerance', '0.2'];
    const out = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', ...args], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(1);
    expect(out.stdout).toMatch(/FAILED: liveness/);
    expect(out.stdout).toMatch(/note: the policy's quantumNs \(4\.000 ms\) is longer than the quantum bound/);
    const replay = out.stdout.match(/^replay: (.*)$/m)![1];
    expect(replay).toMatch(/^muxvisor check-policy round-robin --options '\{"quantumNs":4000000\}' --slack-ms 3 --fairness-tolerance 0\.2 --seed 5( --path [\d:]+)?$/);
    // Run it as printed, through a shell.
    const again = spawnSync('sh', ['-c', replay.replace(/^muxvisor /, `"${process.execPath}" src/bin/muxvisor.mjs `)], { encoding: 'utf8' });
    expect(again.status, again.stderr).toBe(1);
    expect(again.stdout).toMatch(/FAILED: liveness/);
    // With the bound the options need, the same seed passes.
    const bounded = spawnSync(process.execPath, ['src/bin/muxvisor.mjs', ...args, '--quantum-bound-ms', '4', '--runs', '10'], { encoding: 'utf8' });
    expect(bounded.status, bounded.stdout).toBe(0);
  });

  it('replayCommand names every option and quotes what the shell would split', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('plain/path.ts')).toBe('plain/path.ts');
    const line = replayCommand('my policies/p.ts', { runs: 7, policyOptions: { a: 'x y' }, bounds: { quantumBoundNs: 2_500_000, slackNs: 1e6 }, fairnessTolerance: 0.05 }, ['--seed', '-4']);
    expect(line).toBe(`muxvisor check-policy 'my policies/p.ts' --runs 7 --options '{"a":"x y"}' --quantum-bound-ms 2.5 --slack-ms 1 --fairness-tolerance 0.05 --seed -4`);
  });
});
