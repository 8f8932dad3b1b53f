// The TypeScript side of the KVM trap layer: launches native/kvm/build/muxvisor-kvm (one
// helper process per guest, see native/kvm/README.md), which boots a multiboot guest in a
// KVM VM and forwards its port/MMIO exits to the supervisor over the channel protocol.
// Guest debug-port lines come back on the runner's stdout as `[name @µs] text`; the final
// stderr line says why the guest stopped (`exit reason=hlt code=0 ...`).

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GuestOutput, type GuestResult, addGuestLine, isVerified, newGuestOutput, verifiedBytesPerSecond } from './kvm-output.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const KVM_RUNNER = join(ROOT, 'native/kvm/build/muxvisor-kvm');
/** Guest images built by native/guests (multiboot ELF32 kernels, also bootable by QEMU -kernel). */
export const GUEST_IMAGES = {
  ataDriver: join(ROOT, 'native/guests/build/ata-driver.elf'),
  tripleFault: join(ROOT, 'native/guests/build/triple-fault.elf'),
  /** Multiboot with the a.out kludge: a flat image whose header gives the load addresses. */
  aoutHello: join(ROOT, 'native/guests/build/aout-hello.bin'),
  /** Headerless real-mode binary: load with `flat: { loadAddr: 0x7c00, realMode: true }`. */
  flatHello: join(ROOT, 'native/guests/build/flat-hello.bin'),
} as const;

/** Why a KVM guest stopped. The first six come from the runner's exit code. */
export type KvmExitReason =
  | 'hlt' // HLT with interrupts off: the guest finished
  | 'shutdown' // triple fault
  | 'internal-error' // KVM internal error / failed VM entry
  | 'disconnected' // the supervisor closed the channel
  | 'terminated' // SIGTERM/SIGINT (kill())
  | 'host-error' // setup failure in the runner (message in stderr)
  | 'no-kvm' // /dev/kvm missing or unusable
  | 'timeout' // killed after timeoutMs
  | 'crashed'; // died from a signal or an unknown code

const EXIT_CODES: Record<number, KvmExitReason> = {
  0: 'hlt',
  1: 'host-error',
  3: 'no-kvm',
  10: 'shutdown',
  11: 'internal-error',
  12: 'disconnected',
  13: 'terminated',
};

export class KvmRunnerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvmRunnerError';
  }
}

/** Null when KVM is usable, else a sentence naming the device node and what to do. */
export function kvmUnavailableReason(dev = '/dev/kvm'): string | null {
  if (!existsSync(dev)) return `${dev} does not exist: load kvm_intel or kvm_amd (modprobe) and enable VT-x/AMD-V or nested virtualization`;
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
  } catch {
    return `${dev} is not readable and writable by this user: add the user to the kvm group or run as root`;
  }
  if (!existsSync(KVM_RUNNER)) return `${KVM_RUNNER} is not built: run \`make -C native\` (npm install does it)`;
  return null;
}

export interface KvmGuestOptions {
  /** Guest name: the config's guest name when connecting to a supervisor. */
  name: string;
  /** Multiboot kernel (ELF32/ELF64 or a.out kludge). Default: the ATA test driver. */
  image?: string;
  /** Multiboot command line (the runner prefixes the image path, as GRUB and QEMU do). */
  cmdline?: string;
  /** Load `image` as a flat binary at loadAddr instead (helper process only). */
  flat?: { loadAddr: number; entry?: number; realMode?: boolean };
  memoryMiB?: number;
  /** Supervisor socket: a path, `unix:PATH` or `tcp:HOST:PORT`. Absent: standalone (accesses read all-ones). */
  connect?: string;
  /** The guest's credential for the hello (MUXVISOR_TOKEN): a Supervisor.issueToken or a token file's content. */
  token?: string;
  kvmDev?: string;
  /** Kill the guest after this long (default 120 s); its exitReason is then `timeout`. */
  timeoutMs?: number;
  /** Each guest line as it arrives. */
  onLine?: (line: string) => void;
}

export interface KvmRunnerCounters {
  exits: number;
  io: number;
  mmio: number;
  local: number;
  forwarded: number;
}

export interface KvmGuestResult {
  name: string;
  exitReason: KvmExitReason;
  exitCode: number | null;
  /** Guest debug-port lines, without the `[name]` prefix. */
  output: string[];
  /** Everything the runner wrote on stderr (errors, notes, the exit line). */
  stderr: string;
  result: GuestResult | null;
  /** The guest reported `RESULT ok` after verifying its data. */
  verified: boolean;
  /** MARK lines, µs on the runner's CLOCK_MONOTONIC. */
  marks: Record<string, number>;
  /** Verified bytes per second of the write+read-back phase, when the guest ran one. */
  bytesPerSecond: number | null;
  counters: KvmRunnerCounters | null;
  /** Device resets the supervisor told this guest about (its own fault, or a watchdog). */
  resets: { device: string; reason: string }[];
}

export interface KvmGuestHandle {
  readonly name: string;
  readonly pid: number | undefined;
  readonly output: GuestOutput;
  readonly done: Promise<KvmGuestResult>;
  /** Resolves with the next guest line matching `re` (or rejects when the guest stops first). */
  waitForLine(re: RegExp): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
}

