// `muxvisor check-policy`: the DESIGN.md properties, checked on the simulated device
// (machines/sim.ts) with scripted guests, through the real engine. Unlike the engine, which
// contains a failing policy, the check reports a throwing policy or one that returns a guest
// that is not waiting as a failure. Three phases:
//   1. the canonical saturated run (src/check/saturated.ts): every guest always busy, so
//      liveness and the declared fairness are checked by construction, whatever the seed;
//      replayed with a fresh policy, a different grant sequence is reported as non-determinism;
//   2. `runs` random scenarios (fast-check): safety, solo equivalence, isolation, liveness;
//   3. runs / 10 random saturated runs (other guest counts, weights, priorities, deadlines).

import fc from 'fast-check';
import simMachine from '../../machines/sim.ts';
import type { MuxDefinition } from '../mux/define.ts';
import { loadPolicyFactory, type Policy, type PolicyFactory } from '../mux/policy.ts';
import {
  checkScenario,
  DEFAULT_BOUNDS,
  fmtMs,
  formatTimeline,
  holdBound,
  type Bounds,
  type GuestParams,
  type Scenario,
} from './properties.ts';
import { CANONICAL, replayDifference, runSaturated, type SaturatedGuest, type SaturatedOutcome, SATURATED_WINDOW_NS } from './saturated.ts';

export interface CheckPolicyOptions {
  runs?: number;
  seed?: number;
  /** fast-check replay path (printed with a failure) to rerun exactly the failing case. */
  path?: string;
  /** Policy options handed to create(). */
  policyOptions?: Record<string, unknown>;
  bounds?: Partial<Bounds>;
  /** Fairness: virtual time of each saturated run (default 12 ms), and the largest relative share error allowed (+ one hold). */
  fairnessWindowNs?: number;
  fairnessTolerance?: number;
  /** The simulated device's MUX (default machines/sim.ts); tests hand in a broken one to see the check catch it. */
  machine?: MuxDefinition;
  /** Shrink a random scenario that fails (default true); false stops at the first failing one. */
  shrink?: boolean;
}

export interface CheckPolicyResult {
  ok: boolean;
  policy: string | null;
  fairness: string | null;
  /** The property that failed (safety, solo-equivalence, isolation, liveness, policy, progress, fairness, non-deterministic, load). */
  failed?: string;
  seed?: number;
  path?: string;
  counterexample?: unknown;
  report: string;
}

const guestArb: fc.Arbitrary<GuestParams> = fc.record({
  weight: fc.constantFrom(1, 2, 4),
  priority: fc.integer({ min: 0, max: 3 }),
  deadlineNs: fc.constantFrom(500_000, 1_000_000, 2_000_000, Infinity),
  sectors: fc.integer({ min: 1, max: 6 }),
  commands: fc.integer({ min: 1, max: 200 }),
  seed: fc.integer({ min: 0, max: 0xffff }),
  thinkEvery: fc.integer({ min: 0, max: 12 }),
  thinkNs: fc.integer({ min: 1_000, max: 500_000 }),
});

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({ guests: fc.array(guestArb, { minLength: 2, maxLength: 4 }) });

const saturatedGuestArb: fc.Arbitrary<SaturatedGuest> = fc.record({
  weight: fc.constantFrom(1, 2, 4),
  priority: fc.integer({ min: 0, max: 3 }),
  deadlineNs: fc.constantFrom(500_000, 1_000_000, 2_000_000, Infinity),
});

const NON_DETERMINISTIC =
  'replaying the same scenario with a fresh policy gave other decisions: the policy depends on something besides its view and options ' +
  '(Math.random, a clock, state shared between instances), so no failure it causes can be replayed';

