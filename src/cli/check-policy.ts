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

export function register(program: Command): void {
  program
    .command('check-policy')
    .description('check an arbitration policy: safety, solo equivalence, isolation, liveness, fairness as it declares (fast-check, simulated device, real engine)')
    .argument('<module>', 'policy module (.ts/.js/.mjs default-exporting create(options)), or a shipped name: round-robin, weighted-fair, priority, edf')
    .option('--runs <n>', 'random scenarios to try', int('runs'), 50)
    .option('--seed <s>', 'fast-check seed (replays a reported failure)', int('seed'))
    .option('--path <p>', 'fast-check replay path printed with a failure')
    .option('--options <json>', 'options for the policy create(), as JSON')
    .action(async (module: string, opts: { runs: number; seed?: number; path?: string; options?: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const policyOptions = opts.options ? (JSON.parse(opts.options) as Record<string, unknown>) : undefined;
      const r = await checkPolicy(module, { runs: opts.runs, seed: opts.seed, path: opts.path, policyOptions });
      if (json) printJson(r);
      else process.stdout.write(r.report + '\n');
      process.exitCode = r.ok ? 0 : 1;
    });
}
