// Load a MUX definition module: a shipped name (machines/<name>.ts) or a path to a module
// whose default export is defineMux({...}).

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { shippedMachineUrl } from '../catalog/machines.ts';
import { defineMux, MuxDefinitionError, type MuxDefinition } from './define.ts';
import { defaultExport, importUserModule } from '../util/import-module.ts';

/** Where a machine name or path points: `sim` -> machines/sim.ts (or machines/sim/index.ts), else a path. */
export function machineUrl(nameOrPath: string): string {
  return shippedMachineUrl(nameOrPath) ?? pathToFileURL(resolve(nameOrPath)).href;
}

/** Load a machine module's definition; throws MuxDefinitionError naming the module and the problem. */
export async function loadMux(nameOrPath: string): Promise<MuxDefinition> {
  let mod: { default?: unknown };
  try {
    mod = await importUserModule(machineUrl(nameOrPath));
  } catch (err) {
    if (err instanceof MuxDefinitionError) throw err;
    throw new MuxDefinitionError(nameOrPath, `cannot load module: ${(err as Error).message}`);
  }
  const def = defaultExport(mod);
  if (!def || typeof def !== 'object')
    throw new MuxDefinitionError(nameOrPath, 'the module must default-export defineMux({...})');
  return defineMux(def as MuxDefinition);
}
