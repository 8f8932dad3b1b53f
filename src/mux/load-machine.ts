// Load a MUX definition module: a shipped name (machines/<name>.ts) or a path to a module
// whose default export is defineMux({...}).

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defineMux, MuxDefinitionError, type MuxDefinition } from './define.ts';
import { defaultExport, importUserModule } from '../util/import-module.ts';

/** The shipped machine `name` (machines/<name>.ts, or machines/<name>/index.ts) as a file URL; null when there is none. */
export function shippedMachineUrl(name: string): string | null {
  if (!/^[a-z0-9_-]+$/i.test(name)) return null;
  for (const rel of [`../../machines/${name}.ts`, `../../machines/${name}/index.ts`]) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url.href;
  }
  return null;
}

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
