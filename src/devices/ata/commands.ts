// Read/write command decode: which protocol, 28- or 48-bit addressing, single or multiple blocks.

import { ATA_COMMANDS, type AtaCommand } from './command-table.ts';
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

/** The sector commands our model runs, from the one command table (command-table.ts). */
export const RW_COMMANDS: ReadonlyMap<number, RwCommand> = new Map(
  [...ATA_COMMANDS.values()]
    .filter((c) => c.model && c.sectors)
    .map((c) => [c.opcode, rwCommand(c)]),
);

/** The model's view of a table entry: READ VERIFY (non-data with sectors) is its own protocol. */
export function rwCommand(c: AtaCommand): RwCommand {
  const proto = c.protocol === 'non-data' ? 'verify' : c.protocol;
  if (proto !== 'verify' && proto !== 'pio-in' && proto !== 'pio-out' && proto !== 'dma-in' && proto !== 'dma-out') {
    throw new Error(`ATA command table: ${c.name} has protocol ${c.protocol}, not a transfer`);
  }
  return { name: c.name, proto, ext: c.lba48, multiple: c.sectors?.multiple ?? false };
}

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
