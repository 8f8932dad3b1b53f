// Turns an ATA register access (and the value read) into a statechart event (chart.ts).

import type { MuxAccess, MuxEvent } from '../../src/mux/define.ts';
import {
  ATA_BUSY,
  ATA_DMA_START,
  ATA_DRQ,
  ATA_ERR,
  ATA_SRST,
} from '../../src/devices/ata/regs.ts';
import { ataProtocol, type AtaProtocol } from '../../src/devices/ata/command-table.ts';
import type { AtaEvent } from './chart.ts';

/** The chart's command event for each protocol of the command table. */
const EVENT_OF: Record<AtaProtocol, AtaEvent['type']> = {
  'pio-in': 'CMD_PIO_IN',
  'pio-out': 'CMD_PIO_OUT',
  'dma-in': 'CMD_DMA',
  'dma-out': 'CMD_DMA',
  'non-data': 'CMD_NODATA',
  diagnostic: 'CMD_NODATA',
  // ATAPI protocols: a disk aborts them; the non-data state waits for the final status, which
  // is also all the chart can follow of a packet command's mixed phases.
  packet: 'CMD_NODATA',
  'device-reset': 'CMD_NODATA',
};

/** Command event of each opcode, from the one command table; an unlisted opcode aborts (non-data). */
const COMMAND_EVENT: string[] = Array.from({ length: 256 }, (_, op) => EVENT_OF[ataProtocol(op)]);

/** The chart event a command write of `opcode` sends (CMD_PIO_IN, CMD_PIO_OUT, CMD_DMA, CMD_NODATA). */
export function commandClass(opcode: number): string {
  return COMMAND_EVENT[opcode & 0xff];
}

export function classifyAta(a: MuxAccess, value: number): MuxEvent | null {
  const name = a.reg?.name;
  switch (name) {
    case 'CMD':
      return COMMAND_EVENT[value & 0xff];
    case 'STATUS':
      // With BSY set the other bits are not valid (ATA-8: "all other bits... are invalid").
      return value & ATA_BUSY ? 'ST_BUSY' : value & ATA_ERR ? 'ST_ERR' : value & ATA_DRQ ? 'ST_DRQ' : 'ST_READY';
    case 'ALTSTATUS':
      // The MUX's own read after a PIO data-in read (window.ts): neither BSY nor DRQ (nor ERR,
      // which the guest learns from its status read) means the drive delivered the last word.
      if (a.probe) return value & ATA_BUSY ? 'ALT_BUSY' : value & (ATA_DRQ | ATA_ERR) ? null : 'DATA_END';
      return value & ATA_BUSY ? 'ALT_BUSY' : value & ATA_DRQ ? 'ALT_DRQ' : null;
    case 'ERROR':
      return 'ERR_READ';
    case 'DEVCTL':
      return value & ATA_SRST ? 'SRST' : 'SRST_END';
    case 'BM_CMD':
      return value & ATA_DMA_START ? 'BM_START' : 'BM_STOP';
    default:
      return null;
  }
}
