// KVM guests inside the supervisor's process (native/kvm/build/muxvisor_kvm.node): the
// JS thread enters the guest with run() and answers each port/MMIO exit through the
// supervisor's in-process guest path (attachLocalGuest), so an exit costs no socket round
// trip. Guest RAM is an ArrayBuffer the device's bus-master DMA reaches directly.
// Several guests interleave: run() returns at least every 2 ms (a periodic kick), and each guest loop
// yields to the event loop when it has work (disk I/O completions, timers, other guests).

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Access, Reply, Size } from '../access.ts';
import type { LocalGuest, LocalGuestOptions } from '../supervisor.ts';
import { addGuestLine, isVerified, newGuestOutput, verifiedBytesPerSecond } from './kvm-output.ts';
import { GUEST_IMAGES, type KvmExitReason, type KvmGuestResult, KvmRunnerError } from './kvm-guest.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const KVM_ADDON = join(ROOT, 'native/kvm/build/muxvisor_kvm.node');

interface Offsets {
  exitReason: number;
  ioDirection: number;
  ioSize: number;
  ioPort: number;
  ioCount: number;
  ioDataOffset: number;
  mmioPhysAddr: number;
  mmioData: number;
  mmioLen: number;
  mmioIsWrite: number;
}

type Handle = { readonly __kvmGuest: unique symbol };

interface Addon {
  create(o: { name: string; kernel: string; cmdline?: string; memMiB?: number; kvmDev?: string }): Handle;
  memory(h: Handle): ArrayBuffer;
  runPage(h: Handle): ArrayBuffer;
  run(h: Handle, peek?: boolean): number;
  line(h: Handle): string;
  irq(h: Handle, line: number, level: boolean): void;
  stats(h: Handle): { exits: number; io: number; mmio: number; local: number };
  close(h: Handle): void;
  offsets(): Offsets;
  loopBusy(): boolean;
}

// run() results (addon.c enum run_result); RUN_STOP + the runner's stop code.
const RUN_YIELD = 0;
const RUN_IO = 1;
const RUN_MMIO = 2;
const RUN_LINE = 3;
const RUN_SLEEP = 4; // HLT with IF=1: waiting for an interrupt
const RUN_STOP = 100;
/** A sleeping guest is looked at again after this long even without an IRQ (its PIT, LAPIC timer). */
const SLEEP_RECHECK_MS = 1;
const STOP_REASONS: Record<number, KvmExitReason> = { 0: 'hlt', 10: 'shutdown', 11: 'internal-error' };
const KVM_EXIT_IO_OUT = 1;

let addon: Addon | null = null;
function loadAddon(): Addon {
  if (addon) return addon;
  if (!existsSync(KVM_ADDON)) throw new KvmRunnerError(`${KVM_ADDON} is missing: run \`make -C native\` (npm install builds it)`);
  addon = createRequire(import.meta.url)(KVM_ADDON) as Addon;
  return addon;
}

/** The supervisor's way in for an in-process guest (Supervisor.attachLocalGuest). */
export type AttachLocal = (name: string, options: LocalGuestOptions) => LocalGuest;

export interface InProcessKvmOptions {
  name: string;
  attach: AttachLocal;
  image?: string;
  cmdline?: string;
  memoryMiB?: number;
  kvmDev?: string;
  timeoutMs?: number;
  /**
   * How often to ask whether the event loop has work (I/O completions, timers, other
   * guests), µs (default 50); the loop yields then, and at least every 2 ms. A guest
   * polling a busy status keeps this thread, and the backend I/O it waits for completes
   * only when the event loop turns.
   */
  checkUs?: number;
  onLine?: (line: string) => void;
}

export interface InProcessKvmHandle {
  readonly name: string;
  readonly done: Promise<KvmGuestResult>;
  /** Stops the guest at its next exit or slice end (exitReason `terminated`). */
  kill(): void;
  waitForLine(re: RegExp): Promise<string>;
}

const nowUs = (): number => performance.now() * 1000;
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

function readLE(view: DataView, at: number, size: number): number | bigint {
  if (size === 1) return view.getUint8(at);
  if (size === 2) return view.getUint16(at, true);
  if (size === 4) return view.getUint32(at, true);
  return view.getBigUint64(at, true);
}

function writeLE(view: DataView, at: number, size: number, v: number | bigint): void {
  if (size === 1) view.setUint8(at, Number(v) & 0xff);
  else if (size === 2) view.setUint16(at, Number(v) & 0xffff, true);
  else if (size === 4) view.setUint32(at, Number(BigInt(v) & 0xffff_ffffn), true);
  else view.setBigUint64(at, BigInt(v), true);
}

