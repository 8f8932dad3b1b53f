// The muxvisor CLI: builds the commander program, registers each sub-command module that
// exists (src/cli/README.md), runs it and returns the exit code. Errors go to stderr;
// with --json only JSON goes to stdout.

import { existsSync, readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { LOG_LEVELS } from '../log.ts';
import { reportError } from './common.ts';

/**
 * Sub-command modules, in help order. Each is ./<name>.ts exporting
 * `register(program: Command): void`; a module not written yet is skipped.
 * The lead extends this list.
 */
export const SUBCOMMAND_MODULES = ['run', 'demo', 'exec', 'check-policy', 'check-machine', 'bench'] as const;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function buildProgram(): Promise<Command> {
  const program = new Command('muxvisor')
    .description('Device multiplexer and VMM supervisor: several guests share one device at the register level')
    .version(packageVersion(), '-V, --version', 'print the version')
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default('info'))
    .option('--json', 'machine-readable output: only JSON on stdout', false)
    .showHelpAfterError('(run muxvisor --help for usage)')
    .exitOverride();
  for (const name of SUBCOMMAND_MODULES) {
    const url = new URL(`./${name}.ts`, import.meta.url);
    if (!existsSync(url)) continue;
    try {
      const mod = (await import(url.href)) as { register?: (p: Command) => void };
      if (typeof mod.register !== 'function') throw new Error('it does not export register(program)');
      mod.register(program);
    } catch (e) {
      // One broken sub-command must not take --help and the others down with it.
      process.stderr.write(`muxvisor: sub-command module src/cli/${name}.ts is unavailable: ${(e as Error).message}\n`);
    }
  }
  // Sub-commands inherit exitOverride so a usage error returns a code instead of exiting.
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** Run the CLI on `argv` (as process.argv: node, script, args...). Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  let program: Command;
  try {
    program = await buildProgram();
  } catch (e) {
    return reportError(e, json);
  }
  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" with code 0; usage errors were already printed.
      return e.exitCode;
    }
    return reportError(e, json);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
