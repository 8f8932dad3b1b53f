// Readable decodes for `log show`: ATA command names (ATA8-ACS), and the bits of the status,
// device control and bus-master registers, by the register names the machines use.

import { RW_COMMANDS } from '../devices/ata/commands.ts';

const ATA_OTHER: Record<number, string> = {
  0x00: 'NOP',
  0x06: 'DATA SET MANAGEMENT',
  0x08: 'DEVICE RESET',
  0x10: 'RECALIBRATE',
  0x27: 'READ NATIVE MAX ADDRESS EXT',
  0x2f: 'READ LOG EXT',
  0x47: 'READ LOG DMA EXT',
  0x70: 'SEEK',
  0x90: 'EXECUTE DEVICE DIAGNOSTIC',
  0x91: 'INITIALIZE DEVICE PARAMETERS',
  0xa0: 'PACKET',
  0xa1: 'IDENTIFY PACKET DEVICE',
  0xb0: 'SMART',
  0xc6: 'SET MULTIPLE MODE',
  0xda: 'GET MEDIA STATUS',
  0xde: 'MEDIA LOCK',
  0xdf: 'MEDIA UNLOCK',
  0xe0: 'STANDBY IMMEDIATE',
  0xe1: 'IDLE IMMEDIATE',
  0xe2: 'STANDBY',
  0xe3: 'IDLE',
  0xe5: 'CHECK POWER MODE',
  0xe6: 'SLEEP',
  0xe7: 'FLUSH CACHE',
  0xea: 'FLUSH CACHE EXT',
  0xec: 'IDENTIFY DEVICE',
  0xef: 'SET FEATURES',
  0xf5: 'SECURITY FREEZE LOCK',
  0xf8: 'READ NATIVE MAX ADDRESS',
};

/** The ATA command an opcode names, or undefined. */
export function ataCommandName(op: number): string | undefined {
  return RW_COMMANDS.get(op)?.name ?? ATA_OTHER[op];
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
