// A module resolve hook (node:module register) the CLI installs: a user's machine, policy,
// device or driver module, in whatever folder, gets muxvisor's own `muxvisor/...` entry points
// (as TypeScript sources, the very modules the CLI runs) and muxvisor's own xstate, so one
// copy of each is loaded whether or not the user's folder has them installed.

const API = new URL('../api/', import.meta.url);
const ENTRIES = { muxvisor: 'index.ts', 'muxvisor/define': 'define.ts', 'muxvisor/policy': 'policy.ts', 'muxvisor/device': 'device.ts' };

export async function resolve(specifier, context, next) {
  const entry = ENTRIES[specifier];
  // Through the next hooks (tsx), which load a .ts URL.
  if (entry) return next(new URL(entry, API).href, context);
  if (specifier === 'muxvisor/package.json') return next(new URL('../../package.json', import.meta.url).href, context);
  // xstate as muxvisor resolves it (its own dependency), not a second copy beside the user's file.
  if (specifier === 'xstate' || specifier.startsWith('xstate/')) return next(specifier, { ...context, parentURL: import.meta.url });
  return next(specifier, context);
}
