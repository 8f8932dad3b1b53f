// MUX definition of the NE2000 (RTL8029 PCI) for time-slicing one card among guests: the
// register map (page 0 names; translate.ts resolves pages 1-3 per guest), the statechart
// (chart.ts: safe = started, page 0, no remote DMA, no transmit pending, out of loopback),
// the classifier (classify.ts) and the per-guest context (context.ts).
//
// Used when an ne2k device names it (`"mux": { "machine": "ne2k" }`); without a machine an
// ne2k device is shared by the NIC router instead (src/mux/nic/README.md), which gives each
// guest a virtual card of its own and is the better choice for traffic: a time-sliced card
// receives only for its current owner (the card's PAR and ring are the owner's).

import { defineMux } from '../../src/mux/define.ts';
import { E8390_NODMA, E8390_START, E8390_STOP } from '../../src/devices/ne2k/regs.ts';
import { ne2kChart } from './chart.ts';
import { classifyNe2k } from './classify.ts';
import { NE2K_CONTEXT } from './context.ts';
import { translateAccess, translateReply } from './translate.ts';

export default defineMux({
  kind: 'ne2k',
  registers: {
    CR: { region: 'regs', offset: 0x00, width: 1, help: 'E8390_CMD: STP 01h, STA 02h, TXP 04h, remote read 08h / write 10h / abort 20h, page 40h/80h/C0h' },
    PSTART: { region: 'regs', offset: 0x01, width: 1, access: 'w', help: 'EN0_STARTPG: first page of the receive ring' },
    CLDA0: { region: 'regs', offset: 0x01, width: 1, access: 'r', help: 'EN0_CLDALO: current local DMA address, low' },
    PSTOP: { region: 'regs', offset: 0x02, width: 1, access: 'w', help: 'EN0_STOPPG: page after the receive ring' },
    CLDA1: { region: 'regs', offset: 0x02, width: 1, access: 'r', help: 'EN0_CLDAHI: current local DMA address, high' },
    BNRY: { region: 'regs', offset: 0x03, width: 1, help: 'EN0_BOUNDARY: last ring page the driver has read' },
    TPSR: { region: 'regs', offset: 0x04, width: 1, access: 'w', help: 'EN0_TPSR: transmit page start' },
    TSR: { region: 'regs', offset: 0x04, width: 1, access: 'r', help: 'EN0_TSR: transmit status (PTX 01h, ABT 08h)' },
    TBCR0: { region: 'regs', offset: 0x05, width: 1, access: 'w', help: 'EN0_TCNTLO: transmit byte count, low' },
    NCR: { region: 'regs', offset: 0x05, width: 1, access: 'r', help: 'EN0_NCR: number of collisions' },
    TBCR1: { region: 'regs', offset: 0x06, width: 1, access: 'w', help: 'EN0_TCNTHI: transmit byte count, high' },
    FIFO: { region: 'regs', offset: 0x06, width: 1, access: 'r', help: 'EN0_FIFO: FIFO' },
    ISR: { region: 'regs', offset: 0x07, width: 1, help: 'EN0_ISR: PRX 01h PTX 02h RXE 04h TXE 08h OVW 10h CNT 20h RDC 40h RST 80h (write 1 to clear)' },
    RSAR0: { region: 'regs', offset: 0x08, width: 1, access: 'w', help: 'EN0_RSARLO: remote start address, low' },
    CRDA0: { region: 'regs', offset: 0x08, width: 1, access: 'r', help: 'EN0_CRDALO: current remote DMA address, low' },
    RSAR1: { region: 'regs', offset: 0x09, width: 1, access: 'w', help: 'EN0_RSARHI: remote start address, high' },
    CRDA1: { region: 'regs', offset: 0x09, width: 1, access: 'r', help: 'EN0_CRDAHI: current remote DMA address, high' },
    RBCR0: { region: 'regs', offset: 0x0a, width: 1, access: 'w', help: 'EN0_RCNTLO: remote byte count, low' },
    ID0: { region: 'regs', offset: 0x0a, width: 1, access: 'r', help: 'EN0_RTL8029ID0: 50h (P)' },
    RBCR1: { region: 'regs', offset: 0x0b, width: 1, access: 'w', help: 'EN0_RCNTHI: remote byte count, high' },
    ID1: { region: 'regs', offset: 0x0b, width: 1, access: 'r', help: 'EN0_RTL8029ID1: 43h (C)' },
    RCR: { region: 'regs', offset: 0x0c, width: 1, access: 'w', help: 'EN0_RXCR: receive configuration (AB 04h, AM 08h, PRO 10h, MON 20h)' },
    RSR: { region: 'regs', offset: 0x0c, width: 1, access: 'r', help: 'EN0_RSR: receive status' },
    TCR: { region: 'regs', offset: 0x0d, width: 1, access: 'w', help: 'EN0_TXCR: transmit configuration (loopback LB1-0 06h)' },
    CNTR0: { region: 'regs', offset: 0x0d, width: 1, access: 'r', help: 'EN0_COUNTER0: frame alignment errors (clear on read)' },
    DCR: { region: 'regs', offset: 0x0e, width: 1, access: 'w', help: 'EN0_DCFG: data configuration (WTS 01h: word transfers)' },
    CNTR1: { region: 'regs', offset: 0x0e, width: 1, access: 'r', help: 'EN0_COUNTER1: CRC errors (clear on read)' },
    IMR: { region: 'regs', offset: 0x0f, width: 1, access: 'w', help: 'EN0_IMR: interrupt mask (ISR bits)' },
    CNTR2: { region: 'regs', offset: 0x0f, width: 1, access: 'r', help: 'EN0_COUNTER2: missed frames (clear on read)' },
    DATA: { region: 'regs', offset: 0x10, width: 2, string: true, sizes: [4], help: 'NE_DATAPORT: remote DMA data (byte or word per DCR.WTS; 32-bit insl/outsl)' },
    RESET: { region: 'regs', offset: 0x1f, width: 1, help: 'NE_RESET: a read resets the card (stopped, RST, IMR 0, loopback)' },
  },
  machine: ne2kChart,
  classify: classifyNe2k,
  translate: { access: translateAccess, reply: translateReply },
  context: NE2K_CONTEXT,
  // Stop (page 0, no DMA: the transmit ends), out of loopback, nothing enabled or pending, start.
  reset: {
    writes: [
      { reg: 'CR', value: E8390_NODMA | E8390_STOP },
      { reg: 'RBCR0', value: 0 },
      { reg: 'RBCR1', value: 0 },
      { reg: 'IMR', value: 0 },
      { reg: 'ISR', value: 0xff },
      { reg: 'TCR', value: 0 },
      { reg: 'CR', value: E8390_NODMA | E8390_START },
    ],
  },
  // Linux's own timeouts are 2-3 ms (RDC, RST polls) and 200 ms (transmit watchdog); a
  // driver's init between probe and open keeps the card stopped longer, so allow 2 s.
  deadlineNs: 2_000_000_000,
  // A frame or transmit completion raised while its guest held the card reaches it again.
  reraiseIrq: true,
});
