#!/usr/bin/env node
// Entry point of the `muxvisor` CLI: registers tsx so the TypeScript sources (and
// user-written .ts policies and machines) load without a separate build step, and a resolve
// hook so a user's module in any folder imports muxvisor's own `muxvisor/...` and xstate.
import { register as registerHooks } from 'node:module';
import { register as registerCjs } from 'tsx/cjs/api';
import { register } from 'tsx/esm/api';
import { redirectRequires } from './own-modules-require.mjs';

register();
// A user's CommonJS module that requires muxvisor/... reaches TypeScript sources too.
registerCjs();
// Registered after tsx, so it runs first: it hands tsx the .ts URLs of src/api/.
registerHooks('./own-modules-hook.mjs', import.meta.url);
redirectRequires();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
