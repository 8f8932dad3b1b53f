// `muxvisor init device|machine|policy NAME [--dir DIR] [--force]`: write a template a user
// starts from (src/cli/init-templates.ts) as DIR/NAME.ts. As generated it passes
// check-machine / check-policy and runs in a config.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { type Command, Argument } from 'commander';
import { globalOptions, printJson } from './common.ts';
import { NEXT_STEP, TEMPLATES, type TemplateKind } from './init-templates.ts';

const NAME = /^[a-z][a-z0-9-]*$/;

export function register(program: Command): void {
  program
    .command('init')
    .description('write a template device model, MUX machine or policy (NAME.ts) to start from')
    .addArgument(new Argument('<what>', 'what to write').choices(['device', 'machine', 'policy']))
    .argument('<name>', 'its name: lower-case letters, digits and "-", starting with a letter (the file is NAME.ts)')
    .option('--dir <dir>', 'the folder to write it in (default: the current one)', '.')
    .option('--force', 'overwrite an existing file', false)
    .action((what: TemplateKind, name: string, opts: { dir: string; force: boolean }, cmd: Command) => {
      const { json } = globalOptions(cmd);
      if (!NAME.test(name)) throw new Error(`init ${what}: bad name "${name}": expected lower-case letters, digits and "-", starting with a letter`);
      const file = resolve(opts.dir, `${name}.ts`);
      if (existsSync(file) && !opts.force) throw new Error(`init ${what}: ${file} exists (give --force to overwrite it)`);
      mkdirSync(resolve(opts.dir), { recursive: true });
      writeFileSync(file, TEMPLATES[what](name));
      const shown = relative(process.cwd(), file);
      const rel = shown.startsWith('..') ? file : `./${shown}`;
      if (json) printJson({ ok: true, what, name, file });
      else process.stdout.write(`wrote ${rel}\n${NEXT_STEP[what](rel, name)}\n`);
    });
}
