// Several scripted guests share the real ATA model through the supervisor and the MUX
// (machines/ata, round-robin), as the disk demo wires them. The backend is a MemoryBackend
// the test holds (its bytes and `.calls` counters are the physical disk), or the device
// registry's own `ata` factory on a raw image file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { MemoryBackend } from '../../src/backends/memory.ts';
import { AtaDevice } from '../../src/devices/ata/index.ts';
import { DeviceRegistry } from '../../src/devices/registry.ts';
import { Supervisor, type LocalGuest } from '../../src/supervisor.ts';
import { muxRouterFactory } from '../../src/mux/router-factory.ts';
import { realTimers, type MuxEngine, type MuxStats, type Timers } from '../../src/mux/engine.ts';
import { AtaDriver } from '../../src/guests/ata-driver.ts';
import type { PortIo } from '../../src/guests/port.ts';
import { LatchedBackend } from './ata-mux-engine.ts';

export const DMA_BASE = 0x10_0000;
export const DMA_BYTES = 0x4_0000;

export interface GuestSpec {
  name: string;
  /** Partition window; none = shared mode (the whole disk). */
  window?: { startLba: number; sectors: number };
}

export interface RigGuest {
  name: string;
  guest: LocalGuest;
  driver: AtaDriver;
  dma: Uint8Array;
  /** Every virtual IRQ edge this guest saw: [line, level]. */
  irqs: Array<[number, boolean]>;
  resets: string[];
}

export interface AtaRig {
  sup: Supervisor;
  /** The physical disk (memory backend only); hold() keeps the drive BSY until release(). */
  blk: LatchedBackend | null;
  /** The device model (memory backend only): for diagnostics, never for a test's verdict. */
  device(): AtaDevice | null;
  engine(): MuxEngine;
  stats(): MuxStats;
  guests: Map<string, RigGuest>;
  g(name: string): RigGuest;
  close(): Promise<void>;
  /** Watchdog timers armed and not cleared (manualWatchdog). */
  heldWatchdogs(): HeldTimer[];
  /** Fire the armed watchdog timers now, as if the deadline had passed; returns how many fired. */
  fireWatchdogs(): number;
}

export interface RigOptions {
  guests: GuestSpec[];
  /** Physical disk size in sectors (memory backend). */
  sectors?: number;
  /** Device properties (e.g. deadlineNs); they reach the router factory, and the `ata` factory on `file`. */
  properties?: Record<string, unknown>;
  /**
   * 'memory' (default): our MemoryBackend; 'file': the registry's `ata` kind on a raw image of
   * `sizeMiB`; 'qemu': QEMU's own IDE (kind `qemu-ide`) over qtest on the raw image `image`.
   */
  backend?: 'memory' | 'file' | 'qemu';
  sizeMiB?: number;
  image?: string;
  /** Round-robin quantum (ns). */
  quantumNs?: number;
  /** Attach the local guests (default true); false: the test attaches them itself. */
  attach?: boolean;
  /**
   * Hold the MUX's watchdog timers (those armed with the deadline) until the test calls
   * fireWatchdogs(): a loaded machine then cannot cut off a guest whose normal command was
   * merely descheduled past a short deadline. Other timers stay real.
   */
  manualWatchdog?: boolean;
}

/** A watchdog timer the MUX armed, held for the test. */
export interface HeldTimer {
  delayNs: number;
  fn: () => void;
  cleared: boolean;
}

