// QEMU's own PIIX3 IDE controller as the physical device, driven over qtest.
//
// Registers are forwarded to QEMU's ports (primary channel 0x1F0/0x3F6, bus master at
// the BAR4 base we program). Two things cannot be forwarded as-is:
// - IRQ 14 arrives as qtest `IRQ raise/lower 14` lines and becomes edges.irq.
// - Bus-master DMA: QEMU's bus master reads/writes QEMU's RAM, but the PRD table and the
//   buffers live in the owner guest's memory (edges.dma). So a DMA start is bounced: the
//   guest's PRD table is walked (bounded), its buffers are copied into a bounce area of
//   QEMU RAM, a rewritten PRD table pointing there is handed to QEMU; when QEMU finishes
//   (or the guest stops the engine) device->memory data is copied back before the guest
//   can observe completion (the IRQ is held back, and every access settles first).
//   The guest always reads back its own PRD pointer.

import { statSync } from 'node:fs';
import { z } from 'zod';
import { QtestClient, QtestError, type QtestOptions } from '../backends/qtest.ts';
import type { DevSize, Device, DeviceDescription, DeviceEdges, DeviceMetrics, RegionInfo } from '../device.ts';
import {
  ATA_DMA_ACTIVE,
  ATA_DMA_CMD,
  ATA_DMA_ERR,
  ATA_DMA_INTR,
  ATA_DMA_START,
  ATA_DMA_STATUS,
  ATA_DMA_TABLE_OFS,
  ATA_DMA_WR,
  ATA_PRD_EOT,
  ATA_PRD_MAX_ENTRIES,
  ATA_PRD_SZ,
  ATA_REG_DEVCTL,
  ATA_REG_STATUS,
  ATA_SRST,
  ATA_BUSY,
  BMIDE_CHANNEL_STRIDE,
} from './ata/regs.ts';
import { walkPrdTable } from './ata/bmdma.ts';
import { enableCommand, programBar, SerialQueue } from './qemu-pci.ts';

/** PCI location of the PIIX3 IDE function on QEMU's `pc` machine: 00:01.1. */
export const PIIX_IDE_DEV = 1;
export const PIIX_IDE_FN = 1;
export const PIIX3_IDE_VENDOR = 0x8086;
export const PIIX3_IDE_DEVICE = 0x7010;

// PCI configuration registers used here (PCI Local Bus spec 3.0, Linux pci_regs.h).
const PCI_VENDOR_ID = 0x00; // vendor (low 16) and device id (high 16)
const PCI_COMMAND_IO = 0x1; // respond to I/O space
const PCI_COMMAND_MASTER = 0x4; // enable bus mastering (QEMU drops DMA without it)
const PCI_CLASS_REVISION = 0x08; // class code (high 24) and revision (low 8)
const BMIDE_BAR = 4; // BAR4: bus-master IDE I/O base on PIIX

/** Legacy ports of the primary channel. */
export const ATA_PRIMARY_CMD = 0x1f0;
export const ATA_PRIMARY_CTL = 0x3f6;
const IRQ_PRIMARY = 14;

// QEMU RAM layout of the bounce area (the CPU never runs, so all RAM is ours).
const BOUNCE_PRD_BASE = 0x10000; // one 4 KiB PRD table per channel
const BOUNCE_DATA_BASE = 0x200_0000; // 32 MiB per channel, from 32 MiB up
/** 512 entries x 64 KiB: every table the bounded walk accepts fits. */
const BOUNCE_DATA_SIZE = ATA_PRD_MAX_ENTRIES * 0x10000;
const MIN_QEMU_MEMORY_MIB = (BOUNCE_DATA_BASE + 2 * BOUNCE_DATA_SIZE) / 0x10_0000;

export const REGION_CMD = 0;
export const REGION_CTL = 1;
export const REGION_BMIDE = 2;

export interface QemuIdeOptions extends Omit<QtestOptions, 'image' | 'interceptIrq'> {
  /** Raw image attached as the primary master drive. */
  image: string;
  /** I/O base programmed into BAR4 (16 bytes, aligned); default 0xC000. */
  bmBase?: number;
}

interface Segment {
  guestAddr: number;
  len: number;
  bounceOffset: number;
}

