// What a KVM guest is, whichever way it runs (the helper process in kvm-process.ts, the
// in-process addon in kvm-inproc.ts): its images, options, result and errors, and whether
// this machine can run one at all.

import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestOutput, GuestResult } from './kvm-output.ts';

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

/** Options from a config guest's `run: {type: 'kvm', image, memoryMiB, options: {cmdline}}`. */
export function kvmGuestOptionsFromRun(name: string, run: { image: string; memoryMiB?: number; options?: Record<string, unknown> }): KvmGuestOptions {
  const cmdline = run.options?.cmdline;
  if (cmdline !== undefined && typeof cmdline !== 'string') throw new KvmRunnerError(`guest ${name}: run.options.cmdline must be a string`);
  return { name, image: run.image, memoryMiB: run.memoryMiB, cmdline };
}
