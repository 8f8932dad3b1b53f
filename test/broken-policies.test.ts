// check-policy catches each kind of broken policy in test/fixtures/broken-policies every time:
// 200 checks of each with random seeds, every one rejected, with the property that names the
// fault (a policy whose replay differs is reported as non-deterministic).

import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHECKS, CORPUS_DIR, checkMany } from './helpers/policy-corpus.ts';

/** Each broken policy and what check-policy must call its fault. */
export const CORPUS: Record<string, string> = {
  'favours-first.ts': 'fairness', // equal fairness declared, one guest gets three quanta
  'ignores-weights.ts': 'fairness', // weighted fairness declared, plain round-robin
  'weights-inverted.ts': 'fairness', // weighted, the wrong way round
  'starves-last.ts': 'liveness', // the highest id waits for ever
  'never-preempts.ts': 'liveness', // the owner keeps the device
  'strict-priority.ts': 'liveness', // no aging: low priorities starve
  'parity-flip.ts': 'liveness', // the quantum flips between 250 µs and 5 ms
  'stateful-drift.ts': 'liveness', // its accounting drifts the wrong way
  'not-waiting.ts': 'policy', // returns a guest that is not waiting
  'throws-sometimes.ts': 'policy', // every seventh decision throws
  'returns-undefined.ts': 'policy', // falls off the end of pick()
  'math-random.ts': 'non-deterministic', // Math.random without a seed
  'module-state.ts': 'non-deterministic', // state shared by every instance
};

describe(`check-policy rejects every broken policy in ${CHECKS} of ${CHECKS} checks`, () => {
  it('the corpus is the folder: ten kinds of wrong or more, each with its expected report', () => {
    expect(readdirSync(CORPUS_DIR).sort()).toEqual(Object.keys(CORPUS).sort());
    expect(Object.keys(CORPUS).length).toBeGreaterThanOrEqual(10);
  });

  for (const [file, property] of Object.entries(CORPUS))
    it(`${file}: ${property}`, async () => {
      const t = await checkMany(`${CORPUS_DIR}/${file}`);
      expect(t.passedSeeds, `passed with seeds ${t.passedSeeds.join(', ')}`).toEqual([]);
      expect(t.outcomes).toEqual({ [property]: CHECKS });
      expect(t.sample!.report).toMatch(new RegExp(`^FAILED: ${property} — `, 'm')); // failed, so a sample exists
      expect(t.sample!.report).toMatch(/owns the device/); // the timeline
      expect(t.sample!.report).toMatch(/^replay: muxvisor check-policy \S+ (--runs 1 )?--seed -?\d+/m);
      if (property === 'non-deterministic') expect(t.sample!.report).toMatch(/replaying the same scenario with a fresh policy gave other decisions: .*grant #\d+ was/);
    }, 120_000);

  it('the CLI says non-deterministic, exit 1, in text and JSON', () => {
    const cli = (...a: string[]) => spawnSync(process.execPath, ['src/bin/muxvisor.mjs', ...a], { encoding: 'utf8' });
    const text = cli('check-policy', `${CORPUS_DIR}/math-random.ts`);
    expect(text.status, text.stderr).toBe(1);
    expect(text.stdout).toMatch(/^FAILED: non-deterministic — replaying the same scenario with a fresh policy gave other decisions/m);
    const json = cli('--json', 'check-policy', `${CORPUS_DIR}/module-state.ts`);
    expect(json.status, json.stderr).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, policy: 'module-state', failed: 'non-deterministic' });
  }, 60_000);
});
