// Turns an ATA register access (and the value read) into a statechart event (chart.ts).

import type { MuxAccess, MuxEvent } from '../../src/mux/define.ts';
import {
  ATA_BUSY,
  ATA_DMA_START,
  ATA_DRQ,
  ATA_ERR,
  ATA_SRST,
} from '../../src/devices/ata/regs.ts';

/** Data-transfer class of each command opcode; anything unlisted is non-data (or aborted). */
const PIO_IN = [0x20, 0x21, 0x24, 0x29, 0xc4, 0xec, 0xe4];
const PIO_OUT = [0x30, 0x31, 0x34, 0x39, 0xc5, 0xe8];
const DMA = [0xc8, 0xc9, 0xca, 0xcb, 0x25, 0x35];

const COMMAND_EVENT: string[] = Array.from({ length: 256 }, (_, op) =>
  PIO_IN.includes(op) ? 'CMD_PIO_IN' : PIO_OUT.includes(op) ? 'CMD_PIO_OUT' : DMA.includes(op) ? 'CMD_DMA' : 'CMD_NODATA',
);

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
