// The muxvisor CLI: builds the commander program, registers each sub-command module that
// exists (src/cli/README.md), runs it and returns the exit code. Errors go to stderr;
// with --json only JSON goes to stdout, and every error, a usage error too, prints
// {"ok": false, "error": ...} there.

import { existsSync, readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { LOG_LEVELS } from '../log.ts';
import { printJson, reportError } from './common.ts';

/**
 * Sub-command modules, in help order. Each is ./<name>.ts exporting
 * `register(program: Command): void`; a module not written yet is skipped.
 * The lead extends this list.
 */
export const SUBCOMMAND_MODULES = ['run', 'demo', 'exec', 'check-policy', 'check-machine', 'init', 'list', 'describe', 'bench', 'log', 'replay', 'report'] as const;

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

/** A usage error as commander reports it, for the JSON document: without its "error: " and help placeholder. */
function usageMessage(e: CommanderError): string {
  if (e.code === 'commander.help') return 'no command given (see muxvisor --help)';
  return e.message.replace(/^error: /, '');
}

/** Run the CLI on `argv` (as process.argv: node, script, args...). Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  // --json among muxvisor's own arguments, not a program's after `--` (exec -- PROGRAM --json).
  const end = argv.indexOf('--');
  const json = (end < 0 ? argv : argv.slice(0, end)).includes('--json');
  let program: Command;
  try {
    program = await buildProgram();
  } catch (e) {
    return reportError(e, json);
  }
  // Bare `muxvisor` is a usage error like any missing command: commander prints the help on
  // stderr and the exit status is 1 (a script that forgot its command does not pass).
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" with code 0; usage errors were already printed on
      // stderr (commander's text and the help hint). With --json stdout gets the error too.
      if (e.exitCode === 0) return 0;
      if (json) printJson({ ok: false, error: usageMessage(e), usage: true });
      return e.exitCode || 1;
    }
    return reportError(e, json);
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
