// Read/write command decode: which protocol, 28- or 48-bit addressing, single or multiple blocks.

import { LBA28_LIMIT } from './identify.ts';
import * as R from './regs.ts';
import type { DriveSettings } from './settings.ts';
import type { TaskFile } from './taskfile.ts';

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

export interface SimpleResult {
  outcome: 'complete' | 'abort' | 'unknown';
  /** Error register value to show (EXECUTE DEVICE DIAGNOSTIC's code). */
  error?: number;
}

/**
 * Commands that finish at once and move no data, run on the registers and settings.
 * Returns null for the ones the device runs itself (IDENTIFY, FLUSH, reads and writes).
 */
export function runSimpleCommand(op: number, tf: TaskFile, s: DriveSettings, sectors: number): SimpleResult | null {
  const ok = (done: boolean): SimpleResult => ({ outcome: done ? 'complete' : 'abort' });
  switch (op) {
    case R.ATA_CMD_ID_ATA:
    case R.ATA_CMD_FLUSH:
    case R.ATA_CMD_FLUSH_EXT:
      return null;
    case R.ATA_CMD_SET_MULTI:
      return ok(s.setMultiple(tf.nsect));
    case R.ATA_CMD_SET_FEATURES:
      return ok(s.setFeature(tf.feature, tf.nsect));
    case R.ATA_CMD_INIT_DEV_PARAMS:
      return ok(s.initParams((tf.device & 0x0f) + 1, tf.nsect, sectors));
    case R.ATA_CMD_READ_NATIVE_MAX:
      if (!tf.lbaMode) return ok(false);
      tf.setLba28(Math.min(sectors - 1, LBA28_LIMIT));
      return ok(true);
    case R.ATA_CMD_READ_NATIVE_MAX_EXT:
      tf.setLba48(sectors - 1);
      return ok(true);
    case R.ATA_CMD_EDD:
      tf.setSignature();
      return { outcome: 'complete', error: R.ATA_AMNF }; // 01h: device 0 passed, device 1 absent
    case R.ATA_CMD_CHK_POWER:
      tf.nsect = 0xff; // active or idle
      return ok(true);
    case R.ATA_CMD_STANDBYNOW1:
    case R.ATA_CMD_IDLEIMMEDIATE:
    case R.ATA_CMD_STANDBY:
    case R.ATA_CMD_IDLE:
      return ok(true); // no spindle to stop
    case R.ATA_CMD_ID_ATAPI:
    case R.ATA_CMD_PACKET:
    case R.ATA_CMD_DEV_RESET:
      return ok(false); // ATAPI-only commands: an ATA disk aborts them
    default:
      if (op >= R.ATA_CMD_RECALIBRATE && op <= 0x1f) return ok(true); // obsolete RECALIBRATE, harmless
      return { outcome: 'unknown' };
  }
}
