// Readable decodes for `log show`: ATA command names (ATA8-ACS), and the bits of the status,
// device control and bus-master registers, by the register names the machines use.

import { ataCommand } from '../devices/ata/command-table.ts';

/** The ATA command an opcode names, or undefined. */
export function ataCommandName(op: number): string | undefined {
  return ataCommand(op)?.name;
}

const bits = (v: number, names: Array<[number, string]>): string =>
  names
    .filter(([b]) => v & b)
    .map(([, n]) => n)
    .join(' ');

const STATUS_BITS: Array<[number, string]> = [[0x80, 'BSY'], [0x40, 'DRDY'], [0x20, 'DF'], [0x10, 'DSC'], [0x08, 'DRQ'], [0x01, 'ERR']];
const ERROR_BITS: Array<[number, string]> = [[0x80, 'ICRC'], [0x40, 'UNC'], [0x10, 'IDNF'], [0x04, 'ABRT'], [0x02, 'TK0NF'], [0x01, 'AMNF']];

/** What a register value means, in a few words ("" when nothing to say). */
export function decodeValue(reg: string | null, dir: 'r' | 'w', v: number): string {
  switch (reg) {
    case 'ATA_REG_CMD':
      return ataCommandName(v) ?? 'unknown command';
    case 'ATA_REG_STATUS':
    case 'ATA_REG_ALTSTATUS':
      return bits(v, STATUS_BITS);
    case 'ATA_REG_ERR':
      return bits(v, ERROR_BITS);
    case 'ATA_REG_DEVCTL':
      return bits(v, [[0x80, 'HOB'], [0x04, 'SRST'], [0x02, 'nIEN']]);
    case 'ATA_DMA_CMD':
      return `${v & 1 ? 'start' : 'stop'}${v & 8 ? ' to-memory' : ''}`;
    case 'ATA_DMA_STATUS':
      return bits(v, [[0x01, 'ACTIVE'], [0x02, 'ERR'], [0x04, 'INTR']]) + (dir === 'w' && v & 6 ? ' (clear)' : '');
    default:
      return '';
  }
}
