// `muxvisor bench [--quick] [--only NAME]`: collect figures from every src/bench/*.ts module
// (each exports run({quick}) -> flat object of dotted keys; src/cli/README.md). A module that
// fails reports `<name>.error` and the others go on. Prints a table, or JSON with --json.

import { readdirSync } from 'node:fs';
import type { Command } from 'commander';
import { globalOptions, printJson } from './common.ts';

type BenchModule = { run?: (opts: { quick: boolean }) => Promise<Record<string, unknown>> };

export async function collect(opts: { quick: boolean; only?: string[] }, progress?: (name: string) => void): Promise<Record<string, unknown>> {
  const dir = new URL('../bench/', import.meta.url);
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => !opts.only || opts.only.includes(n))
    .sort();
  const figures: Record<string, unknown> = {};
  for (const name of names) {
    progress?.(name);
    try {
      const mod = (await import(new URL(`${name}.ts`, dir).href)) as BenchModule;
      if (typeof mod.run !== 'function') throw new Error('it does not export run(opts)');
      Object.assign(figures, await mod.run({ quick: opts.quick }));
    } catch (err) {
      figures[`${name}.error`] = (err as Error).message;
    }
  }
  return figures;
}

function show(v: unknown): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure: MUX decision cost, fairness figures, and whatever other src/bench modules report')
    .option('--quick', 'fewer iterations', false)
    .option('--only <names>', 'comma-separated bench modules (file names in src/bench without .ts)')
    .action(async (opts: { quick: boolean; only?: string }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const only = opts.only?.split(',').map((s) => s.trim()).filter(Boolean);
      const figures = await collect({ quick: opts.quick, only }, json ? undefined : (n) => process.stderr.write(`bench: ${n}...\n`));
      if (json) printJson(figures);
      else {
        const width = Math.max(0, ...Object.keys(figures).map((k) => k.length));
        for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(width)}  ${show(v)}\n`);
      }
      process.exitCode = Object.keys(figures).some((k) => k.endsWith('.error')) ? 1 : 0;
    });
}
