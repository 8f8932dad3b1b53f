// `muxvisor bench [--quick] [--only NAMES]`: collect figures from every src/bench/*.ts module
// (each exports run({quick}) -> flat object of dotted keys; src/cli/README.md). A module that
// fails reports `<name>.error` and the others go on. Prints a table (bench-table.ts: each figure
// in its kind's unit, with its meaning and target), or the modules' figures as JSON with --json.

import { readdirSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { colorEnabled } from '../util/color.ts';
import { describeFigures } from './bench-figures.ts';
import { benchTable } from './bench-table.ts';
import { globalOptions, printJson } from './common.ts';

type BenchModule = { run?: (opts: { quick: boolean }) => Promise<Record<string, unknown>> };

const BENCH_DIR = new URL('../bench/', import.meta.url);

/** The bench modules there are: the file names in src/bench without .ts. */
export function benchModules(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** The names that are no bench module, as an error message listing the modules; null when all are. */
function unknownModules(names: readonly string[], available: readonly string[]): string | null {
  const unknown = names.filter((n) => !available.includes(n));
  if (unknown.length === 0) return null;
  return `unknown bench module${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}; available: ${available.join(', ')}`;
}

/** `--only` as a list of bench modules; a name that is none of them is an error listing them. */
export function parseOnly(value: string): string[] {
  const available = benchModules();
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError(`expected comma-separated bench modules; available: ${available.join(', ')}`);
  const unknown = unknownModules(names, available);
  if (unknown) throw new InvalidArgumentError(unknown);
  return names;
}

export async function collect(opts: { quick: boolean; only?: string[] }, progress?: (name: string) => void): Promise<Record<string, unknown>> {
  const dir = BENCH_DIR;
  const available = benchModules();
  const unknown = unknownModules(opts.only ?? [], available);
  if (unknown) throw new Error(unknown);
  const names = available.filter((n) => !opts.only || opts.only.includes(n));
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

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure: MUX decision cost, fairness figures, and whatever other src/bench modules report')
    .option('--quick', 'fewer iterations', false)
    .option('--only <names>', `comma-separated bench modules: ${benchModules().join(', ')}`, parseOnly)
    .action(async (opts: { quick: boolean; only?: string[] }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      const only = opts.only;
      const figures = await collect({ quick: opts.quick, only }, json ? undefined : (n) => process.stderr.write(`bench: ${n}...\n`));
      if (json) printJson(figures);
      else process.stdout.write(benchTable(describeFigures(figures), colorEnabled(process.stdout)) + '\n');
      process.exitCode = Object.keys(figures).some((k) => k.endsWith('.error')) ? 1 : 0;
    });
}
