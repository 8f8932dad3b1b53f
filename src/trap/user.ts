// Launching unmodified programs under the user-mode trap shim (native/trap, see its
// README.md): LD_PRELOAD=libmuxtrap.so plus the MUXVISOR_* variables it reads.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const NATIVE_TRAP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../native/trap');

/** Absolute path of the shim, built by `npm install` (make -C native). */
export const TRAP_LIB = resolve(NATIVE_TRAP_DIR, 'build/libmuxtrap.so');
/** Folder of the shim's helper programs (test-forms, bench-inb, ata-pio). */
export const TRAP_BUILD_DIR = resolve(NATIVE_TRAP_DIR, 'build');

/** Exit status of a trapped program whose channel to the supervisor broke. */
export const TRAP_EXIT_CHANNEL_LOST = 70;

export class TrapLibMissingError extends Error {
  constructor(readonly path: string) {
    super(`user-mode trap shim not built: ${path} is missing (run \`make -C native\` or \`npm install\`)`);
    this.name = 'TrapLibMissingError';
  }
}

export function trapLibPath(): string {
  if (!existsSync(TRAP_LIB)) throw new TrapLibMissingError(TRAP_LIB);
  return TRAP_LIB;
}

export interface TrapOptions {
  /** Unix socket of the supervisor (MUXVISOR_SOCKET). */
  socket?: string;
  /** Guest name from the supervisor's config (MUXVISOR_GUEST). */
  guest?: string;
  /** The guest's credential, sent in the hello (MUXVISOR_TOKEN): a one-time token or a token file's content. */
  token?: string;
  /** Answer accesses inside the shim itself (benchmarks, decoder tests). */
  localEcho?: boolean;
  /** A file descriptor number of the child where the shim writes one line per access. */
  traceFd?: number;
  /** Bus address and size of the DMA memory; size 0 turns DMA memory off. */
  dmaBase?: number;
  dmaSize?: number;
  /** Paths the program opens for its BAR, its interrupts and its DMA memory. */
  mmioPath?: string;
  uioPath?: string;
  dmaPath?: string;
  /**
   * The shared-memory access slot (MUXVISOR_SLOT): false = off, every access goes over
   * the socket; 'always' = every access through the slot, ringing the doorbell when the
   * supervisor does not poll (tests); default: the slot while the supervisor polls.
   */
  slot?: boolean | 'always';
}

/** The environment a program runs with under the shim (LD_PRELOAD is prepended). */
export function trapEnv(opts: TrapOptions, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  env.LD_PRELOAD = base.LD_PRELOAD ? `${trapLibPath()}:${base.LD_PRELOAD}` : trapLibPath();
  const set = (name: string, v: string | number | undefined): void => {
    if (v !== undefined) env[name] = typeof v === 'number' ? '0x' + v.toString(16) : v;
  };
  set('MUXVISOR_SOCKET', opts.socket);
  set('MUXVISOR_GUEST', opts.guest);
  set('MUXVISOR_TOKEN', opts.token);
  if (opts.localEcho) env.MUXVISOR_LOCAL_ECHO = '1';
  if (opts.traceFd !== undefined) env.MUXVISOR_TRACE_FD = String(opts.traceFd);
  set('MUXVISOR_DMA_BASE', opts.dmaBase);
  set('MUXVISOR_DMA_SIZE', opts.dmaSize);
  set('MUXVISOR_MMIO_PATH', opts.mmioPath);
  set('MUXVISOR_UIO_PATH', opts.uioPath);
  set('MUXVISOR_DMA_PATH', opts.dmaPath);
  if (opts.slot === false) env.MUXVISOR_SLOT = '0';
  if (opts.slot === 'always') env.MUXVISOR_SLOT = 'always';
  return env;
}

export interface SpawnTrappedOptions extends TrapOptions {
  cwd?: string;
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
}

/** Starts `program` under the shim (its DMA memory is a memfd: nothing is left behind). */
export function spawnTrapped(program: string, args: readonly string[], opts: SpawnTrappedOptions): ChildProcess {
  return spawn(program, args, {
    cwd: opts.cwd,
    stdio: opts.stdio ?? 'pipe',
    env: trapEnv(opts, opts.env ?? process.env),
  });
}

export interface TrappedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program under the shim to its end and collects its output. */
export function runTrapped(program: string, args: readonly string[], opts: SpawnTrappedOptions): Promise<TrappedResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnTrapped(program, args, { ...opts, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}
