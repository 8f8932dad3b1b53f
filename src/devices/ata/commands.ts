// Read/write command decode: which protocol, 28- or 48-bit addressing, single or multiple blocks.

import * as R from './regs.ts';

export type RwProtocol = 'pio-in' | 'pio-out' | 'dma-in' | 'dma-out' | 'verify';

export interface RwCommand {
  name: string;
  proto: RwProtocol;
  /** 48-bit LBA and 16-bit count (the EXT commands). */
  ext: boolean;
  /** DRQ blocks of the SET MULTIPLE MODE size instead of one sector. */
  multiple: boolean;
}

const rw = (name: string, proto: RwProtocol, ext: boolean, multiple = false): RwCommand => ({ name, proto, ext, multiple });

export const RW_COMMANDS: ReadonlyMap<number, RwCommand> = new Map([
  [R.ATA_CMD_PIO_READ, rw('READ SECTORS', 'pio-in', false)],
  [0x21, rw('READ SECTORS (no retry)', 'pio-in', false)],
  [R.ATA_CMD_PIO_READ_EXT, rw('READ SECTORS EXT', 'pio-in', true)],
  [R.ATA_CMD_PIO_WRITE, rw('WRITE SECTORS', 'pio-out', false)],
  [0x31, rw('WRITE SECTORS (no retry)', 'pio-out', false)],
  [R.ATA_CMD_PIO_WRITE_EXT, rw('WRITE SECTORS EXT', 'pio-out', true)],
  [R.ATA_CMD_READ_MULTI, rw('READ MULTIPLE', 'pio-in', false, true)],
  [R.ATA_CMD_READ_MULTI_EXT, rw('READ MULTIPLE EXT', 'pio-in', true, true)],
  [R.ATA_CMD_WRITE_MULTI, rw('WRITE MULTIPLE', 'pio-out', false, true)],
  [R.ATA_CMD_WRITE_MULTI_EXT, rw('WRITE MULTIPLE EXT', 'pio-out', true, true)],
  [R.ATA_CMD_READ, rw('READ DMA', 'dma-in', false)],
  [0xc9, rw('READ DMA (no retry)', 'dma-in', false)],
  [R.ATA_CMD_READ_EXT, rw('READ DMA EXT', 'dma-in', true)],
  [R.ATA_CMD_WRITE, rw('WRITE DMA', 'dma-out', false)],
  [0xcb, rw('WRITE DMA (no retry)', 'dma-out', false)],
  [R.ATA_CMD_WRITE_EXT, rw('WRITE DMA EXT', 'dma-out', true)],
  [R.ATA_CMD_VERIFY, rw('READ VERIFY SECTORS', 'verify', false)],
  [0x41, rw('READ VERIFY SECTORS (no retry)', 'verify', false)],
  [R.ATA_CMD_VERIFY_EXT, rw('READ VERIFY SECTORS EXT', 'verify', true)],
]);

/** SET FEATURES 03h: is this transfer mode one we advertise (PIO 0-4, MWDMA 0-2, UDMA 0-5)? */
export function validXferMode(mode: number): boolean {
  if (mode === R.XFER_PIO_DEFAULT || mode === R.XFER_PIO_DEFAULT_NO_IORDY) return true;
  const n = mode & 7;
  switch (mode & 0xf8) {
    case R.XFER_PIO_0: return n <= 4;
    case R.XFER_MW_DMA_0: return n <= 2;
    case R.XFER_UDMA_0: return n <= 5;
    default: return false;
  }
}
