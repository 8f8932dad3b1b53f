// Remote DMA through the data port: the host reads or writes card memory at the current
// remote address, which advances and wraps from PSTOP to PSTART (Linux reads frames that
// cross the ring's end in one transfer); RDC is set when the byte count runs out. A transfer
// unit is 1 byte (DCR.WTS = 0) or 2 (word mode) for 8/16-bit port accesses, and 4 for a
// 32-bit access (two word steps, as ne2k-pci's insl/outsl expect from the RTL8029).

import type { Ne2kCounters } from './counters.ts';
import type { NicMemory } from './memory.ts';
import { E8390_DMA_MASK, E8390_RREAD, E8390_RWRITE, ENDCFG_WTS, ENISR_RDC } from './regs.ts';
import type { Ne2kRegs } from './state.ts';

export interface DmaContext {
  regs: Ne2kRegs;
  mem: NicMemory;
  counters: Ne2kCounters;
}

const allOnes = (size: number): number => (size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff);

/** Bytes one 8/16-bit data-port access moves. */
function unitOf(regs: Ne2kRegs, size: 1 | 2 | 4): number {
  if (size === 4) return 4;
  return regs.dcr & ENDCFG_WTS ? 2 : 1;
}

/** Advance the address (16-bit, wrapping PSTOP -> PSTART) and count down; RDC at zero. */
function advance(regs: Ne2kRegs, len: number): void {
  regs.rsar = (regs.rsar + len) & 0xffff;
  if (regs.rsar === regs.pstop << 8) regs.rsar = regs.pstart << 8;
  if (regs.rbcr <= len) {
    regs.rbcr = 0;
    regs.isr |= ENISR_RDC;
  } else regs.rbcr -= len;
}

function readStep(ctx: DmaContext, len: 1 | 2): number {
  // Word steps use the even address, as QEMU (an odd RSAR in word mode is a driver bug).
  const addr = len === 2 ? ctx.regs.rsar & ~1 : ctx.regs.rsar;
  let v = 0;
  for (let i = 0; i < len; i++) {
    const a = addr + i;
    if (!isMapped(a)) ctx.counters.dmaUnmapped++;
    v |= ctx.mem.readByte(a) << (8 * i);
  }
  advance(ctx.regs, len);
  return v;
}

function writeStep(ctx: DmaContext, len: 1 | 2, value: number): void {
  const addr = len === 2 ? ctx.regs.rsar & ~1 : ctx.regs.rsar;
  for (let i = 0; i < len; i++) {
    const r = ctx.mem.writeByte(addr + i, (value >>> (8 * i)) & 0xff);
    if (r === 'prom') ctx.counters.promWrite++;
    else if (r === 'unmapped') ctx.counters.dmaUnmapped++;
  }
  advance(ctx.regs, len);
}

function isMapped(addr: number): boolean {
  return addr < 32 || (addr >= 0x4000 && addr < 0xc000);
}

/** A data-port read of `size` bytes; all ones (counted) unless a remote read is selected. */
export function dataPortRead(ctx: DmaContext, size: 1 | 2 | 4): number {
  if ((ctx.regs.cr & E8390_DMA_MASK) !== E8390_RREAD) {
    ctx.counters.dmaNotStarted++;
    return allOnes(size);
  }
  // Linux's PROM probe reads 32 times with a count of 32 in word mode; QEMU goes on reading.
  if (ctx.regs.rbcr === 0) ctx.counters.dmaReadPastCount++;
  const unit = unitOf(ctx.regs, size);
  if (unit === 4) return (readStep(ctx, 2) | (readStep(ctx, 2) << 16)) >>> 0;
  return readStep(ctx, unit as 1 | 2) & allOnes(size);
}

/** A data-port write; dropped (counted) unless a remote write is selected and bytes remain. */
export function dataPortWrite(ctx: DmaContext, size: 1 | 2 | 4, value: number): void {
  if ((ctx.regs.cr & E8390_DMA_MASK) !== E8390_RWRITE) {
    ctx.counters.dmaNotStarted++;
    return;
  }
  if (ctx.regs.rbcr === 0) {
    ctx.counters.dmaWritePastCount++;
    return;
  }
  const unit = unitOf(ctx.regs, size);
  if (unit === 4) {
    // QEMU checks the count once per access and stores all four bytes.
    writeStep(ctx, 2, value & 0xffff);
    writeStep(ctx, 2, value >>> 16);
  } else writeStep(ctx, unit as 1 | 2, value);
}

/** Is a remote DMA in progress (a direction selected and bytes left)? The MUX's safe-state test. */
export function remoteDmaBusy(regs: Ne2kRegs): boolean {
  const dir = regs.cr & E8390_DMA_MASK;
  return (dir === E8390_RREAD || dir === E8390_RWRITE) && regs.rbcr > 0;
}
