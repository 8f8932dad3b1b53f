// `muxvisor check-policy <module> [--runs N] [--seed S] [...]`: run the DESIGN.md properties on a
// policy (src/check/policy-check.ts). Prints the shrunk counterexample as a timeline and the
// seed to replay it; exit code 1 on a failure.

import { type Command, InvalidArgumentError } from 'commander';
import { checkPolicy, type CheckPolicyOptions } from '../check/policy-check.ts';
import { globalOptions, printJson } from './common.ts';

function int(name: string, min?: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`--${name} must be a whole number, got "${v}"`);
    if (min !== undefined && n < min) throw new InvalidArgumentError(`--${name} must be a whole number >= ${min}, got "${v}"`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`--${name} must be a non-negative number, got "${v}"`);
    return n;
  };
}

interface Opts {
  runs: number;
  seed?: number;
  path?: string;
  options?: string;
  quantumBoundMs: number;
  slackMs: number;
  fairnessTolerance: number;
}

export function register(program: Command): void {
  program
    .command('check-policy')
    .description('check an arbitration policy: safety, solo equivalence, isolation, liveness, fairness as it declares (fast-check, simulated device, real engine)')
    .argument('<module>', 'policy module (.ts/.js/.mjs default-exporting create(options)), or a shipped name: round-robin, weighted-fair, priority, edf')
    .option('--runs <n>', 'random scenarios to try (>= 1)', int('runs', 1), 50)
    .option('--seed <s>', 'fast-check seed (replays a reported failure)', int('seed'))
    .option('--path <p>', 'fast-check replay path printed with a failure')
    .option('--options <json>', 'options for the policy create(), as JSON')
    .option('--quantum-bound-ms <ms>', 'longest hold the policy may give an owner while others wait; the checked bound adds the longest unsafe span, the recheck, two accesses and the slack', num('quantum-bound-ms'), 1)
    .option('--slack-ms <ms>', 'extra waiting allowed on top (aging, deadlines) in the liveness bound', num('slack-ms'), 3)
    .option('--fairness-tolerance <x>', 'largest relative error of a device-time share', num('fairness-tolerance'), 0.1)
    .action(async (module: string, opts: Opts, cmd: Command) => {
      const { json } = globalOptions(cmd);
      let policyOptions: Record<string, unknown> | undefined;
      try {
        policyOptions = opts.options ? (JSON.parse(opts.options) as Record<string, unknown>) : undefined;
      } catch (err) {
        throw new Error(`--options is not JSON: ${(err as Error).message}`);
      }
      if (policyOptions !== undefined && (typeof policyOptions !== 'object' || policyOptions === null || Array.isArray(policyOptions)))
        throw new Error(`--options must be a JSON object such as '{"quantumNs": 1000000}', got ${opts.options}`);
      // Only what was given goes in (the defaults are checkPolicy's own): the replay line
      // printed with a failure repeats exactly these options.
      const given = (key: keyof Opts) => cmd.getOptionValueSource(key) === 'cli';
      const o: CheckPolicyOptions = { seed: opts.seed, path: opts.path, policyOptions };
      if (given('runs')) o.runs = opts.runs;
      if (given('quantumBoundMs') || given('slackMs'))
        o.bounds = {
          ...(given('quantumBoundMs') ? { quantumBoundNs: opts.quantumBoundMs * 1e6 } : {}),
          ...(given('slackMs') ? { slackNs: opts.slackMs * 1e6 } : {}),
        };
      if (given('fairnessTolerance')) o.fairnessTolerance = opts.fairnessTolerance;
      const r = await checkPolicy(module, o);
      if (json) printJson(r);
      else process.stdout.write(r.report + '\n');
      process.exitCode = r.ok ? 0 : 1;
    });
}
