// Habits of a command-line tool: `--help` on every sub-command (enumerated from the program, so
// a new command is covered as soon as it exists), bare `muxvisor` prints the help and fails.
// NO_COLOR: test/cli-habits-color.test.ts; configuration errors: test/cli-habits-config.test.ts.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.ts';
import { useCliProcesses } from './helpers/cli-process.ts';

const { cli } = useCliProcesses('mvhabits-');

/** Every command below the program, as its path of names (`['log', 'show']`). */
function commandPaths(cmd: Command, above: string[] = []): string[][] {
  return cmd.commands.flatMap((c) => [[...above, c.name()], ...commandPaths(c, [...above, c.name()])]);
}

describe('--help on every sub-command', () => {
  it('each command, nested ones too, prints its usage, a description and described options, exit 0', async () => {
    const paths = commandPaths(await buildProgram());
    expect(paths.map((p) => p[0])).toEqual(expect.arrayContaining(['run', 'demo', 'exec', 'bench']));
    for (const path of paths) {
      // A fresh program each time: commander keeps parse state on the command objects.
      const program = await buildProgram();
      let out = '';
      const capture = (c: Command): void => {
        c.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
        c.commands.forEach(capture);
      };
      capture(program);
      const code = await program.parseAsync(['node', 'muxvisor', ...path, '--help']).then(
        () => 'no exit',
        (e: { code?: string; exitCode?: number }) => `${e.code} ${e.exitCode}`,
      );
      expect(code, path.join(' ')).toBe('commander.helpDisplayed 0');
      expect(out, path.join(' ')).toMatch(new RegExp(`^Usage: muxvisor ${path.join(' ')}\\b`));
      let cmd: Command = program;
      for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
      expect(cmd.description().length, `${path.join(' ')} has a description`).toBeGreaterThan(10);
      for (const o of cmd.options) expect(o.description, `${path.join(' ')} ${o.flags} has a description`).not.toBe('');
      for (const a of cmd.registeredArguments) expect(a.description, `${path.join(' ')} <${a.name()}> has a description`).not.toBe('');
    }
  });

  it('the real binary: `muxvisor run --help` on stdout, exit 0', async () => {
    const r = await cli('run', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: muxvisor run \[options\] <config>/);
  });
});

describe('bare muxvisor', () => {
  it('prints the help on stderr and exits non-zero; stdout stays empty', async () => {
    const r = await cli();
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: muxvisor \[options\] \[command\]/);
    expect(r.stderr).toMatch(/^\s+run \[options\] <config>/m);
  });
});
