// Transmit: on CR.TXP the card sends TBCR bytes from page TPSR and reports PTX at once (the
// wire takes the frame synchronously, as QEMU's model does). A frame that would leave buffer
// memory, or has 0 or more than 1518 bytes, is not sent: TSR.ABT and TXE tell the driver,
// which (Linux ei_tx_err) counts an aborted transmit and goes on.

import type { Ne2kCounters } from './counters.ts';
import { NicMemory } from './memory.ts';
import { ENISR_TX, ENISR_TX_ERR, ENTCR_LOOPBACK, ENTSR_ABT, ENTSR_PTX, ETH_FRAME_MAX_TAGGED, NE_PMEM_END, NE_PMEM_SIZE } from './regs.ts';
import type { Ne2kRegs } from './state.ts';

export interface TxContext {
  regs: Ne2kRegs;
  mem: NicMemory;
  counters: Ne2kCounters;
}

/** The frame TPSR/TBCR describe, or why it cannot be sent. */
export function frameToSend(ctx: TxContext): Uint8Array | 'length' | 'outside' {
  const { regs, mem } = ctx;
  let index = regs.tpsr << 8;
  // QEMU folds pages 0xC0-0xFF back onto the buffer ("a hack to make netware 3.11 work").
  if (index >= NE_PMEM_END) index -= NE_PMEM_SIZE;
  const len = regs.tbcr;
  if (len === 0 || len > ETH_FRAME_MAX_TAGGED) return 'length';
  if (!NicMemory.inBuffer(index, len)) return 'outside';
  return mem.slice(index, len);
}

/**
 * Run a transmit command. `send` is the wire edge. TXP is cleared and PTX (or TXE) set
 * before this returns.
 */
export function transmit(ctx: TxContext, send: (frame: Uint8Array) => void): void {
  const { regs, counters } = ctx;
  const frame = frameToSend(ctx);
  if (typeof frame === 'string') {
    if (frame === 'length') counters.txBadLength++;
    else counters.txOutside++;
    regs.tsr = ENTSR_ABT;
    regs.isr |= ENISR_TX_ERR;
    return;
  }
  if (regs.tcr & ENTCR_LOOPBACK) {
    // Linux's overrun recovery transmits nothing in loopback; a frame sent there stays on the card.
    counters.txLoopback++;
  } else {
    counters.txFrames++;
    counters.txBytes += frame.length;
    send(frame);
  }
  regs.tsr = ENTSR_PTX;
  regs.isr |= ENISR_TX;
}
