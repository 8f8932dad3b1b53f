// The receive ring: frames land at CURR in 256-byte pages, each behind a 4-byte header
// (status, next page, byte count low/high). The count is frame length + 4 (no CRC stored),
// the next page is CURR + ceil((count + 4) / 256) wrapping from PSTOP to PSTART, and a frame
// is dropped when fewer than 1518 bytes are free: all exactly as QEMU's hw/net/ne2000.c, so
// a guest reads the same ring from us as from QEMU. Unlike QEMU, PSTART/PSTOP/CURR are
// checked against buffer memory here, so no register value can steer a write outside it.

import { bumpTally, CNTR_MISSED, type Ne2kCounters } from './counters.ts';
import type { NicMemory } from './memory.ts';
import { ENISR_RX, ENRSR_MPA, ENRSR_PHY, ENRSR_RXOK, ETH_ZLEN, NE_END_PAGE, NE_FIRST_PAGE, NE_RX_HEADER, RX_ROOM_NEEDED } from './regs.ts';
import type { Ne2kRegs } from './state.ts';

/** PSTART/PSTOP describe a non-empty ring inside buffer memory. */
export function ringValid(regs: Ne2kRegs): boolean {
  return regs.pstart >= NE_FIRST_PAGE && regs.pstart < regs.pstop && regs.pstop <= NE_END_PAGE;
}

/** Free bytes between CURR and BNRY, computed as QEMU's ne2000_buffer_full does. */
export function ringRoom(regs: Ne2kRegs, curr: number): number {
  const index = curr << 8;
  const boundary = regs.bnry << 8;
  const size = (regs.pstop - regs.pstart) << 8;
  return index < boundary ? boundary - index : size - (index - boundary);
}

export type RxOutcome = 'stored' | 'full' | 'invalid';

export interface RingContext {
  regs: Ne2kRegs;
  mem: NicMemory;
  counters: Ne2kCounters;
}

/**
 * Store one accepted frame (1..1518 bytes) at CURR and advance CURR. Sets RSR, PRX.
 * Returns why it was not stored otherwise; a drop for a full ring counts as a missed frame.
 */
export function storeFrame(ctx: RingContext, frame: Uint8Array): RxOutcome {
  const { regs, mem, counters } = ctx;
  if (!ringValid(regs)) {
    counters.ringInvalid++;
    return 'invalid';
  }
  let curr = regs.curr;
  if (curr < regs.pstart || curr >= regs.pstop) {
    // CVE-2018-10839: a CURR outside the ring goes back to PSTART (QEMU does so above 0xC0).
    counters.ringPointerOutside++;
    curr = regs.pstart;
  }
  if (ringRoom(regs, curr) < RX_ROOM_NEEDED) {
    counters.rxDroppedFull++;
    regs.rsr = ENRSR_MPA;
    bumpTally(regs, CNTR_MISSED);
    return 'full';
  }
  const size = Math.max(frame.length, ETH_ZLEN);
  const totalLen = size + NE_RX_HEADER;
  const start = regs.pstart << 8;
  const stop = regs.pstop << 8;
  let index = curr << 8;
  // The next frame's page: room for the header, the data and 4 bytes of CRC, in whole pages.
  let next = index + ((totalLen + 4 + 255) & ~0xff);
  if (next >= stop) next -= stop - start;

  regs.rsr = ENRSR_RXOK | (frame[0] & 0x01 ? ENRSR_PHY : 0);
  const header = [regs.rsr, next >> 8, totalLen & 0xff, totalLen >> 8];
  // index is a page start inside the ring, so the 4 header bytes lie inside it too.
  for (let i = 0; i < NE_RX_HEADER; i++) mem.writeByte(index + i, header[i]);
  index += NE_RX_HEADER;
  // Byte by byte with the wrap: at most `size` iterations, every address inside [start, stop).
  for (let i = 0; i < size; i++) {
    if (index >= stop) index = start;
    mem.writeByte(index, i < frame.length ? frame[i] : 0);
    index++;
  }
  regs.curr = next >> 8;
  regs.isr |= ENISR_RX;
  counters.rxFrames++;
  counters.rxBytes += size;
  return 'stored';
}
