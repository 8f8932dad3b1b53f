// Starts the guests a config describes when `muxvisor run` serves it: each guest's `run`
//   scripted {driver: 'ata' | module path, options}  an in-process driver on the local guest path
//   user {argv, env?, cwd?}                          an unmodified program under the trap shim,
//                                                    handed a one-time token (MUXVISOR_TOKEN) that
//                                                    opens its guest once (src/channel/peer-auth.ts)
//   kvm {image, memoryMiB?, options.cmdline?}        a KVM guest (N-API runner, in process)
//   qemu {kernel?, initrd?, append?, memMiB?, ...}   an unmodified OS in its own QEMU, the disk
//                                                    served over x-pci-proxy-dev (qemu-launch.ts)
// Guests without `run` are left to connect themselves (`muxvisor exec`, a KVM helper, ...).

import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config, GuestConfig } from '../config/schema.ts';
import { AtaDriver } from '../guests/ata-driver.ts';
import { runWorkload, type TransferMode } from '../guests/ata-workload.ts';
import type { GuestPort } from '../guests/port.ts';
import type { Logger } from '../log.ts';
import type { Supervisor } from '../supervisor.ts';
import { launchQemu } from './qemu-launch.ts';

export interface GuestOutcome {
  guest: string;
  how: 'scripted' | 'user' | 'kvm' | 'qemu';
  ok: boolean;
  detail: string;
}

export interface LaunchedGuest {
  name: string;
  done: Promise<GuestOutcome>;
  stop(): void;
}

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
const ataDriver: ScriptedDriver = async (port, options, signal, memory) => {
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

async function loadScripted(driver: string, where: string): Promise<ScriptedDriver> {
  if (driver === 'ata') return ataDriver;
  const mod = (await import(pathToFileURL(resolve(driver)).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`${where}.run.driver: ${driver} must default-export a function (port, options, signal) => Promise<{ok}>`);
  return mod.default as ScriptedDriver;
}

function launchScripted(sup: Supervisor, g: GuestConfig, run: { driver: string; options?: Record<string, unknown> }, where: string): LaunchedGuest {
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

async function launchUser(sup: Supervisor, socket: string, g: GuestConfig, run: { argv: string[]; env?: Record<string, string>; cwd?: string }): Promise<LaunchedGuest> {
  const { spawnTrapped } = await import('../trap/user.ts');
  // The shim sends it in its hello: the name is this process's, not whoever says it first.
  const token = sup.issueToken(g.name);
  const child: ChildProcess = spawnTrapped(run.argv[0], run.argv.slice(1), {
    socket,
    guest: g.name,
    token,
    cwd: run.cwd,
    env: { ...process.env, ...run.env },
    // Its output goes to stderr: stdout belongs to the supervisor (--json).
    stdio: ['ignore', 2, 2],
  });
  const done = new Promise<GuestOutcome>((res) => {
    child.once('error', (e) => res({ guest: g.name, how: 'user', ok: false, detail: `cannot start ${run.argv[0]}: ${e.message}` }));
    child.once('exit', (code, sig) => res({ guest: g.name, how: 'user', ok: code === 0, detail: sig ? `killed by ${sig}` : `exit status ${code}` }));
  }).finally(() => sup.revokeToken(g.name, token)); // unused when it never connected: void now
  return { name: g.name, done, stop: () => child.kill('SIGTERM') };
}

async function launchKvm(sup: Supervisor, g: GuestConfig, run: { image: string; memoryMiB?: number; options?: Record<string, unknown> }): Promise<LaunchedGuest> {
  const { kvmGuestOptionsFromRun } = await import('../trap/kvm.ts');
  const { startKvmGuestInProcess } = await import('../trap/kvm-inproc.ts');
  const handle = startKvmGuestInProcess({ ...kvmGuestOptionsFromRun(g.name, run), attach: sup.attachLocalGuest.bind(sup) });
  const done = handle.done.then(
    (r) => ({ guest: g.name, how: 'kvm' as const, ok: r.exitReason === 'hlt' && (r.result === null || r.result === undefined || r.verified), detail: `${r.exitReason}${r.result ? `, ${r.verified ? 'verified' : 'NOT verified'}` : ''}` }),
    (e: Error) => ({ guest: g.name, how: 'kvm' as const, ok: false, detail: e.message }),
  );
  return { name: g.name, done, stop: () => handle.kill() };
}

/** Start every guest of `config` that has a `run`; `socket` is where user-mode guests connect. */
export async function launchGuests(sup: Supervisor, config: Config, socket: string, log: Logger): Promise<LaunchedGuest[]> {
  const out: LaunchedGuest[] = [];
  for (const [i, g] of config.guests.entries()) {
    const run = g.run;
    if (!run) continue;
    const where = `guests[${i}]`;
    let l: LaunchedGuest;
    if (run.type === 'scripted') l = launchScripted(sup, g, run, where);
    else if (run.type === 'user') l = await launchUser(sup, socket, g, run);
    else if (run.type === 'qemu') l = await launchQemu(sup, g, run, where, socket, log);
    else l = await launchKvm(sup, g, run);
    log.info({ guest: g.name, run: run.type }, 'guest started');
    void l.done.then((o) => (o.ok ? log.info(o, 'guest finished') : log.error(o, 'guest failed')));
    out.push(l);
  }
  return out;
}
