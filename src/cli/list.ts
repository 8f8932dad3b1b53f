// `muxvisor list kinds|machines|policies`: what a configuration may name — the device kinds
// (src/devices/registry.ts), the shipped MUX statecharts (machines/) and arbitration
// policies (policies/) — one per line, or as JSON with --json.

import type { Command } from 'commander';
import { Argument } from 'commander';
import { shippedMachines } from '../catalog/machines.ts';
import { SHIPPED_POLICIES } from '../catalog/policies.ts';
import { DeviceRegistry } from '../devices/registry.ts';
import { loadMux } from '../mux/load-machine.ts';
import { loadPolicy } from '../mux/policy.ts';
import { globalOptions, printJson } from './common.ts';

type Row = Record<string, string | number>;

async function rows(what: 'kinds' | 'machines' | 'policies'): Promise<Row[]> {
  if (what === 'kinds') {
    const registry = new DeviceRegistry();
    return Promise.all(registry.kinds().map(async (kind) => ({ kind, summary: (await registry.describe(kind)).summary })));
  }
  if (what === 'machines') {
    return Promise.all(shippedMachines().map(async (name) => ({ name, kind: (await loadMux(name)).kind })));
  }
  return Promise.all(SHIPPED_POLICIES.map(async (name) => ({ name, fairness: (await loadPolicy(name)).fairness })));
}

export function register(program: Command): void {
  program
    .command('list')
    .description('list the device kinds, shipped machines or shipped policies a configuration may name')
    .addArgument(new Argument('<what>', 'what to list').choices(['kinds', 'machines', 'policies']))
    .action(async (what: 'kinds' | 'machines' | 'policies', _opts: unknown, cmd: Command) => {
      const list = await rows(what);
      if (globalOptions(cmd).json) {
        printJson({ [what]: list });
        return;
      }
      const [key, extra] = what === 'kinds' ? ['kind', 'summary'] : what === 'machines' ? ['name', 'kind'] : ['name', 'fairness'];
      const width = Math.max(...list.map((r) => String(r[key]).length));
      const label = what === 'machines' ? 'device kind ' : what === 'policies' ? 'fairness ' : '';
      for (const r of list) process.stdout.write(`${String(r[key]).padEnd(width)}  ${label}${r[extra]}\n`);
    });
}
