// `muxvisor describe [KIND] [--markdown]`: what a device kind says about itself (PCI ids,
// regions, IRQs, properties with type, default and help), every kind when none is named.
// `describe --markdown > docs/devices.md` regenerates the docs page (test/describe.test.ts).

import type { Command } from 'commander';
import { DeviceRegistry } from '../devices/registry.ts';
import { globalOptions, printJson } from './common.ts';
import { kindMarkdown, kindText, kindsMarkdown } from './kind-text.ts';

export function register(program: Command): void {
  program
    .command('describe')
    .description('describe a device kind (every kind when none is named): PCI ids, regions, IRQs, properties')
    .argument('[kind]', 'a device kind (muxvisor list kinds)')
    .option('--markdown', 'Markdown, as in docs/devices.md', false)
    .action(async (kind: string | undefined, opts: { markdown: boolean }, cmd: Command) => {
      const registry = new DeviceRegistry();
      const kinds = kind === undefined ? registry.kinds() : [kind];
      const infos = await Promise.all(kinds.map((k) => registry.describe(k)));
      if (globalOptions(cmd).json) printJson(kind === undefined ? { kinds: infos } : infos[0]);
      else if (opts.markdown) process.stdout.write(kind === undefined ? kindsMarkdown(infos) : kindMarkdown(infos[0]));
      else process.stdout.write(infos.map(kindText).join('\n'));
    });
}
