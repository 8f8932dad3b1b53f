// `run: {type: 'scripted', driver, options}`: an in-process driver on the supervisor's local
// guest path — `ata` (the built-in verifying disk workload), `ne2k` (frames on a shared
// NE2000, src/guests/ne2k-workload.ts) or a module path whose default export is a ScriptedDriver.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { GuestConfig } from '../config/schema.ts';
import { AtaDriver } from '../guests/ata-driver.ts';
import { runWorkload, type TransferMode } from '../guests/ata-workload.ts';
import type { GuestPort } from '../guests/port.ts';
import type { Supervisor } from '../supervisor.ts';
import type { GuestOutcome, LaunchedGuest } from './outcome.ts';
import { defaultExport, importUserModule } from '../util/import-module.ts';

/** A user-written scripted driver: a module whose default export drives a GuestPort. */
export type ScriptedDriver = (
  port: GuestPort,
  options: Record<string, unknown>,
  signal: AbortSignal,
  /** The guest's DMA memory: bus address `base` is `bytes[0]`. */
  memory: { base: number; bytes: Uint8Array },
) => Promise<{ ok: boolean; detail?: string }>;

const DMA_BASE = 0x10_0000;

/** The built-in scripted driver `ata`: a verifying disk workload (options: seconds, mode, seed, maxSectors). */
export const ataDriver: ScriptedDriver = async (port, options, signal, memory) => {
  const driver = new AtaDriver(port, { base: memory.base, buf: memory.bytes });
  const mode = (options.mode as TransferMode | undefined) ?? 'mixed';
  if (!(await driver.probePci()) && mode !== 'pio') return { ok: false, detail: 'no PIIX bus-master function in its PCI scan' };
  const seconds = typeof options.seconds === 'number' ? options.seconds : 5;
  const deadline = Date.now() + seconds * 1000;
  const r = await runWorkload(driver, {
    guest: String(options.guest),
    seed: typeof options.seed === 'number' ? options.seed : 1,
    mode,
    maxSectors: typeof options.maxSectors === 'number' ? options.maxSectors : 16,
    until: () => signal.aborted || Date.now() >= deadline,
    flushEvery: 50,
  });
  return { ok: r.verified, detail: `${r.ops} ops, ${r.bytes} bytes, ${r.errors + r.mismatches} errors${r.firstError ? `: ${r.firstError}` : ''}` };
};

/** The built-in scripted driver `ne2k` (options: seconds, peers: MACs to send to). */
export const ne2kDriver: ScriptedDriver = async (port, options, signal) => {
  const { runNe2kWorkload } = await import('../guests/ne2k-workload.ts');
  const r = await runNe2kWorkload(port, options, signal);
  return { ok: r.ok, detail: r.detail };
};

async function loadScripted(driver: string, where: string): Promise<ScriptedDriver> {
  if (driver === 'ata') return ataDriver;
  if (driver === 'ne2k') return ne2kDriver;
  // Loaded as policies and machines are (src/util/import-module.ts): TypeScript outside an
  // ES-module package, .mjs and CommonJS alike.
  let mod: { default?: unknown };
  try {
    mod = await importUserModule(pathToFileURL(resolve(driver)).href);
  } catch (err) {
    throw new Error(`${where}.run.driver: cannot load module ${driver}: ${(err as Error).message}`);
  }
  const exported = defaultExport(mod);
  if (typeof exported !== 'function') throw new Error(`${where}.run.driver: ${driver} must default-export a function (port, options, signal) => Promise<{ok}>`);
  return exported as ScriptedDriver;
}

export function launchScripted(sup: Supervisor, g: GuestConfig, run: { driver: string; options?: Record<string, unknown> }, where: string): LaunchedGuest {
  const abort = new AbortController();
  const done = (async (): Promise<GuestOutcome> => {
    const drive = await loadScripted(run.driver, where);
    const memory = { base: DMA_BASE, bytes: new Uint8Array(0x4_0000) };
    const local = sup.attachLocalGuest(g.name, { memory });
    try {
      const r = await drive(local, { guest: g.name, ...run.options }, abort.signal, memory);
      return { guest: g.name, how: 'scripted', ok: r.ok, detail: r.detail ?? '' };
    } finally {
      local.detach('bye');
    }
  })().catch((e: Error) => ({ guest: g.name, how: 'scripted' as const, ok: false, detail: e.message }));
  return { name: g.name, done, stop: () => abort.abort() };
}
