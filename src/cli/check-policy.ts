// `muxvisor check-policy <module> [--runs N] [--seed S]`: run the DESIGN.md properties on a
// policy (src/check/policy-check.ts). Prints the shrunk counterexample as a timeline and the
// seed to replay it; exit code 1 on a failure.

import type { Command } from 'commander';
import { checkPolicy } from '../check/policy-check.ts';
import { globalOptions, printJson } from './common.ts';

function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer (got ${v})`);
    return n;
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number (got ${v})`);
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
    .option('--runs <n>', 'random scenarios to try', int('runs'), 50)
    .option('--seed <s>', 'fast-check seed (replays a reported failure)', int('seed'))
    .option('--path <p>', 'fast-check replay path printed with a failure')
    .option('--options <json>', 'options for the policy create(), as JSON')
    .option('--quantum-bound-ms <ms>', 'longest hold the policy may give an owner while others wait (liveness bound)', num('quantum-bound-ms'), 1)
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
      const r = await checkPolicy(module, {
        runs: opts.runs,
        seed: opts.seed,
        path: opts.path,
        policyOptions,
        bounds: { quantumBoundNs: opts.quantumBoundMs * 1e6, slackNs: opts.slackMs * 1e6 },
        fairnessTolerance: opts.fairnessTolerance,
      });
      if (json) printJson(r);
      else process.stdout.write(r.report + '\n');
      process.exitCode = r.ok ? 0 : 1;
    });
}