export async function openAtaRig(opts: RigOptions): Promise<AtaRig> {
  let engine: MuxEngine | null = null;
  let blk: LatchedBackend | null = null;
  let device: AtaDevice | null = null;
  let tmp: string | null = null;
  const registry = new DeviceRegistry();
  let backend: Record<string, unknown>;
  let kind = 'ata';
  if (opts.backend === 'qemu') {
    if (!opts.image) throw new Error('ata-mux rig: the qemu backend needs an image');
    kind = 'qemu-ide';
    backend = { type: 'qemu', image: opts.image };
  } else if ((opts.backend ?? 'memory') === 'memory') {
    const disk = new LatchedBackend(opts.sectors ?? 4096);
    blk = disk;
    registry.register('ata', (ctx) => (device = new AtaDevice(ctx.edges, disk)));
    backend = { type: 'memory', sizeMiB: ((opts.sectors ?? 4096) * 512) / 2 ** 20 };
  } else {
    tmp = mkdtempSync(join(tmpdir(), 'muxvisor-ata-mux-'));
    backend = { type: 'file', path: join(tmp, 'disk.img'), sizeMiB: opts.sizeMiB ?? 2, create: true };
  }
  const config = parseConfig(
    {
      devices: [
        {
          id: 'disk0',
          kind,
          backend,
          properties: opts.properties ?? {},
          policy: { name: 'round-robin', options: { quantumNs: opts.quantumNs ?? 200_000 } },
        },
      ],
      guests: opts.guests.map((g) => ({
        name: g.name,
        run: { type: 'scripted', driver: 'ata' },
        // The rig tests the MUX: its guests may overlap on purpose (a guest without a window
        // shares the whole disk), so every grant says so (src/config/windows.ts).
        grants: [g.window ? { device: 'disk0', window: g.window, shared: true } : { device: 'disk0', shared: true }],
      })),
    },
    'ata-mux test config',
  );
  const deadlineNs = typeof opts.properties?.deadlineNs === 'number' ? opts.properties.deadlineNs : 2_000_000_000;
  const held: HeldTimer[] = [];
  const timers: Timers = {
    set: (fn, delayNs) => {
      if (!opts.manualWatchdog || delayNs !== deadlineNs) return realTimers.set(fn, delayNs);
      const t: HeldTimer = { delayNs, fn, cleared: false };
      held.push(t);
      return t;
    },
    clear: (h) => {
      if (held.includes(h as HeldTimer)) (h as HeldTimer).cleared = true;
      else realTimers.clear(h);
    },
  };
  const createRouter = await muxRouterFactory(config, { timers, onEngine: (_id, e) => (engine = e) });
  const sup = new Supervisor({ config, registry, createRouter });
  await sup.start();
  const guests = new Map<string, RigGuest>();
  const rig: AtaRig = {
    sup,
    blk,
    device: () => device,
    engine: () => {
      if (!engine) throw new Error('ata-mux rig: no MUX engine was made for disk0');
      return engine;
    },
    stats: () => rig.engine().stats(),
    guests,
    heldWatchdogs: () => held.filter((t) => !t.cleared),
    fireWatchdogs: () => {
      const live = held.splice(0).filter((t) => !t.cleared);
      for (const t of live) t.fn();
      return live.length;
    },
    g: (name) => {
      const g = guests.get(name);
      if (!g) throw new Error(`ata-mux rig: no attached guest ${name}`);
      return g;
    },
    async close() {
      await sup.close();
      await blk?.close();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
  if (opts.attach ?? true) for (const g of opts.guests) await attachGuest(rig, g.name);
  return rig;
}

/** Attach a configured guest as a local guest with DMA memory and a driver; probes PCI for the bus master. */
export async function attachGuest(rig: AtaRig, name: string): Promise<RigGuest> {
  const dma = new Uint8Array(DMA_BYTES);
  const guest = rig.sup.attachLocalGuest(name, { memory: { base: DMA_BASE, bytes: dma } });
  const irqs: Array<[number, boolean]> = [];
  const resets: string[] = [];
  guest.onIrq((line, level) => irqs.push([line, level]));
  guest.onReset((dev, reason) => resets.push(`${dev}: ${reason}`));
  const driver = new AtaDriver(guest, { base: DMA_BASE, buf: dma });
  if (!(await driver.probePci())) throw new Error(`ata-mux rig: ${name} found no PIIX bus master in its PCI scan`);
  const g: RigGuest = { name, guest, driver, dma, irqs, resets };
  rig.guests.set(name, g);
  return g;
}

/** Sector content that names its writer and LBA, so a misplaced or foreign sector is obvious. */
export function tagged(tag: number, lba: number, count = 1): Uint8Array {
  const out = new Uint8Array(512 * count);
  for (let s = 0; s < count; s++)
    for (let i = 0; i < 512; i++) out[s * 512 + i] = i < 4 ? [tag, (lba + s) & 0xff, ((lba + s) >> 8) & 0xff, 0xa5][i] : (tag * 7 + (lba + s) * 13 + i) & 0xff;
  return out;
}

/** Bytes of physical sectors [lba, lba+count) of a memory backend. */
export function physical(blk: MemoryBackend, lba: number, count = 1): Uint8Array {
  return blk.data.subarray(lba * 512, (lba + count) * 512);
}

// ---- raw register sequences (what a driver does that AtaDriver has no method for) ----------

export const CMD = 0x1f0;
const CTL = 0x3f6;

/** Poll the alternate status until BSY clears; returns it. */
export async function waitNotBusy(io: PortIo): Promise<number> {
  for (let i = 0; i < 100_000; i++) {
    const st = await io.inb(CTL);
    if (!(st & 0x80)) return st;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('ata-mux raw: device stayed busy');
}

export interface RawTaskfile {
  /** Previous (HOB) bytes, written first for LBA48: [feature, nsect, lbal, lbam, lbah]. */
  hob?: number[];
  cur: number[];
  device: number;
}

/** Write a task file (HOB bytes first), then the command; wait for BSY to clear; return the status read. */
export async function rawCommand(io: PortIo, tf: RawTaskfile, op: number): Promise<number> {
  await waitNotBusy(io);
  if (tf.hob) for (let i = 0; i < 5; i++) await io.outb(CMD + 1 + i, tf.hob[i]);
  for (let i = 0; i < 5; i++) await io.outb(CMD + 1 + i, tf.cur[i]);
  await io.outb(CMD + 6, tf.device);
  await io.outb(CMD + 7, op);
  await waitNotBusy(io);
  return io.inb(CMD + 7);
}

/** IDENTIFY DEVICE: the 512 raw bytes, ending the command with its status read. */
export async function identifyRaw(io: PortIo): Promise<Uint8Array> {
  const st = await rawCommand(io, { cur: [0, 0, 0, 0, 0], device: 0xa0 }, 0xec);
  if (!(st & 0x08)) throw new Error(`IDENTIFY: no DRQ (status 0x${st.toString(16)})`);
  const data = await io.insw(CMD, 256);
  await waitNotBusy(io);
  await io.inb(CMD + 7);
  return data;
}

/** READ NATIVE MAX ADDRESS (F8h) or its EXT form (27h): the address the device reports. */
export async function readNativeMax(io: PortIo, ext: boolean): Promise<{ max: number; status: number }> {
  const status = await rawCommand(io, { cur: [0, 0, 0, 0, 0], device: 0xe0 }, ext ? 0x27 : 0xf8);
  const lo = (await io.inb(CMD + 3)) + (await io.inb(CMD + 4)) * 2 ** 8 + (await io.inb(CMD + 5)) * 2 ** 16;
  if (!ext) return { max: lo + ((await io.inb(CMD + 6)) & 0x0f) * 2 ** 24, status };
  await io.outb(CTL, 0x80); // HOB: read the previous bytes
  const hi = (await io.inb(CMD + 3)) + (await io.inb(CMD + 4)) * 2 ** 8 + (await io.inb(CMD + 5)) * 2 ** 16;
  await io.outb(CTL, 0x00);
  return { max: lo + hi * 2 ** 24, status };
}

/** Error register after a failed command (the driver's acknowledgement of the error). */
export async function readError(io: PortIo): Promise<number> {
  return io.inb(CMD + 1);
}

export const identifyWord = (id: Uint8Array, w: number): number => id[2 * w] | (id[2 * w + 1] << 8);

/** '' when equal, else where they first differ (vitest's deep equality is slow on big arrays). */
export function bytesDiff(got: Uint8Array, want: Uint8Array): string {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < got.length; i++)
    if (got[i] !== want[i]) return `byte ${i} (sector ${i >> 9}): 0x${got[i].toString(16)}, expected 0x${want[i].toString(16)}`;
  return '';
}