interface InFlight {
  toMemory: boolean;
  segments: Segment[];
  /** QEMU's BM status INTR bit before the start: a stale INTR must not count as completion. */
  intrAtStart: boolean;
  /** Device->memory data was already copied back. */
  copiedBack: boolean;
}

interface Channel {
  /** PRD pointer as the guest wrote it (QEMU holds the bounce table's address instead). */
  prdShadow: number;
  /** Last BM command byte the guest wrote (start, direction). */
  cmdShadow: number;
  dma: InFlight | null;
  /** ERR/INTR bits set by the bounce path (a refused or malformed DMA), or-ed into status reads. */
  localStatus: number;
}

export class QemuIdeDevice implements Device {
  private readonly channels: Channel[] = [newChannel(), newChannel()];
  private readonly counters: Record<string, number> = {
    badAccess: 0, // access outside a region or straddling two registers
    dmaStarts: 0,
    dmaBadPrd: 0, // unterminated PRD table (no EOT within the walk bound)
    dmaRefused: 0, // edges.dma refused a PRD table read, a buffer read or a buffer write
    dmaCopiedBytes: 0,
  };
  private readonly queue = new SerialQueue();
  private qemuIrq = false;
  private irqHeld = false;
  private irqOut = false;
  private classRevision = 0x0101_8000;
  private readonly unsubscribe: () => void;
  /** Why the last DMA start failed (for the MUX's logs), or null. */
  lastDmaError: string | null = null;
  /** The drive's capacity as QEMU sees the raw image (whole sectors); null when unknown. */
  private readonly sectors: number | null;

  constructor(
    readonly client: QtestClient,
    private readonly edges: DeviceEdges,
    readonly bmBase = 0xc000,
    private readonly image = '',
  ) {
    if (bmBase % 16 !== 0 || bmBase <= 0 || bmBase > 0xfff0) throw new QtestError(`qemu-ide: bus-master base 0x${bmBase.toString(16)} must be a 16-byte aligned I/O port`);
    const offIrq = client.onIrq((line, level) => this.onQemuIrq(line, level));
    const offExit = client.onExit((err) => this.edges.log?.hostError('QEMU (the physical IDE over qtest)', err));
    this.unsubscribe = () => {
      offIrq();
      offExit();
    };
    this.sectors = imageSectors(image);
  }

  /** Start QEMU on `image`, program the PIIX IDE function and return the device. */
  static async open(edges: DeviceEdges, options: QemuIdeOptions): Promise<QemuIdeDevice> {
    const { bmBase, ...qtestOptions } = options;
    const memoryMiB = Math.max(options.memoryMiB ?? 128, MIN_QEMU_MEMORY_MIB);
    const client = await QtestClient.start({ ...qtestOptions, memoryMiB, interceptIrq: 'ioapic' });
    try {
      const dev = new QemuIdeDevice(client, edges, bmBase, options.image);
      await dev.init();
      return dev;
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  /**
   * No firmware runs (-S), so BAR4 is unassigned: place it and enable I/O decoding and bus
   * mastering. The legacy ports 0x1F0/0x3F6 are decoded by QEMU 7.2 regardless (measured).
   */
  async init(): Promise<void> {
    const c = this.client;
    const id = await c.pciConfigRead(PIIX_IDE_DEV, PIIX_IDE_FN, PCI_VENDOR_ID, 4);
    if (id !== ((PIIX3_IDE_DEVICE << 16) | PIIX3_IDE_VENDOR) >>> 0) {
      throw new QtestError(`qemu-ide: 00:01.1 is 0x${id.toString(16)}, expected PIIX3 IDE 8086:7010 (is the machine 'pc'?)`);
    }
    this.classRevision = await c.pciConfigRead(PIIX_IDE_DEV, PIIX_IDE_FN, PCI_CLASS_REVISION, 4);
    await programBar(c, PIIX_IDE_DEV, PIIX_IDE_FN, BMIDE_BAR, this.bmBase, true, 'qemu-ide');
    await enableCommand(c, PIIX_IDE_DEV, PIIX_IDE_FN, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
  }

  describe(): DeviceDescription {
    const regions: RegionInfo[] = [
      { name: 'cmd', space: 'pio', size: 8, legacyBase: ATA_PRIMARY_CMD },
      // One byte, as QEMU decodes it: 0x3F7 belongs to the floppy controller.
      { name: 'ctl', space: 'pio', size: 1, legacyBase: ATA_PRIMARY_CTL },
      { name: 'bmide', space: 'pio', size: 16, bar: 4 },
    ];
    return {
      kind: 'ata',
      regions,
      irq: IRQ_PRIMARY,
      pci: {
        vendor: PIIX3_IDE_VENDOR,
        device: PIIX3_IDE_DEVICE,
        revision: this.classRevision & 0xff,
        classCode: this.classRevision >>> 8,
        interruptPin: 0, // legacy mode: IRQ 14/15, no INTx pin
      },
      properties: [
        { name: 'image', value: this.image, help: 'raw image QEMU serves as the primary master drive' },
        ...(this.sectors !== null ? [{ name: 'sectors', value: this.sectors, help: 'capacity in 512-byte sectors (the raw image\'s size)' }] : []),
        { name: 'qemuPid', value: this.client.pid, help: 'process id of the QEMU that owns the real device model' },
        { name: 'bmBase', value: this.bmBase, help: 'I/O base programmed into QEMU\'s BAR4 (bus master), not what the guest sees' },
        { name: 'bounceBytes', value: BOUNCE_DATA_SIZE, help: 'largest DMA transfer per channel (QEMU RAM bounce buffer)' },
        { name: 'dataPath', value: 'pipelined qtest inw/outw', help: 'string PIO is one qtest command per element, pipelined' },
      ],
    };
  }

  read(region: number, offset: number, size: DevSize): Promise<number> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      if (port === null) return allOnes(size);
      await this.settleIfInFlight();
      if (region === REGION_BMIDE) return this.readBmide(offset, size);
      return this.client.in(size, port);
    });
  }

