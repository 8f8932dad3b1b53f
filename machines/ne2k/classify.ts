// Turns an NE2000 register access (page-0 view; translate.ts hides pages 1-3 from it) into a
// statechart event (chart.ts). The remote byte count (DMA_END) is the translation's: it counts
// the data-port bytes per guest and marks the access that consumes the count. A plain CR read
// is no event: a driver reads CR before its TXP too (Linux NS8390_trigger_send), while its
// upload is staged; only a read after a TXP (TX_CHECK) can end the transmit.

import type { MuxAccess, MuxEvent } from '../../src/mux/define.ts';
import { E8390_NODMA, E8390_RREAD, E8390_RWRITE, E8390_START, E8390_STOP, E8390_TRANS, ENTCR_LOOPBACK } from '../../src/devices/ne2k/regs.ts';
import { crEventName } from './chart.ts';

/** A CR read the translation marks as asking whether the last TXP finished (not a map register). */
export const TX_CHECK = 'CR_TXCHECK';

/** The event of a CR write with value `v`. */
export function crWriteEvent(v: number): string {
  const run = v & E8390_STOP ? 'STP' : v & E8390_START ? 'STA' : '';
  // The model (and QEMU) ignore TXP in a stopping write.
  const txp = !(v & E8390_STOP) && (v & E8390_TRANS) !== 0;
  const dma = v & E8390_NODMA ? 'NODMA' : (v & (E8390_RREAD | E8390_RWRITE)) === E8390_RWRITE ? 'WR' : 'RD';
  return crEventName(run, v >> 6 ? 'PN' : 'P0', dma, txp);
}

export function classifyNe2k(a: MuxAccess, value: number): MuxEvent | null {
  switch (a.reg?.name) {
    case 'CR':
      return a.dir === 'write' ? crWriteEvent(value & 0xff) : null;
    case TX_CHECK:
      // A CR read after a TXP (translate.ts): the card clears TXP when the frame is out (PTX) or aborted (TXE).
      return value & E8390_TRANS ? null : 'TX_DONE';
    case 'TCR':
      return value & ENTCR_LOOPBACK ? 'LOOP_ON' : 'LOOP_OFF';
    case 'RESET':
      return a.dir === 'read' ? 'RESET' : null;
    default:
      return null;
  }
}