function runnerArgs(opts: KvmGuestOptions): string[] {
  const image = opts.image ?? GUEST_IMAGES.ataDriver;
  const args = ['--name', opts.name, '--stamp'];
  if (opts.flat) {
    args.push('--flat', image, '--load-addr', String(opts.flat.loadAddr));
    if (opts.flat.entry !== undefined) args.push('--entry', String(opts.flat.entry));
    if (opts.flat.realMode) args.push('--real-mode');
  } else args.push('--kernel', image);
  if (opts.cmdline) args.push('--cmdline', opts.cmdline);
  if (opts.memoryMiB) args.push('--mem', String(opts.memoryMiB));
  if (opts.connect) args.push('--connect', opts.connect);
  if (opts.kvmDev) args.push('--kvm-dev', opts.kvmDev);
  return args;
}

function parseCounters(stderr: string): KvmRunnerCounters | null {
  const m = /exit reason=\S+ code=\d+ exits=(\d+) io=(\d+) mmio=(\d+) local=(\d+) forwarded=(\d+)/.exec(stderr);
  if (!m) return null;
  return { exits: +m[1], io: +m[2], mmio: +m[3], local: +m[4], forwarded: +m[5] };
}

/** Starts one guest; `done` resolves when the runner exits (never rejects for guest failures). */
export function startKvmGuest(opts: KvmGuestOptions): KvmGuestHandle {
  if (!existsSync(KVM_RUNNER)) throw new KvmRunnerError(`${KVM_RUNNER} is missing: run \`make -C native\` (npm install builds it)`);
  const image = opts.image ?? GUEST_IMAGES.ataDriver;
  if (!existsSync(image)) throw new KvmRunnerError(`guest image ${image} is missing: run \`make -C native\``);
  const env = opts.token !== undefined ? { ...process.env, MUXVISOR_TOKEN: opts.token } : process.env;
  const child: ChildProcess = spawn(KVM_RUNNER, runnerArgs(opts), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const output = newGuestOutput();
  const waiters = new Set<{ re: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }>();
  let stderr = '';
  let timedOut = false;
  let pending = '';
  const prefix = /^\[[^\]@]*?(?: @(\d+))?\] (.*)$/;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const raw = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = prefix.exec(raw);
      const line = m ? m[2] : raw;
      const at = m?.[1] ? Number(m[1]) : Number(process.hrtime.bigint() / 1000n);
      addGuestLine(output, line, at);
      opts.onLine?.(line);
      for (const w of waiters) if (w.re.test(line)) (waiters.delete(w), w.resolve(line));
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
  }, opts.timeoutMs ?? 120_000);
  const done = new Promise<KvmGuestResult>((resolveDone, rejectDone) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      rejectDone(new KvmRunnerError(`cannot start ${KVM_RUNNER}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let exitReason: KvmExitReason = code !== null && code in EXIT_CODES ? EXIT_CODES[code] : 'crashed';
      if (timedOut) exitReason = 'timeout';
      for (const w of waiters) w.reject(new KvmRunnerError(`guest ${opts.name} stopped (${exitReason}${signal ? `, ${signal}` : ''}) before a line matched ${w.re}`));
      waiters.clear();
      resolveDone({
        name: opts.name,
        exitReason,
        exitCode: code,
        output: output.lines,
        stderr,
        result: output.result,
        verified: isVerified(output.result),
        marks: output.marks,
        bytesPerSecond: verifiedBytesPerSecond(output),
        counters: parseCounters(stderr),
        resets: [...stderr.matchAll(/device (\S+) was reset: (.*)/g)].map((m) => ({ device: m[1], reason: m[2] })),
      });
    });
  });
  return {
    name: opts.name,
    pid: child.pid,
    output,
    done,
    waitForLine: (re) => {
      const seen = output.lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((res, rej) => waiters.add({ re, resolve: res, reject: rej }));
    },
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Options from a config guest's `run: {type: 'kvm', image, memoryMiB, options: {cmdline}}`. */
export function kvmGuestOptionsFromRun(name: string, run: { image: string; memoryMiB?: number; options?: Record<string, unknown> }): KvmGuestOptions {
  const cmdline = run.options?.cmdline;
  if (cmdline !== undefined && typeof cmdline !== 'string') throw new KvmRunnerError(`guest ${name}: run.options.cmdline must be a string`);
  return { name, image: run.image, memoryMiB: run.memoryMiB, cmdline };
}

export interface RunKvmGuestOptions extends KvmGuestOptions {
  /**
   * In-process mode: the supervisor's attachLocalGuest (bound). The guest then runs in
   * this process through the N-API addon and each exit is answered without a socket;
   * `connect` is ignored. Without it, a helper process speaks the channel protocol.
   */
  attach?: import('./kvm-inproc.ts').AttachLocal;
}

/**
 * Boots one KVM guest to the end (`demo --trap kvm`, the bench, tests). Resolves when the
 * guest stops; `verified` is true when it reported `RESULT ok` after checking its data.
 */
export async function runKvmGuest(opts: RunKvmGuestOptions): Promise<KvmGuestResult> {
  if (opts.attach) {
    const { startKvmGuestInProcess } = await import('./kvm-inproc.ts');
    return startKvmGuestInProcess({ ...opts, attach: opts.attach }).done;
  }
  return startKvmGuest(opts).done;
}
