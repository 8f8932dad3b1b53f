// `muxvisor check-machine <module> [--kind KIND] [--diagram FILE.mmd]`: lint a MUX definition's statechart
// (src/check/machine-lint.ts); names each problem's state; exit code 1 on a problem.

import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { checkMachine } from '../check/machine-lint.ts';
import { globalOptions, printJson } from './common.ts';

export function register(program: Command): void {
  program
    .command('check-machine')
    .description('lint a device statechart: a safe state exists and is reachable from every state, the reset path reaches one, no unreachable states, registers resolve in the kind\'s regions, every classified event is handled')
    .argument('<module>', 'machine module default-exporting defineMux({...}), or a shipped name in machines/: sim, ata, ne2k, uart16550')
    .option('--kind <kind>', "the device kind whose regions the register map must name (default: the machine's kind, when it is a registered one)")
    .option('--diagram <file>', 'write a Mermaid state diagram with the safe states marked')
    .action(async (module: string, opts: { diagram?: string; kind?: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const r = await checkMachine(module, { kind: opts.kind });
      if (opts.diagram && r.diagram) writeFileSync(opts.diagram, r.diagram);
      if (json) printJson({ ok: r.ok, kind: r.kind, states: r.states, safeStates: r.safeStates, problems: r.problems, diagram: opts.diagram ?? null });
      else process.stdout.write(r.report + (opts.diagram && r.diagram ? `\ndiagram written to ${opts.diagram}` : '') + '\n');
      process.exitCode = r.ok ? 0 : 1;
    });
}
