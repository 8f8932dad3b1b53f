// One PCI function's 256-byte configuration space, as a guest sees it. Writes go through
// a per-byte write mask (as QEMU's wmask): BAR sizing then works by itself, since a BAR's
// mask keeps only the address bits a region of its size can have.

import type { PciIdentity } from '../device.ts';
import * as R from './regs.ts';

export interface PciBar {
  index: number;
  io: boolean;
  /** Mapped base address (32-bit). */
  base: number;
  /** Region size; rounded up to a power of two (at least 4 for I/O, 16 for memory). */
  size: number;
}

export interface PciFunctionSpec {
  identity: PciIdentity;
  bars?: PciBar[];
  /** ISA IRQ line reported in PCI_INTERRUPT_LINE (0xff: none). */
  irqLine?: number;
  multiFunction?: boolean;
  /** Initial command register: I/O and memory decoding on, as firmware leaves it. */
  command?: number;
}

function pow2AtLeast(n: number, min: number): number {
  let p = min;
  while (p < n) p *= 2;
  return p;
}

export class PciFunction {
  private readonly space = new Uint8Array(R.PCI_CONFIG_SPACE_SIZE);
  private readonly wmask = new Uint8Array(R.PCI_CONFIG_SPACE_SIZE);
  private readonly barSpecs: PciBar[];

  constructor(readonly spec: PciFunctionSpec) {
    const id = spec.identity;
    const bars = spec.bars ?? [];
    this.barSpecs = bars;
    this.set(R.PCI_VENDOR_ID, 2, id.vendor);
    this.set(R.PCI_DEVICE_ID, 2, id.device);
    const decodes = (bars.some((b) => b.io) ? R.PCI_COMMAND_IO : 0) | (bars.some((b) => !b.io) ? R.PCI_COMMAND_MEMORY : 0);
    this.set(R.PCI_COMMAND, 2, spec.command ?? decodes);
    this.set(R.PCI_REVISION_ID, 1, id.revision);
    this.set(R.PCI_CLASS_PROG, 1, id.classCode & 0xff);
    this.set(R.PCI_CLASS_PROG + 1, 2, (id.classCode >>> 8) & 0xffff);
    this.set(R.PCI_HEADER_TYPE, 1, spec.multiFunction ? R.PCI_HEADER_TYPE_MFD : 0);
    this.set(R.PCI_SUBSYSTEM_VENDOR_ID, 2, id.subsystemVendor ?? 0);
    this.set(R.PCI_SUBSYSTEM_ID, 2, id.subsystem ?? 0);
    this.set(R.PCI_INTERRUPT_LINE, 1, spec.irqLine ?? 0xff);
    this.set(R.PCI_INTERRUPT_PIN, 1, id.interruptPin);
    this.setMask(R.PCI_COMMAND, 2, R.PCI_COMMAND_IO | R.PCI_COMMAND_MEMORY | R.PCI_COMMAND_MASTER | R.PCI_COMMAND_PARITY | R.PCI_COMMAND_SERR | R.PCI_COMMAND_INTX_DISABLE);
    this.setMask(R.PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.setMask(R.PCI_LATENCY_TIMER, 1, 0xff);
    this.setMask(R.PCI_INTERRUPT_LINE, 1, 0xff);
    for (const c of id.config ?? []) {
      if (c.offset < 0x40 || c.offset + c.size > 0x100) throw new Error(`PCI ${id.vendor.toString(16)}:${id.device.toString(16)}: device-specific register 0x${c.offset.toString(16)} is outside 0x40-0xff`);
      this.set(c.offset, c.size, c.value);
      if (c.writable) this.setMask(c.offset, c.size, c.writable);
    }
    for (const bar of bars) {
      if (bar.index < 0 || bar.index > 5) throw new Error(`PCI ${id.vendor.toString(16)}:${id.device.toString(16)}: BAR index ${bar.index} is not 0..5`);
      const size = pow2AtLeast(bar.size, bar.io ? 4 : 16);
      const reg = R.PCI_BASE_ADDRESS_0 + 4 * bar.index;
      const flags = bar.io ? R.PCI_BASE_ADDRESS_SPACE_IO : 0;
      this.set(reg, 4, ((bar.base & ~(size - 1)) | flags) >>> 0);
      this.setMask(reg, 4, (~(size - 1) & (bar.io ? R.PCI_BASE_ADDRESS_IO_MASK : R.PCI_BASE_ADDRESS_MEM_MASK)) >>> 0);
    }
  }

  get identity(): PciIdentity {
    return this.spec.identity;
  }

  bars(): readonly PciBar[] {
    return this.barSpecs;
  }

  /** Little-endian read of `size` bytes at `reg`; bytes past 0xff read as 0xff. */
  read(reg: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (reg + i < R.PCI_CONFIG_SPACE_SIZE ? this.space[reg + i] : 0xff);
    return v;
  }

  /** Write through the write mask; read-only bits keep their value. */
  write(reg: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size && reg + i < R.PCI_CONFIG_SPACE_SIZE; i++) {
      const b = (value >>> (8 * i)) & 0xff;
      const m = this.wmask[reg + i];
      this.space[reg + i] = (this.space[reg + i] & ~m) | (b & m);
    }
  }

  /** The BAR register value the device was mapped with (what a write of another value would move). */
  mappedBar(index: number): number | undefined {
    const bar = this.barSpecs.find((b) => b.index === index);
    if (!bar) return undefined;
    const size = pow2AtLeast(bar.size, bar.io ? 4 : 16);
    return ((bar.base & ~(size - 1)) | (bar.io ? 1 : 0)) >>> 0;
  }

  private set(reg: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.space[reg + i] = (value >>> (8 * i)) & 0xff;
  }

  private setMask(reg: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[reg + i] = (mask >>> (8 * i)) & 0xff;
  }
}