  write(region: number, offset: number, size: DevSize, value: number): Promise<void> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      if (port === null) return;
      await this.settleIfInFlight();
      const v = (value & maskOf(size)) >>> 0;
      if (region === REGION_BMIDE) return this.writeBmide(offset, size, v);
      return this.client.out(size, port, v);
    });
  }

  readString(region: number, offset: number, size: DevSize, count: number): Promise<Uint8Array> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      if (port === null || region === REGION_BMIDE) {
        if (port !== null) this.counters.badAccess++;
        return new Uint8Array(count * size).fill(0xff);
      }
      await this.settleIfInFlight();
      return this.client.inString(size, port, count);
    });
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): Promise<void> {
    return this.serial(async () => {
      const port = this.portOf(region, offset, size);
      if (port === null || region === REGION_BMIDE || data.length % size !== 0) {
        if (port !== null) this.counters.badAccess++;
        return;
      }
      await this.settleIfInFlight();
      return this.client.outString(size, port, data);
    });
  }

  /** Power-on-like reset: stop both bus masters, clear their status, SRST the drives. */
  reset(): Promise<void> {
    return this.serial(async () => {
      const c = this.client;
      for (let ch = 0; ch < 2; ch++) {
        const base = this.bmBase + ch * BMIDE_CHANNEL_STRIDE;
        await c.outb(base + ATA_DMA_CMD, 0);
        await c.outb(base + ATA_DMA_STATUS, ATA_DMA_ERR | ATA_DMA_INTR);
        this.channels[ch] = newChannel();
      }
      await c.outb(ATA_PRIMARY_CTL + ATA_REG_DEVCTL, ATA_SRST);
      await c.outb(ATA_PRIMARY_CTL + ATA_REG_DEVCTL, 0);
      // QEMU finishes SRST synchronously; the bound only protects against a wedged model.
      for (let i = 0; i < 1000 && (await c.inb(ATA_PRIMARY_CTL)) & ATA_BUSY; i++);
      // QEMU 7.2 raises IRQ 14 on SRST (measured); power-on state has it low, so acknowledge.
      await c.inb(ATA_PRIMARY_CMD + ATA_REG_STATUS);
      this.irqHeld = false;
      this.updateIrq();
    });
  }

  metrics(): DeviceMetrics {
    return { ...this.counters, qtestCommands: this.client.commandCount };
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.client.close();
  }

  // ---- addressing ----

  /** QEMU port of a region offset, or null (counted) when the access leaves the region or straddles registers. */
  private portOf(region: number, offset: number, size: number): number | null {
    const sizes = [8, 1, 16];
    const regionSize = sizes[region];
    if (regionSize === undefined || !Number.isInteger(offset) || offset < 0 || offset + size > regionSize) {
      this.counters.badAccess++;
      return null;
    }
    if (region === REGION_BMIDE) {
      // cmd/status (0..3) and the PRD pointer (4..7) are separate registers in QEMU too.
      const rel = offset % BMIDE_CHANNEL_STRIDE;
      if (rel < ATA_DMA_TABLE_OFS && rel + size > ATA_DMA_TABLE_OFS) {
        this.counters.badAccess++;
        return null;
      }
      return this.bmBase + offset;
    }
    return (region === REGION_CMD ? ATA_PRIMARY_CMD : ATA_PRIMARY_CTL) + offset;
  }

  /** Run guest accesses, IRQ settling and resets one at a time, in arrival order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  // ---- bus master registers ----

  private async readBmide(offset: number, size: DevSize): Promise<number> {
    const ch = this.channels[offset >= BMIDE_CHANNEL_STRIDE ? 1 : 0];
    const rel = offset % BMIDE_CHANNEL_STRIDE;
    if (rel >= ATA_DMA_TABLE_OFS) return ((ch.prdShadow >>> ((rel - ATA_DMA_TABLE_OFS) * 8)) & maskOf(size)) >>> 0;
    // QEMU keeps the command byte as written (start and direction bits); a failed start never reached it.
    if (rel === ATA_DMA_CMD && size === 1) return ch.cmdShadow & (ATA_DMA_START | ATA_DMA_WR);
    let v = await this.client.in(size, this.bmBase + offset);
    if (rel === ATA_DMA_STATUS && size === 1 && ch.localStatus) v = (v | ch.localStatus) & ~ATA_DMA_ACTIVE;
    return v;
  }

  private async writeBmide(offset: number, size: DevSize, value: number): Promise<void> {
    const chIndex = offset >= BMIDE_CHANNEL_STRIDE ? 1 : 0;
    const ch = this.channels[chIndex];
    const rel = offset % BMIDE_CHANNEL_STRIDE;
    const port = this.bmBase + offset;
    if (rel >= ATA_DMA_TABLE_OFS) {
      // Keep the guest's pointer; QEMU gets the bounce table's address at start. Bits 1:0 read as 0.
      const shift = (rel - ATA_DMA_TABLE_OFS) * 8;
      const mask = (maskOf(size) << shift) >>> 0;
      ch.prdShadow = (((ch.prdShadow & ~mask) | ((value << shift) & mask)) & ~3) >>> 0;
      return;
    }
    // QEMU's PIIX bus master takes byte accesses only; pass others through unchanged.
    if (size !== 1 || (rel !== ATA_DMA_CMD && rel !== ATA_DMA_STATUS)) return this.client.out(size, port, value);
    if (rel === ATA_DMA_STATUS) {
      ch.localStatus &= ~(value & (ATA_DMA_ERR | ATA_DMA_INTR)); // write 1 to clear
      this.updateIrq();
      return this.client.outb(port, value);
    }
    const wasStarted = (ch.cmdShadow & ATA_DMA_START) !== 0;
    const starts = (value & ATA_DMA_START) !== 0;
    ch.cmdShadow = value;
    if (starts && !wasStarted) return this.startDma(chIndex, value);
    await this.client.outb(port, value);
    if (!starts && wasStarted && ch.dma) {
      // Stopped (QEMU cancels a running transfer synchronously): whatever it wrote so far
      // reaches the guest, like a real engine's partial transfer.
      await this.copyBack(ch);
      ch.dma = null;
    }
  }

  // ---- DMA bounce ----

  private async startDma(chIndex: number, cmdValue: number): Promise<void> {
    const ch = this.channels[chIndex];
    const port = this.bmBase + chIndex * BMIDE_CHANNEL_STRIDE;
    this.counters.dmaStarts++;
    const toMemory = (cmdValue & ATA_DMA_WR) !== 0;
    const segments = await this.walkPrd(ch.prdShadow);
    if (!Array.isArray(segments)) return this.failDma(chIndex, cmdValue, segments.reason);

    const bounceData = BOUNCE_DATA_BASE + chIndex * BOUNCE_DATA_SIZE;
    const bouncePrd = BOUNCE_PRD_BASE + chIndex * 0x1000;
    // Copy the guest's buffers in both directions: a disk write needs the data, and for a
    // disk read the bytes QEMU does not overwrite must stay the guest's own (never a
    // previous transfer's data, which may belong to another guest).
    const reads = await Promise.all(segments.map((s) => this.edges.dma.read(s.guestAddr, s.len)));
    if (reads.some((d) => d === null)) {
      this.counters.dmaRefused++;
      return this.failDma(chIndex, cmdValue, 'a buffer the DMA window refused');
    }
    // Record the transfer before QEMU can possibly finish it: an IRQ line parsed in the same
    // socket read as our answers must already see it (and be held until the copy-back).
    const dma: InFlight = { toMemory, segments, intrAtStart: true, copiedBack: !toMemory };
    ch.dma = dma;
    const table = new Uint8Array(segments.length * ATA_PRD_SZ);
    const view = new DataView(table.buffer);
    const writes: Promise<void>[] = [];
    segments.forEach((s, i) => {
      writes.push(this.client.writeMem(bounceData + s.bounceOffset, reads[i]!));
      view.setUint32(i * ATA_PRD_SZ, bounceData + s.bounceOffset, true);
      // Same byte count encoding as the guest's (0 = 64 KiB), so QEMU sees the same table shape.
      view.setUint32(i * ATA_PRD_SZ + 4, (s.len & 0xfffe) | (i === segments.length - 1 ? ATA_PRD_EOT : 0), true);
    });
    writes.push(this.client.writeMem(bouncePrd, table));
    writes.push(this.client.outl(port + ATA_DMA_TABLE_OFS, bouncePrd));
    const status = this.client.inb(port + ATA_DMA_STATUS);
    writes.push(this.client.outb(port + ATA_DMA_CMD, cmdValue));
    // Settling runs after this (serialized), so it always sees the real value.
    dma.intrAtStart = ((await status) & ATA_DMA_INTR) !== 0;
    await Promise.all(writes);
  }

  /**
   * The guest's PRD table as segments with their place in the bounce area, walked to its
   * end-of-table by the model's walker (src/devices/ata/bmdma.ts: the same 512-entry and
   * 64 KiB-boundary bounds, 0 = 64 KiB); QEMU's bus master then ends the transfer where the
   * command's length ends. A reason string when the table is refused or malformed.
   */
  private async walkPrd(table: number): Promise<Segment[] | { reason: string }> {
    const walk = await walkPrdTable(this.edges.dma, table);
    if (!walk.ok) {
      if (walk.refused) this.counters.dmaRefused++;
      else this.counters.dmaBadPrd++;
      return { reason: walk.reason };
    }
    let offset = 0;
    return walk.segments.map((s) => {
      const seg = { guestAddr: s.addr, len: s.len, bounceOffset: offset };
      offset += s.len;
      return seg;
    });
  }

  /**
   * A DMA the bounce path cannot perform ends like a PCI master abort: the engine is not
   * started in QEMU, BM status shows ERR and INTR without ACTIVE, and the IRQ line rises
   * so the guest's handler looks at it (Linux: AC_ERR_HOST_BUS, then error handling).
   */
  private async failDma(chIndex: number, cmdValue: number, why: string): Promise<void> {
    const ch = this.channels[chIndex];
    this.lastDmaError = `channel ${chIndex}: PRD table at 0x${ch.prdShadow.toString(16)}: ${why}`;
    ch.localStatus |= ATA_DMA_ERR | ATA_DMA_INTR;
    ch.dma = null;
    await this.client.outb(this.bmBase + chIndex * BMIDE_CHANNEL_STRIDE + ATA_DMA_CMD, cmdValue & ~ATA_DMA_START);
    this.updateIrq();
  }

  /** Has QEMU finished the in-flight transfer? Then copy device->memory data back now. */
  private async settle(chIndex: number): Promise<void> {
    const ch = this.channels[chIndex];
    const dma = ch.dma;
    if (!dma || dma.copiedBack) return; // memory->device transfers start out "copied back"
    const status = await this.client.inb(this.bmBase + chIndex * BMIDE_CHANNEL_STRIDE + ATA_DMA_STATUS);
    const done = !(status & ATA_DMA_ACTIVE) || (status & ATA_DMA_ERR) !== 0 || ((status & ATA_DMA_INTR) !== 0 && !dma.intrAtStart);
    if (done) await this.copyBack(ch);
  }

  private async settleIfInFlight(): Promise<void> {
    for (let i = 0; i < 2; i++) if (this.channels[i].dma && !this.channels[i].dma!.copiedBack) await this.settle(i);
  }

  private async copyBack(ch: Channel): Promise<void> {
    const dma = ch.dma;
    if (!dma || dma.copiedBack) return;
    dma.copiedBack = true;
    if (!dma.toMemory) return;
    const chIndex = this.channels.indexOf(ch);
    const bounceData = BOUNCE_DATA_BASE + chIndex * BOUNCE_DATA_SIZE;
    const datas = await Promise.all(dma.segments.map((s) => this.client.readMem(bounceData + s.bounceOffset, s.len)));
    for (let i = 0; i < datas.length; i++) {
      const ok = await this.edges.dma.write(dma.segments[i].guestAddr, datas[i]);
      if (!ok) {
        this.counters.dmaRefused++;
        ch.localStatus |= ATA_DMA_ERR | ATA_DMA_INTR;
      } else this.counters.dmaCopiedBytes += datas[i].length;
    }
    this.updateIrq();
  }

  // ---- interrupt ----

  private onQemuIrq(line: number, level: boolean): void {
    if (line !== IRQ_PRIMARY) return;
    this.qemuIrq = level;
    const pending = this.channels.some((c) => c.dma && !c.dma.copiedBack && c.dma.toMemory);
    if (level && pending && !this.irqHeld) {
      // Hold the rising edge until the transferred data is in the guest's memory.
      this.irqHeld = true;
      void this.serial(() => this.settleIfInFlight())
        // No guest access waits on this settle: its failure (QEMU gone) is reported here.
        .catch((err: unknown) => this.edges.log?.hostError('DMA copy-back on the interrupt', err))
        .finally(() => {
          this.irqHeld = false;
          this.updateIrq();
        });
      return;
    }
    this.updateIrq();
  }

  /** The line level is a function of QEMU's line and the bounce path's own errors. */
  private updateIrq(): void {
    const level = (this.qemuIrq && !this.irqHeld) || this.channels.some((c) => (c.localStatus & ATA_DMA_INTR) !== 0);
    if (level !== this.irqOut) {
      this.irqOut = level;
      this.edges.irq.set(level);
    }
  }
}

