// Registers 0x01-0x0F on the four pages CR selects. Reads and writes of plain registers only:
// the command register, the data port and the reset port are handled by the device.

import type { Ne2kCounters } from './counters.ts';
import * as R from './regs.ts';
import type { Ne2kRegs } from './state.ts';

export interface PageContext {
  regs: Ne2kRegs;
  counters: Ne2kCounters;
}

export const pageOf = (regs: Ne2kRegs): number => regs.cr >> R.E8390_PAGE_SHIFT;

/** A byte read of register `offset` (1..15) on the current page. Counter reads clear them. */
export function readRegister(ctx: PageContext, offset: number): number {
  const r = ctx.regs;
  switch (pageOf(r)) {
    case 0:
      switch (offset) {
        case R.EN0_BOUNDARY: return r.bnry;
        case R.EN0_TSR: return r.tsr;
        case R.EN0_ISR: return r.isr;
        case R.EN0_CRDALO: return r.rsar & 0xff;
        case R.EN0_CRDAHI: return r.rsar >> 8;
        case R.EN0_RTL8029ID0: return 0x50; // 'P'
        case R.EN0_RTL8029ID1: return 0x43; // 'C'
        case R.EN0_RSR: return r.rsr;
        case R.EN0_COUNTER0:
        case R.EN0_COUNTER1:
        case R.EN0_COUNTER2: {
          const i = offset - R.EN0_COUNTER0;
          const v = r.cntr[i];
          r.cntr[i] = 0;
          return v;
        }
        default: return 0; // CLDA, NCR, FIFO: no local DMA, collisions or FIFO to show
      }
    case 1:
      if (offset >= R.EN1_PHYS && offset < R.EN1_PHYS + R.ETH_ALEN) return r.par[offset - R.EN1_PHYS];
      if (offset === R.EN1_CURPAG) return r.curr;
      return r.mar[offset - R.EN1_MULT];
    case 2:
      switch (offset) {
        case R.EN2_STARTPG: return r.pstart;
        case R.EN2_STOPPG: return r.pstop;
        case R.EN2_TPSR: return r.tpsr;
        case R.EN2_RCR: return r.rcr;
        case R.EN2_TCR: return r.tcr;
        case R.EN2_DCR: return r.dcr;
        case R.EN2_IMR: return r.imr;
        default: return 0; // next-packet pointers and the address counter: not modelled
      }
    default:
      switch (offset) {
        case R.EN3_9346CR: return r.cfg9346;
        case R.EN3_CONFIG0: return 0x00; // 10BASE-T
        case R.EN3_CONFIG2: return 0x40; // 10BASE-T link
        case R.EN3_CONFIG3: return r.config3;
        default: return 0;
      }
  }
}

/** Pages a ring pointer may name: 0x40-0xBF (0xC0 for PSTOP, the page after the ring). */
function checkPage(ctx: PageContext, page: number, isStop = false): void {
  if (page < R.NE_FIRST_PAGE || page > (isStop ? R.NE_END_PAGE : R.NE_END_PAGE - 1)) ctx.counters.ringRegisterOutside++;
}

/** A byte write of register `offset` (1..15) on the current page. */
export function writeRegister(ctx: PageContext, offset: number, value: number): void {
  const r = ctx.regs;
  const v = value & 0xff;
  switch (pageOf(r)) {
    case 0:
      switch (offset) {
        case R.EN0_STARTPG: checkPage(ctx, v); r.pstart = v; return;
        case R.EN0_STOPPG: checkPage(ctx, v, true); r.pstop = v; return;
        case R.EN0_BOUNDARY: checkPage(ctx, v); r.bnry = v; return;
        case R.EN0_TPSR:
          // Pages 0xC0-0xFF fold back onto the buffer (transmit.ts); below 0x40 is the PROM.
          if (v < R.NE_FIRST_PAGE) ctx.counters.ringRegisterOutside++;
          r.tpsr = v;
          return;
        case R.EN0_TCNTLO: r.tbcr = (r.tbcr & 0xff00) | v; return;
        case R.EN0_TCNTHI: r.tbcr = (r.tbcr & 0x00ff) | (v << 8); return;
        case R.EN0_ISR: r.isr &= ~(v & R.ENISR_IRQ_MASK); return; // RST is not cleared by writing it
        case R.EN0_RSARLO: r.rsar = (r.rsar & 0xff00) | v; return;
        case R.EN0_RSARHI: r.rsar = (r.rsar & 0x00ff) | (v << 8); return;
        case R.EN0_RCNTLO: r.rbcr = (r.rbcr & 0xff00) | v; return;
        case R.EN0_RCNTHI: r.rbcr = (r.rbcr & 0x00ff) | (v << 8); return;
        case R.EN0_RXCR: r.rcr = v; return;
        case R.EN0_TXCR: r.tcr = v; return;
        case R.EN0_DCFG: r.dcr = v; return;
        case R.EN0_IMR: r.imr = v; return;
        default: return; // 0x0a-0x0b above; nothing else is writable on page 0
      }
    case 1:
      if (offset >= R.EN1_PHYS && offset < R.EN1_PHYS + R.ETH_ALEN) r.par[offset - R.EN1_PHYS] = v;
      else if (offset === R.EN1_CURPAG) {
        checkPage(ctx, v);
        r.curr = v;
      } else r.mar[offset - R.EN1_MULT] = v;
      return;
    case 2:
      // Diagnostic page: the DP8390 says not to write it in operation; QEMU ignores it too.
      ctx.counters.badRegister++;
      return;
    default:
      if (offset === R.EN3_9346CR) r.cfg9346 = v;
      else if (offset === R.EN3_CONFIG3 && (r.cfg9346 & R.RTL_9346CR_CONFIG_WRITE) === R.RTL_9346CR_CONFIG_WRITE) r.config3 = v;
      else ctx.counters.page3Write++;
  }
}
