// The CommonJS half of own-modules-hook.mjs: a user's CommonJS module (or TypeScript that tsx
// compiles to CommonJS) that calls require('muxvisor/...') or require('xstate') gets muxvisor's
// own. Node 20's module hooks do not see require(), so its resolver is wrapped instead.

import Module, { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const API = fileURLToPath(new URL('../api/', import.meta.url));
const ENTRIES = { muxvisor: 'index.ts', 'muxvisor/define': 'define.ts', 'muxvisor/policy': 'policy.ts', 'muxvisor/device': 'device.ts' };
const ownRequire = createRequire(import.meta.url);

export function redirectRequires() {
  const original = Module._resolveFilename;
  // ownRequire.resolve comes back through Module._resolveFilename: that inner call is plain.
  let inner = false;
  Module._resolveFilename = function resolveOwn(request, ...rest) {
    if (inner) return original.call(this, request, ...rest);
    const entry = ENTRIES[request];
    if (entry) return API + entry;
    if (request === 'muxvisor/package.json') return fileURLToPath(new URL('../../package.json', import.meta.url));
    if (request === 'xstate' || request.startsWith('xstate/')) {
      inner = true;
      try {
        return ownRequire.resolve(request);
      } finally {
        inner = false;
      }
    }
    return original.call(this, request, ...rest);
  };
}
