// `muxvisor check-policy`: the DESIGN.md properties, checked with fast-check on the simulated
// device (machines/sim.ts) with scripted guests, through the real engine. Unlike the engine,
// which contains a failing policy, the check reports a throwing policy or one that returns a
// guest that is not waiting as a failure.

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
  measureFairness,
  type Bounds,
  type GuestParams,
  type Scenario,
} from './properties.ts';

export interface CheckPolicyOptions {
  runs?: number;
  seed?: number;
  /** fast-check replay path (printed with a failure) to rerun exactly the failing case. */
  path?: string;
  /** Policy options handed to create(). */
  policyOptions?: Record<string, unknown>;
  bounds?: Partial<Bounds>;
  /** Fairness: virtual time of each saturating run, and the largest relative share error allowed. */
  fairnessWindowNs?: number;
  fairnessTolerance?: number;
  /** The simulated device's MUX (default machines/sim.ts); tests hand in a broken one to see the check catch it. */
  machine?: MuxDefinition;
}

export interface CheckPolicyResult {
  ok: boolean;
  policy: string | null;
  fairness: string | null;
  /** The property that failed (safety, solo-equivalence, isolation, liveness, policy, progress, fairness, load). */
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

/** Run the property suite on a policy module (path or shipped name). Never throws for a bad policy: reports it. */
export async function checkPolicy(module: string, o: CheckPolicyOptions = {}): Promise<CheckPolicyResult> {
  const runs = o.runs ?? 50;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`runs must be a whole number >= 1, got ${runs}`);
  const bounds: Bounds = { ...DEFAULT_BOUNDS, ...o.bounds };
  const sim = o.machine ?? simMachine;
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

  // 1. Safety, solo equivalence, isolation, liveness, no policy errors.
  const details = await fc.check(
    fc.asyncProperty(scenarioArb, async (s) => {
      const out = await checkScenario(s, sim, make(), bounds);
      const v = out.violations[0];
      if (v) throw new PropertyFailure(v.property, v.message);
    }),
    { numRuns: runs, seed: o.seed, path: o.path, endOnFailure: false },
  );
  if (details.failed) {
    const s = details.counterexample![0] as Scenario;
    const again = await checkScenario(s, sim, make(), bounds);
    const err = details.errorInstance as PropertyFailure | undefined;
    const property = err instanceof PropertyFailure ? err.property : 'exception';
    const message = err instanceof PropertyFailure ? err.detail : String((details.errorInstance as Error)?.stack ?? details.errorInstance);
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
    return {
      ok: false,
      policy: probe.name,
      fairness: probe.fairness,
      failed: property,
      seed: details.seed,
      path: details.counterexamplePath ?? undefined,
      counterexample: s,
      report: lines.join('\n'),
    };
  }
  lines.push(`ok: safety, solo equivalence, isolation, liveness, policy errors — ${details.numRuns} scenarios (seed ${details.seed})`);

  // 2. Fairness as declared: saturating guests; shares of device time.
  if (probe.fairness !== 'none') {
    // Long enough for many quanta: shares are measured in whole holds.
    const window = o.fairnessWindowNs ?? Math.max(40_000_000, 50 * bounds.quantumBoundNs);
    const tol = o.fairnessTolerance ?? 0.1;
    const weightsArb =
      probe.fairness === 'weighted'
        ? fc.array(fc.constantFrom(1, 2, 4), { minLength: 2, maxLength: 4 }).filter((ws) => new Set(ws).size > 1)
        : fc.array(fc.constantFrom(1, 2, 4), { minLength: 2, maxLength: 4 });
    let last: Awaited<ReturnType<typeof measureFairness>> | null = null;
    const fair = await fc.check(
      fc.asyncProperty(weightsArb, async (weights) => {
        last = await measureFairness(weights, sim, make(), window, bounds);
        const policyErr = last.run.violations.find((v) => v.property === 'policy');
        if (policyErr) throw new PropertyFailure('policy', policyErr.message);
        if (last.error > tol)
          throw new PropertyFailure(
            'fairness',
            `weights ${weights.join(':')}: device-time shares ${last.shares.map((x) => x.toFixed(3)).join(' ')}, ` +
              `expected ${last.expected.map((x) => x.toFixed(3)).join(' ')} (${probe.fairness}); largest relative error ${last.error.toFixed(3)} > ${tol}`,
          );
      }),
      { numRuns: Math.max(3, Math.ceil(runs / 10)), seed: o.seed, endOnFailure: true },
    );
    if (fair.failed) {
      const err = fair.errorInstance as PropertyFailure;
      const weights = fair.counterexample![0] as number[];
      const again = await measureFairness(weights, sim, make(), window, bounds);
      lines.push(
        `FAILED: ${err.property ?? 'fairness'} — ${err.detail ?? String(err)}`,
        `counterexample: ${weights.length} guests saturating the device for ${fmtMs(window)}, weights ${weights.join(':')}`,
        'timeline (first and last grants):',
        formatTimeline(again.run, Infinity, 30),
        `replay: ${replayCommand(module, o, ['--seed', String(fair.seed)])}`,
      );
      return { ok: false, policy: probe.name, fairness: probe.fairness, failed: err.property ?? 'fairness', seed: fair.seed, counterexample: weights, report: lines.join('\n') };
    }
    lines.push(`ok: fairness (${probe.fairness}) — ${fair.numRuns} saturating runs of ${fmtMs(window)}, share error <= ${tol}`);
  } else lines.push('fairness: none declared, not checked');
  return { ok: true, policy: probe.name, fairness: probe.fairness, report: lines.join('\n') };
}
