// A tiny test device: scratch registers, a doorbell that raises an IRQ, a DMA engine and a
// small MMIO memory. PCI identity 1b36:0005 is QEMU's "PCI test device" (pci-testdev).
// Registers are dwords; byte and word accesses reach the bytes of a dword.

import type { DevSize, Device, DeviceDescription, DeviceEdges, DeviceMetrics } from '../device.ts';

export const SCRATCH_MAGIC = 0x5343_5231; // "SCR1": the ID register's fixed value

// Region 0 ("regs", pio, BAR0) register offsets.
export const SCR_ID = 0x00; // ro: SCRATCH_MAGIC
export const SCR_DATA0 = 0x04; // rw: scratch
export const SCR_DATA1 = 0x08; // rw: scratch
export const SCR_DOORBELL = 0x0c; // w: latch the value in SCR_COOKIE and raise the IRQ
export const SCR_COOKIE = 0x10; // ro: last doorbell value
export const SCR_IRQ_STATUS = 0x14; // r: 1 while the IRQ is pending; w: any value acknowledges (lowers it)
export const SCR_DMA_ADDR = 0x18; // rw: bus address for the DMA engine
export const SCR_DMA_LEN = 0x1c; // rw: byte count for the DMA engine (at most 4096)
export const SCR_DMA_CMD = 0x20; // w: 1 = read memory and sum its bytes, 2 = fill memory with DATA0's low byte
export const SCR_DMA_RESULT = 0x24; // ro: byte sum (cmd 1), 1 (cmd 2 done) or 0xffffffff (refused); raises the IRQ
export const SCR_REGS_SIZE = 0x28;

export const DMA_CMD_SUM = 1;
export const DMA_CMD_FILL = 2;
export const SCR_DMA_MAX = 4096;
export const SCR_MEM_SIZE = 0x1000; // region 1 ("mem", mmio, BAR1): plain memory

export interface ScratchOptions {
  irq?: number;
}

export class ScratchDevice implements Device {
  private data0 = 0;
  private data1 = 0;
  private cookie = 0;
  private irqPending = false;
  private dmaAddr = 0;
  private dmaLen = 0;
  private dmaResult = 0;
  private readonly mem = new Uint8Array(SCR_MEM_SIZE);
  private readonly counters = { badRegister: 0, dmaRefused: 0 };

  constructor(
    private readonly edges: DeviceEdges,
    private readonly options: ScratchOptions = {},
  ) {}

  describe(): DeviceDescription {
    return {
      kind: 'scratch',
      regions: [
        { name: 'regs', space: 'pio', size: SCR_REGS_SIZE, bar: 0 },
        { name: 'mem', space: 'mmio', size: SCR_MEM_SIZE, bar: 1 },
      ],
      irq: this.options.irq ?? 10,
      pci: { vendor: 0x1b36, device: 0x0005, revision: 0, classCode: 0x00ff00, subsystemVendor: 0x1af4, subsystem: 0x1100, interruptPin: 1 },
      properties: [{ name: 'irq', value: this.options.irq ?? 10, help: 'ISA IRQ line raised by the doorbell and the DMA engine' }],
    };
  }

  read(region: number, offset: number, size: DevSize): number {
    if (region === 1) return this.memRead(offset, size);
    const reg = this.dword(offset & ~3);
    if (reg === undefined) {
      this.counters.badRegister++;
      return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
    }
    const shift = (offset & 3) * 8;
    const mask = size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
    return ((reg >>> shift) & mask) >>> 0;
  }

  write(region: number, offset: number, size: DevSize, value: number): void {
    if (region === 1) return this.memWrite(offset, size, value);
    const base = offset & ~3;
    const old = this.dword(base);
    if (old === undefined) {
      this.counters.badRegister++;
      return;
    }
    const shift = (offset & 3) * 8;
    const mask = size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
    const merged = ((old & ~(mask << shift)) | ((value & mask) << shift)) >>> 0;
    switch (base) {
      case SCR_DATA0: this.data0 = merged; break;
      case SCR_DATA1: this.data1 = merged; break;
      case SCR_DOORBELL: this.cookie = merged; this.irqPending = true; break;
      case SCR_IRQ_STATUS: this.irqPending = false; break;
      case SCR_DMA_ADDR: this.dmaAddr = merged; break;
      case SCR_DMA_LEN: this.dmaLen = merged; break;
      case SCR_DMA_CMD: this.startDma(merged); break;
      default: this.counters.badRegister++; // read-only register
    }
    this.updateIrq();
  }

  reset(): void {
    this.data0 = this.data1 = this.cookie = this.dmaAddr = this.dmaLen = this.dmaResult = 0;
    this.irqPending = false;
    this.mem.fill(0);
    this.updateIrq();
  }

  metrics(): DeviceMetrics {
    return { ...this.counters };
  }

  /** The value of the dword register at `base`, or undefined when there is none. */
  private dword(base: number): number | undefined {
    switch (base) {
      case SCR_ID: return SCRATCH_MAGIC;
      case SCR_DATA0: return this.data0;
      case SCR_DATA1: return this.data1;
      case SCR_DOORBELL: return 0;
      case SCR_COOKIE: return this.cookie;
      case SCR_IRQ_STATUS: return this.irqPending ? 1 : 0;
      case SCR_DMA_ADDR: return this.dmaAddr;
      case SCR_DMA_LEN: return this.dmaLen;
      case SCR_DMA_CMD: return 0;
      case SCR_DMA_RESULT: return this.dmaResult;
      default: return undefined;
    }
  }

  private memRead(offset: number, size: DevSize): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.mem[offset + i] ?? 0xff);
    return v;
  }

  private memWrite(offset: number, size: DevSize, value: number): void {
    for (let i = 0; i < size && offset + i < SCR_MEM_SIZE; i++) this.mem[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  /** Runs the DMA asynchronously; completion sets SCR_DMA_RESULT and raises the IRQ. */
  private startDma(cmd: number): void {
    const len = Math.min(this.dmaLen, SCR_DMA_MAX);
    const addr = this.dmaAddr;
    const done = (result: number): void => {
      this.dmaResult = result >>> 0;
      if (result === 0xffff_ffff) this.counters.dmaRefused++;
      this.irqPending = true;
      this.updateIrq();
    };
    if (cmd === DMA_CMD_SUM) {
      void this.edges.dma.read(addr, len).then(
        (bytes) => done(bytes ? bytes.reduce((s, b) => s + b, 0) : 0xffff_ffff),
        () => done(0xffff_ffff),
      );
    } else if (cmd === DMA_CMD_FILL) {
      const bytes = new Uint8Array(len).fill(this.data0 & 0xff);
      void this.edges.dma.write(addr, bytes).then(
        (ok) => done(ok ? 1 : 0xffff_ffff),
        () => done(0xffff_ffff),
      );
    } else {
      this.counters.badRegister++;
    }
  }

  /** The IRQ level is a function of the registers, recomputed after every change. */
  private updateIrq(): void {
    this.edges.irq.set(this.irqPending);
  }
}

export function createScratch(ctx: { edges: DeviceEdges; properties: Record<string, unknown> }): Device {
  const irq = ctx.properties.irq;
  return new ScratchDevice(ctx.edges, { irq: typeof irq === 'number' ? irq : undefined });
}
