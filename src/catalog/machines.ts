// The machines that ship in machines/ (machines/<name>.ts or machines/<name>/index.ts), by
// name: what a device's `properties.machine` may name without a path, and what `muxvisor
// list machines` prints. Knows names and files only; loading one is src/mux/load-machine.ts's.

import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MACHINES_DIR = new URL('../../machines/', import.meta.url);

/** The shipped machine `name` as a file URL; null when there is none. */
export function shippedMachineUrl(name: string): string | null {
  if (!/^[a-z0-9_-]+$/i.test(name)) return null;
  // .js: the compiled copy in dist/ (the package's programmatic API under plain Node).
  for (const rel of [`${name}.ts`, `${name}/index.ts`, `${name}.js`, `${name}/index.js`]) {
    const url = new URL(rel, MACHINES_DIR);
    if (existsSync(fileURLToPath(url))) return url.href;
  }
  return null;
}

/** The names of every shipped machine, sorted. */
export function shippedMachines(): string[] {
  const names = readdirSync(fileURLToPath(MACHINES_DIR), { withFileTypes: true }).map((e) => (e.isDirectory() ? e.name : e.name.replace(/\.(ts|js)$/, '')));
  return [...new Set(names)].filter((n) => shippedMachineUrl(n) !== null).sort();
}