/** The config's `backend: { type: 'qemu', ... }` for this device (the schema leaves it to us). */
export const QemuIdeBackendSchema = z.strictObject({
  type: z.literal('qemu'),
  image: z.string().min(1, 'expected the path of a raw disk image'),
  binary: z.string().min(1).optional(),
  memoryMiB: z.number().int().positive().optional(),
  extraArgs: z.array(z.string()).optional(),
});

/**
 * DeviceFactory (src/devices/registry.ts): backend `{ type: 'qemu', image }`, optional
 * property `bmBase` (QEMU-side BAR4 port).
 */
export async function createQemuIde(ctx: { id?: string; edges: DeviceEdges; backend?: unknown; properties: Record<string, unknown> }): Promise<Device> {
  const parsed = QemuIdeBackendSchema.safeParse(ctx.backend);
  if (!parsed.success) {
    throw new QtestError(`device ${ctx.id ?? 'qemu-ide'}: backend must be { type: 'qemu', image: <raw image path> }: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'backend'}: ${i.message}`).join('; ')}`);
  }
  const { type: _type, ...qemu } = parsed.data;
  const bmBase = ctx.properties.bmBase;
  return QemuIdeDevice.open(ctx.edges, { ...qemu, bmBase: typeof bmBase === 'number' ? bmBase : undefined });
}

/** Whole 512-byte sectors of a raw image; null when it cannot be read. */
function imageSectors(image: string): number | null {
  try {
    return image === '' ? null : Math.floor(statSync(image).size / 512);
  } catch {
    return null;
  }
}

function newChannel(): Channel {
  return { prdShadow: 0, cmdShadow: 0, dma: null, localStatus: 0 };
}

function maskOf(size: number): number {
  return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
}

function allOnes(size: number): number {
  return maskOf(size);
}
