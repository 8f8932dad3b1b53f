// What every QEMU-over-qtest device needs when no firmware ran: a BIOS that only halts (for a
// VM that must run), its PCI function's BARs placed and decoding enabled, the PIIX3 PIRQ lines
// routed to one ISA IRQ (so INTx shows as `IRQ raise/lower N` on the intercepted IOAPIC), and
// accesses run one at a time in arrival order. Shared by qemu-ne2k and the generic qemu kind.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QtestError, type QtestClient } from '../backends/qtest.ts';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND,
} from '../pci/regs.ts';

/** 00:01.0 on QEMU's `pc` machine: the PIIX3 PCI-to-ISA bridge with the PIRQ route registers. */
export const PIIX3_ISA_DEV = 1;
/** PIRQA-D -> ISA IRQ, one byte each (PIIX3 datasheet, PIRQRC[A:D]). */
export const PIIX3_PIRQ_ROUTE = 0x60;
/** BAR bits 2:1 = 10b: a 64-bit memory BAR (the next BAR holds the high half). */
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
const HLT = 0xf4;
const BIOS_SIZE = 0x10000;

/** A 64 KiB BIOS of HLT instructions in `dir`: the CPU sleeps while qtest drives the devices. */
export function writeHaltBios(dir: string): string {
  const bios = join(dir, 'hlt.bin');
  writeFileSync(bios, Buffer.alloc(BIOS_SIZE, HLT));
  return bios;
}

/** Write a 32-bit BAR and check QEMU kept the address (a BAR that ignores it is a typed error). */
export async function programBar(c: QtestClient, slot: number, fn: number, index: number, base: number, io: boolean, who: string): Promise<void> {
  const reg = PCI_BASE_ADDRESS_0 + 4 * index;
  await c.pciConfigWrite(slot, fn, reg, 4, (base | (io ? PCI_BASE_ADDRESS_SPACE_IO : 0)) >>> 0);
  const back = await c.pciConfigRead(slot, fn, reg, 4);
  const got = io ? back & 0xfffc : (back & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  if (got !== base) throw new QtestError(`${who}: BAR${index} reads back 0x${back.toString(16)} after writing 0x${base.toString(16)}`);
}

/** Set bits in the PCI command register (I/O, memory decoding, bus mastering). */
export async function enableCommand(c: QtestClient, slot: number, fn: number, bits: number): Promise<void> {
  const cmd = await c.pciConfigRead(slot, fn, PCI_COMMAND, 2);
  await c.pciConfigWrite(slot, fn, PCI_COMMAND, 2, cmd | bits);
}

/** Route all four PIRQ lines to one ISA IRQ: whatever INTx pin a function uses ends there. */
export async function routePirqs(c: QtestClient, irq: number): Promise<void> {
  for (let i = 0; i < 4; i++) await c.pciConfigWrite(PIIX3_ISA_DEV, 0, PIIX3_PIRQ_ROUTE + i, 1, irq);
}

export interface SizedBar {
  index: number;
  io: boolean;
  /** Bytes the BAR decodes (a power of two). */
  size: number;
  /** A 64-bit memory BAR: index + 1 is its high half. */
  is64: boolean;
  prefetch: boolean;
}

/**
 * Size every implemented BAR the standard way (write all-ones, read the mask back, restore),
 * with decoding off so no half-sized window appears meanwhile. High halves of 64-bit BARs are
 * not listed; a 64-bit BAR of 4 GiB or more is refused (we place 32-bit addresses only).
 */
export async function sizeBars(c: QtestClient, slot: number, fn: number, who: string): Promise<SizedBar[]> {
  const cmd = await c.pciConfigRead(slot, fn, PCI_COMMAND, 2);
  await c.pciConfigWrite(slot, fn, PCI_COMMAND, 2, cmd & ~0x3);
  const bars: SizedBar[] = [];
  try {
    for (let index = 0; index < 6; index++) {
      const reg = PCI_BASE_ADDRESS_0 + 4 * index;
      const old = await c.pciConfigRead(slot, fn, reg, 4);
      await c.pciConfigWrite(slot, fn, reg, 4, 0xffff_ffff);
      const mask = await c.pciConfigRead(slot, fn, reg, 4);
      await c.pciConfigWrite(slot, fn, reg, 4, old);
      if (mask === 0) continue; // not implemented
      const io = (mask & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
      let bits = (mask & (io ? PCI_BASE_ADDRESS_IO_MASK : PCI_BASE_ADDRESS_MEM_MASK)) >>> 0;
      // An I/O BAR may leave bits 31:16 zero (a 64 KiB port space); they do not shrink it.
      if (io && (bits & 0xffff_0000) === 0) bits = (bits | 0xffff_0000) >>> 0;
      const size = (~bits + 1) >>> 0;
      const is64 = !io && (mask & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (is64) {
        const hiReg = reg + 4;
        const oldHi = await c.pciConfigRead(slot, fn, hiReg, 4);
        await c.pciConfigWrite(slot, fn, hiReg, 4, 0xffff_ffff);
        const hi = await c.pciConfigRead(slot, fn, hiReg, 4);
        await c.pciConfigWrite(slot, fn, hiReg, 4, oldHi);
        if (hi !== 0xffff_ffff || size === 0) throw new QtestError(`${who}: BAR${index} is a 64-bit BAR of 4 GiB or more; only BARs below 4 GiB are supported`);
      }
      bars.push({ index, io, size, is64, prefetch: !io && (mask & 0x8) !== 0 });
      if (is64) index++;
    }
  } finally {
    await c.pciConfigWrite(slot, fn, PCI_COMMAND, 2, cmd);
  }
  return bars;
}

/** Runs accesses, IRQ settling and resets one at a time, in arrival order (a failure does not stop the queue). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** What an ungranted or out-of-region read answers: all ones of its width. */
export function allOnes(size: number): number {
  return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
}

/** Memory read/write of a width in bytes through qtest. */
export function readMemOf(c: QtestClient, size: 1 | 2 | 4, addr: number): Promise<number> {
  return size === 1 ? c.readb(addr) : size === 2 ? c.readw(addr) : c.readl(addr);
}

export function writeMemOf(c: QtestClient, size: 1 | 2 | 4, addr: number, value: number): Promise<void> {
  return size === 1 ? c.writeb(addr, value) : size === 2 ? c.writew(addr, value) : c.writel(addr, value);
}