/** Starts a KVM guest in this process; throws KvmRunnerError (code ENOKVM) without usable KVM. */
export function startKvmGuestInProcess(opts: InProcessKvmOptions): InProcessKvmHandle {
  const kvm = loadAddon();
  const image = opts.image ?? GUEST_IMAGES.ataDriver;
  let h: Handle;
  try {
    h = kvm.create({ name: opts.name, kernel: image, cmdline: opts.cmdline ?? '', memMiB: opts.memoryMiB ?? 32, kvmDev: opts.kvmDev });
  } catch (e) {
    throw new KvmRunnerError(`guest ${opts.name}: ${(e as Error).message}`);
  }
  const off = kvm.offsets();
  const ram = new Uint8Array(kvm.memory(h));
  const page = kvm.runPage(h);
  const view = new DataView(page);
  const pageBytes = new Uint8Array(page);
  const output = newGuestOutput();
  const waiters = new Set<{ re: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }>();
  let killed = false;
  let guest: LocalGuest;
  try {
    guest = opts.attach(opts.name, { memory: { base: 0, bytes: ram } });
  } catch (e) {
    kvm.close(h);
    throw e;
  }
  // A sleeping guest's loop waits for its next IRQ instead of holding the thread in KVM_RUN.
  let irqCount = 0;
  let wake: (() => void) | null = null;
  const unsubscribe = guest.onIrq((line, level) => {
    kvm.irq(h, line, level);
    irqCount++;
    wake?.();
  });
  const sleepUntilIrq = (seen: number): Promise<void> =>
    irqCount !== seen || killed
      ? Promise.resolve()
      : new Promise((res) => {
          const t = setTimeout(() => ((wake = null), res()), SLEEP_RECHECK_MS);
          wake = () => {
            clearTimeout(t);
            wake = null;
            res();
          };
        });
  const resets: { device: string; reason: string }[] = [];
  const unsubscribeReset = guest.onReset((device, reason) => resets.push({ device, reason }));

  function ioAccess(): { acc: Access; at: number } {
    const port = view.getUint16(off.ioPort, true);
    const size = view.getUint8(off.ioSize) as Size;
    const count = view.getUint32(off.ioCount, true);
    const at = view.getUint32(off.ioDataOffset, true); // an offset into the page: the high half is 0
    const write = view.getUint8(off.ioDirection) === KVM_EXIT_IO_OUT;
    const acc: Access = { space: 'pio', addr: port, size, dir: write ? 'write' : 'read' };
    if (count > 1) {
      acc.count = count;
      if (write) acc.data = pageBytes.slice(at, at + count * size);
    } else if (write) acc.value = readLE(view, at, size);
    return { acc, at };
  }

  function complete(acc: Access, rep: Reply, at: number): void {
    if (acc.dir === 'write') return;
    const count = acc.count ?? 1;
    if (count > 1) {
      const want = count * acc.size;
      pageBytes.fill(0xff, at, at + want); // a short answer reads as all-ones
      if (rep.data) pageBytes.set(rep.data.subarray(0, want), at);
    } else writeLE(view, at, acc.size, rep.value);
  }

  async function loop(): Promise<KvmExitReason> {
    const deadline = nowUs() + (opts.timeoutMs ?? 120_000) * 1000;
    const checkUs = opts.checkUs ?? 50;
    let lastYield = nowUs();
    let lastCheck = lastYield;
    let sleeping = false;
    for (;;) {
      const irqsBefore = irqCount;
      const r = kvm.run(h, sleeping);
      sleeping = r === RUN_SLEEP;
      if (sleeping) {
        if (killed) return 'terminated';
        if (nowUs() > deadline) return 'timeout';
        await sleepUntilIrq(irqsBefore);
        lastYield = lastCheck = nowUs();
        continue;
      }
      if (r === RUN_IO) {
        const { acc, at } = ioAccess();
        complete(acc, await guest.access(acc), at);
      } else if (r === RUN_MMIO) {
        const size = view.getUint32(off.mmioLen, true) as Size;
        const write = view.getUint8(off.mmioIsWrite) !== 0;
        const acc: Access = { space: 'mmio', addr: Number(view.getBigUint64(off.mmioPhysAddr, true)), size, dir: write ? 'write' : 'read' };
        if (write) acc.value = readLE(view, off.mmioData, size);
        complete(acc, await guest.access(acc), off.mmioData);
      } else if (r === RUN_LINE) {
        const line = kvm.line(h);
        addGuestLine(output, line, nowUs());
        opts.onLine?.(line);
        for (const w of waiters) if (w.re.test(line)) (waiters.delete(w), w.resolve(line));
      } else if (r >= RUN_STOP) {
        return STOP_REASONS[r - RUN_STOP] ?? 'crashed';
      }
      // Other guests, the disk backend and timers share this thread: yield at the end of
      // a slice (RUN_YIELD), when the event loop has work, and at least every 2 ms.
      const now = nowUs();
      let yieldNow = r === RUN_YIELD || now - lastYield > 2000;
      if (!yieldNow && now - lastCheck > checkUs) {
        lastCheck = now;
        yieldNow = kvm.loopBusy();
      }
      if (yieldNow) {
        if (killed) return 'terminated';
        if (now > deadline) return 'timeout';
        await yieldToEventLoop();
        lastYield = lastCheck = nowUs();
      }
    }
  }

  const done = (async (): Promise<KvmGuestResult> => {
    let exitReason: KvmExitReason;
    let stderr = '';
    try {
      exitReason = await loop();
    } catch (e) {
      exitReason = 'host-error';
      stderr = (e as Error).message;
    }
    const stats = kvm.stats(h);
    unsubscribe();
    unsubscribeReset();
    guest.detach(exitReason === 'hlt' ? 'bye' : exitReason === 'terminated' || exitReason === 'timeout' ? 'disconnect' : 'crash');
    kvm.close(h);
    for (const w of waiters) w.reject(new KvmRunnerError(`guest ${opts.name} stopped (${exitReason}) before a line matched ${w.re}`));
    waiters.clear();
    return {
      name: opts.name,
      exitReason,
      exitCode: null,
      output: output.lines,
      stderr,
      result: output.result,
      verified: isVerified(output.result),
      marks: output.marks,
      bytesPerSecond: verifiedBytesPerSecond(output),
      counters: { exits: stats.exits, io: stats.io, mmio: stats.mmio, local: stats.local, forwarded: stats.io + stats.mmio - stats.local },
      resets,
    };
  })();

  return {
    name: opts.name,
    done,
    kill: () => {
      killed = true;
      wake?.();
      // Detaching makes the router drop an access of ours it holds stalled, so the loop
      // reaches its next check even when this guest waits for the device.
      guest.detach('disconnect');
    },
    waitForLine: (re) => {
      const seen = output.lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((res, rej) => waiters.add({ re, resolve: res, reject: rej }));
    },
  };
}
