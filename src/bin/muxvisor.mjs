#!/usr/bin/env node
// Entry point of the `muxvisor` CLI: registers tsx so the TypeScript sources (and
// user-written .ts policies and machines) load without a separate build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
