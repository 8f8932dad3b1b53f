// DATA SET MANAGEMENT / TRIM (ACS-2 7.10): the host sends 512-byte blocks of 8-byte range
// entries by DMA; each entry is LBA (bits 47:0) and a sector count (bits 63:48, 0 = unused).

import { SECTOR, type BlockBackend } from '../../backends/block.ts';
import { ATA_COMMANDS } from './command-table.ts';
import { rwCommand, type RwCommand } from './commands.ts';
import { ATA_CMD_DSM } from './regs.ts';

/** Blocks of ranges per command we accept (IDENTIFY word 105). */
export const MAX_DSM_BLOCKS = 8;

// Listed in the command table, so always there.
export const DSM_COMMAND: RwCommand = rwCommand(ATA_COMMANDS.get(ATA_CMD_DSM)!);

/** Stands in for the backend during the DMA: keeps the range blocks instead of writing them. */
export class DsmSink implements Pick<BlockBackend, 'read' | 'write'> {
  readonly data: Uint8Array;
  constructor(blocks: number) {
    this.data = new Uint8Array(blocks * SECTOR);
  }
  async read(): Promise<Uint8Array> {
    throw new Error('DATA SET MANAGEMENT moves data to the device only');
  }
  async write(lba: number, data: Uint8Array): Promise<void> {
    this.data.set(data, lba * SECTOR);
  }
}

export interface TrimRange {
  lba: number;
  count: number;
}

/** The non-empty ranges, or null when one reaches past `capacity` (the command then aborts). */
export function parseTrimRanges(data: Uint8Array, capacity: number): TrimRange[] | null {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const ranges: TrimRange[] = [];
  for (let off = 0; off + 8 <= data.length; off += 8) {
    const low = view.getUint32(off, true);
    const high = view.getUint32(off + 4, true);
    const count = high >>> 16;
    if (count === 0) continue;
    const lba = (high & 0xffff) * 0x1_0000_0000 + low;
    if (lba + count > capacity) return null;
    ranges.push({ lba, count });
  }
  return ranges;
}
