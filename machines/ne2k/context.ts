// Per-guest context of the NE2000: every register a guest can write (page 0 and page 1; the
// card ignores page-2 writes, page 3 is the MUX's), replayed in a safe state (card started,
// page 0, no remote DMA, no transmit) when the guest gets the card. The replay stops the card
// while the ring registers change hands, and ends with the guest's own CR (page 0, no DMA).
// Registers the card changes by itself are saved from the card when their guest loses it:
// the remote address (CRDA), the remaining byte count (mirrored by translate.ts), CURR, and the
// interrupt status bits it had not acknowledged (the virtual ISR, answered by translate.ts), its
// transmit status and tally counters (status.ts).

import type { ContextRegister, ReplayIo } from '../../src/mux/define.ts';
import * as R from '../../src/devices/ne2k/regs.ts';
import { STATUS_CONTEXT } from './status.ts';
import { PAGE1_NAMES, scratchOf, VISR } from './translate.ts';

const STOP_PAGE0 = R.E8390_NODMA | R.E8390_STOP; // 0x21
const STOP_PAGE1 = R.E8390_NODMA | R.E8390_STOP | (1 << R.E8390_PAGE_SHIFT); // 0x61
const START_PAGE0 = R.E8390_NODMA | R.E8390_START; // 0x22
const START_PAGE1 = R.E8390_NODMA | R.E8390_START | (1 << R.E8390_PAGE_SHIFT); // 0x62

/** Write-side name of the page-0 register at an offset: on page 1 the same offset is a page-1 register. */
const WRITE_NAME: Record<number, string> = {
  1: 'PSTART', 2: 'PSTOP', 3: 'BNRY', 4: 'TPSR', 5: 'TBCR0', 6: 'TBCR1', 7: 'ISR',
  8: 'RSAR0', 9: 'RSAR1', 10: 'RBCR0', 11: 'RBCR1', 12: 'RCR', 13: 'TCR', 14: 'DCR', 15: 'IMR',
};
const READ_NAME_CURR = 'ISR'; // offset 0x07 read: ISR on page 0, CURR on page 1

/** A page-1 register: select page 1 (the card is stopped during a replay), write it. */
function page1Register(offset: number, always = false): ContextRegister {
  return {
    reg: PAGE1_NAMES[offset],
    reset: 0,
    always,
    replay: async (v: number, io: ReplayIo) => {
      await io.write('CR', STOP_PAGE1);
      await io.write(WRITE_NAME[offset], v);
    },
  };
}

const plain = (reg: string, always = false): ContextRegister => ({ reg, reset: 0, always });

export const NE2K_CONTEXT: ContextRegister[] = [
  // First: stop the card, page 0, no DMA, so no frame lands in a half-loaded ring.
  { reg: 'LOAD', reset: 0, always: true, replay: (_v, io) => io.write('CR', STOP_PAGE0) },
  // The outgoing guest's unacknowledged status bits are saved; the card's ISR is cleared for the incoming one.
  {
    reg: VISR,
    reset: 0,
    always: true,
    save: async (io, g) => ((g.context.get(VISR) ?? 0) | (await io.read('ISR'))) & R.ENISR_IRQ_MASK,
    replay: (_v, io) => io.write('ISR', R.ENISR_IRQ_MASK),
  },
  plain('PSTART'),
  plain('PSTOP'),
  plain('BNRY'),
  plain('TPSR'),
  plain('TBCR0'),
  plain('TBCR1'),
  // The card advances the remote address: saved from CRDA.
  { reg: 'RSAR0', reset: 0, always: true, save: (io) => io.read('CRDA0') },
  { reg: 'RSAR1', reset: 0, always: true, save: (io) => io.read('CRDA1') },
  // The card counts RBCR down: saved from translate.ts's mirror (RBCR cannot be read).
  { reg: 'RBCR0', reset: 0, always: true, save: (_io, g) => scratchOf(g).rbcr & 0xff },
  { reg: 'RBCR1', reset: 0, always: true, save: (_io, g) => scratchOf(g).rbcr >> 8 },
  plain('RCR'),
  plain('DCR'),
  // The reset port changes these behind the guest's writes (translate.ts records it): always replayed.
  plain('TCR', true),
  plain('IMR', true),
  ...Object.keys(PAGE1_NAMES)
    .map(Number)
    .filter((o) => o !== R.EN1_CURPAG)
    .map((o) => page1Register(o)),
  // The card advances CURR as frames arrive: saved from page 1 (the outgoing guest's card keeps running).
  {
    ...page1Register(R.EN1_CURPAG, true),
    save: async (io) => {
      await io.write('CR', START_PAGE1);
      const curr = await io.read(READ_NAME_CURR);
      await io.write('CR', START_PAGE0);
      return curr;
    },
  },
  // Saved only (read on page 0 when the guest loses the card), answered by translate.ts.
  ...STATUS_CONTEXT,
  // Last: the guest's run state on page 0 with no DMA (a guest that never wrote CR finds the
  // card stopped, as at power-on).
  { reg: 'CR', reset: STOP_PAGE0, always: true, replay: (v, io) => io.write('CR', v & R.E8390_STOP ? STOP_PAGE0 : START_PAGE0) },
];