class PropertyFailure extends Error {
  constructor(
    readonly property: string,
    readonly detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

/** A shell word: as is when it is plain, else in single quotes. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_/.,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line that replays a run: the module and every option given (so the replay
 * checks the same policy against the same bounds), then `extra` (--seed, --path).
 */
export function replayCommand(module: string, o: CheckPolicyOptions, extra: string[]): string {
  const args = ['muxvisor', 'check-policy', module];
  if (o.runs !== undefined) args.push('--runs', String(o.runs));
  if (o.policyOptions !== undefined) args.push('--options', JSON.stringify(o.policyOptions));
  if (o.bounds?.quantumBoundNs !== undefined) args.push('--quantum-bound-ms', String(o.bounds.quantumBoundNs / 1e6));
  if (o.bounds?.slackNs !== undefined) args.push('--slack-ms', String(o.bounds.slackNs / 1e6));
  if (o.fairnessTolerance !== undefined) args.push('--fairness-tolerance', String(o.fairnessTolerance));
  return [...args, ...extra].map(shellQuote).join(' ');
}

/** When a liveness failure comes from a quantum longer than the bound the check allows, say so. */
function quantumHint(property: string, options: Record<string, unknown> | undefined, b: Bounds): string[] {
  const q = options?.quantumNs;
  if (property !== 'liveness' || typeof q !== 'number' || !(q > b.quantumBoundNs)) return [];
  return [`note: the policy's quantumNs (${fmtMs(q)}) is longer than the quantum bound (${fmtMs(b.quantumBoundNs)}); if that is meant, give --quantum-bound-ms ${q / 1e6}`];
}

function describeScenario(s: Scenario): string {
  return s.guests
    .map(
      (g, i) =>
        `  g${i}: weight ${g.weight}, priority ${g.priority}, deadline ${g.deadlineNs === Infinity ? 'none' : fmtMs(g.deadlineNs)}, ` +
        `${g.commands} commands (script seed ${g.seed}), ${g.thinkEvery ? `thinks ${fmtMs(g.thinkNs)} every ${g.thinkEvery}` : 'never thinks'}`,
    )
    .join('\n');
}

function describeSaturated(guests: readonly SaturatedGuest[], windowNs: number): string {
  return [
    `${guests.length} guests, every one busy (back-to-back block commands) for ${fmtMs(windowNs)}:`,
    ...guests.map((g, i) => `  g${i}: weight ${g.weight}, priority ${g.priority}, deadline ${g.deadlineNs === Infinity ? 'none' : fmtMs(g.deadlineNs)}`),
  ].join('\n');
}

/** Run the property suite on a policy module (path or shipped name). Never throws for a bad policy: reports it. */
export async function checkPolicy(module: string, o: CheckPolicyOptions = {}): Promise<CheckPolicyResult> {
  const runs = o.runs ?? 50;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`runs must be a whole number >= 1, got ${runs}`);
  const bounds: Bounds = { ...DEFAULT_BOUNDS, ...o.bounds };
  const sim = o.machine ?? simMachine;
  const seed = o.seed ?? (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0;
  const tol = o.fairnessTolerance ?? 0.1;
  const windowNs = o.fairnessWindowNs ?? SATURATED_WINDOW_NS;
  let factory: PolicyFactory;
  let probe: Policy;
  try {
    factory = await loadPolicyFactory(module);
    probe = factory(o.policyOptions);
  } catch (err) {
    return { ok: false, policy: null, fairness: null, failed: 'load', report: `check-policy ${module}: FAILED to load\n${(err as Error).message}` };
  }
  const make = () => factory(o.policyOptions);
  const head = `policy "${probe.name}" (fairness: ${probe.fairness}) from ${module}`;
  const lines: string[] = [head];
  const fail = (property: string, extra: Partial<CheckPolicyResult>): CheckPolicyResult => ({
    ok: false,
    policy: probe.name,
    fairness: probe.fairness,
    failed: property,
    seed,
    ...extra,
    report: lines.join('\n'),
  });
  const saturatedFailure = (out: SaturatedOutcome, property: string, message: string, replayExtra: string[]): CheckPolicyResult => {
    lines.push(
      `FAILED: ${property} — ${message}`,
      `counterexample: ${describeSaturated(out.guests, windowNs)}`,
      ...quantumHint(property, o.policyOptions, bounds),
      'all violations in the run:',
      ...out.violations.slice(0, 8).map((v) => `  [${fmtMs(v.t)}] ${v.property}: ${v.message}`),
      'timeline (who owned, who waited how long):',
      formatTimeline(out.run, out.boundNs),
      `replay: ${replayCommand(module, o, replayExtra)}`,
    );
    return fail(property, { counterexample: out.guests });
  };

  // 1. The canonical saturated run, and its replay with a fresh policy (every decision of a
  // random pick differing by chance in both is out of reach: dozens of decisions).
  const canonical = await runSaturated(CANONICAL, sim, make(), bounds, tol, windowNs);
  const replay = await runSaturated(CANONICAL, sim, make(), bounds, tol, windowNs);
  const differs = replayDifference(canonical.run, replay.run);
  if (differs) return saturatedFailure(canonical, 'non-deterministic', `${NON_DETERMINISTIC}; ${differs}`, ['--seed', String(seed)]);
  const v0 = canonical.violations[0];
  if (v0) return saturatedFailure(canonical, v0.property, v0.message, ['--seed', String(seed)]);
  lines.push(`ok: canonical saturated run (${CANONICAL.length} guests busy for ${fmtMs(windowNs)}): liveness${probe.fairness === 'none' ? '' : `, fairness (${probe.fairness})`}, deterministic on replay`);

  // 2. Safety, solo equivalence, isolation, liveness, no policy errors.
  let lastFailing: Awaited<ReturnType<typeof checkScenario>> | null = null;
  const details = await fc.check(
    fc.asyncProperty(scenarioArb, async (s) => {
      const out = await checkScenario(s, sim, make(), bounds);
      const v = out.violations[0];
      if (v) {
        lastFailing = out;
        throw new PropertyFailure(v.property, v.message);
      }
    }),
    { numRuns: runs, seed, path: o.path, endOnFailure: o.shrink === false },
  );
  if (details.failed) {
    const s = details.counterexample![0] as Scenario;
    const again = await checkScenario(s, sim, make(), bounds);
    const err = details.errorInstance as PropertyFailure | undefined;
    let property = err instanceof PropertyFailure ? err.property : 'exception';
    let message = err instanceof PropertyFailure ? err.detail : String((details.errorInstance as Error)?.stack ?? details.errorInstance);
    const replayed = lastFailing as Awaited<ReturnType<typeof checkScenario>> | null;
    const differs = replayed ? replayDifference(replayed.run, again.run) : null;
    if (differs) {
      message = `${NON_DETERMINISTIC}; ${differs} (the run failed with ${property}: ${message})`;
      property = 'non-deterministic';
    }
    lines.push(
      `FAILED: ${property} — ${message}`,
      `counterexample (shrunk ${details.numShrinks} times, after ${details.numRuns} runs):`,
      describeScenario(s),
      `liveness bounds of this run: a hold while others wait ${fmtMs(holdBound(again.run.stats.maxUnsafeNs, bounds) + bounds.slackNs)} (= quantum bound ${fmtMs(bounds.quantumBoundNs)} + longest unsafe span ${fmtMs(again.run.stats.maxUnsafeNs)} + recheck + 2 accesses + slack ${fmtMs(bounds.slackNs)}); a wait ${fmtMs(again.boundNs)} (= (guests - 1) holds + slack)`,
      ...quantumHint(property, o.policyOptions, bounds),
      'all violations in the replay:',
      ...again.violations.slice(0, 8).map((v) => `  [${fmtMs(v.t)}] ${v.property}: ${v.message}`),
      'timeline (who owned, who waited how long):',
      formatTimeline(again.run, again.boundNs),
      `replay: ${replayCommand(module, o, ['--seed', String(details.seed), ...(details.counterexamplePath ? ['--path', details.counterexamplePath] : [])])}`,
    );
    return fail(property, { seed: details.seed, path: details.counterexamplePath ?? undefined, counterexample: s });
  }
  lines.push(`ok: safety, solo equivalence, isolation, liveness, policy errors — ${details.numRuns} scenarios (seed ${details.seed})`);

  // 3. More saturated runs: other guest counts, weights, priorities and deadlines.
  const extra = Math.floor(runs / 10);
  if (extra > 0) {
    let last: SaturatedOutcome | null = null;
    const sat = await fc.check(
      fc.asyncProperty(fc.array(saturatedGuestArb, { minLength: 2, maxLength: 4 }), async (guests) => {
        const out = await runSaturated(guests, sim, make(), bounds, tol, windowNs);
        const v = out.violations[0];
        if (v) {
          last = out;
          throw new PropertyFailure(v.property, v.message);
        }
      }),
      { numRuns: extra, seed, endOnFailure: true },
    );
    if (sat.failed) {
      const out = last as SaturatedOutcome | null;
      const err = sat.errorInstance as PropertyFailure;
      if (out) return saturatedFailure(out, err.property, err.detail, ['--seed', String(sat.seed)]);
      lines.push(`FAILED: exception — ${String((sat.errorInstance as Error)?.stack ?? sat.errorInstance)}`);
      return fail('exception', { seed: sat.seed });
    }
  }
  lines.push(`ok: ${extra + 1} saturated runs of ${fmtMs(windowNs)}: liveness${probe.fairness === 'none' ? '' : `, fairness (${probe.fairness}), share error <= ${tol} + one hold`}`);
  if (probe.fairness === 'none') lines.push('fairness: none declared, not checked');
  return { ok: true, policy: probe.name, fairness: probe.fairness, seed, report: lines.join('\n') };
}
