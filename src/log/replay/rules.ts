// What a replay does not compare literally, and why. A device's timing is its own: a status
// read that found the recorded drive busy (BSY, bus master ACTIVE) is a poll, not compared;
// one that found it ready is re-read on the replayed device until that one is ready too, then
// compared. And two devices describe themselves differently: IDENTIFY's identity strings, its
// checksum and the capability words where our model and QEMU differ by design
// (test/ata-vs-qemu.test.ts lists why) are left out of the comparison unless --strict.

import { ATA_CMD_ID_ATA, ATA_CMD_ID_ATAPI } from '../../devices/ata/regs.ts';

export interface SettleRule {
  /** A recorded answer with these bits was a poll of a busy device. */
  busy: number;
  /**
   * Completion bits: when the recorded answer has one, the replayed device is polled until it
   * has one too (QEMU's bus master may not show ACTIVE yet right after the start).
   */
  done?: number;
}

/** Registers whose reads settle, by the register names the ATA machine gives them. */
export const SETTLE: Record<string, SettleRule> = {
  ATA_REG_STATUS: { busy: 0x80 },
  ATA_REG_ALTSTATUS: { busy: 0x80 },
  ATA_DMA_STATUS: { busy: 0x01, done: 0x06 },
};

/** IDENTIFY (ECh) and IDENTIFY PACKET (A1h) data words a replay leaves out, with the reason. */
export const IDENTIFY_NORMALISED: Array<{ words: [number, number]; why: string }> = [
  { words: [4, 5], why: 'retired: unformatted bytes per track/sector (QEMU fills them)' },
  { words: [10, 19], why: 'serial number' },
  { words: [20, 22], why: 'retired: buffer type and size, ECC bytes (QEMU fills them)' },
  { words: [23, 26], why: 'firmware revision' },
  { words: [27, 46], why: 'model number' },
  { words: [50, 50], why: 'capabilities: we set bit 14 as ATA-8 asks' },
  { words: [51, 52], why: 'obsolete PIO/DMA timing modes (QEMU fills them)' },
  { words: [62, 62], why: 'single-word DMA: obsolete, we do not advertise it' },
  { words: [69, 69], why: 'additional supported: QEMU claims deterministic read after TRIM' },
  { words: [81, 81], why: 'minor version: we claim none' },
  { words: [82, 82], why: 'command sets supported: NOP/SMART (QEMU) vs look-ahead/write cache (ours)' },
  { words: [85, 85], why: 'command sets enabled: as word 82' },
  { words: [88, 88], why: 'UDMA mode selected: QEMU preselects UDMA5' },
  { words: [106, 106], why: 'physical/logical sector size: QEMU describes it, we leave 0 (512-byte sectors either way)' },
  { words: [169, 169], why: 'DATA SET MANAGEMENT (TRIM): QEMU claims it' },
  { words: [255, 255], why: 'integrity word: checksum over the words above (QEMU leaves 0)' },
];

export const IDENTIFY_OPCODES = new Set([ATA_CMD_ID_ATA, ATA_CMD_ID_ATAPI]);

/**
 * Registers whose reads are not compared while the guest has device 1 selected on a channel
 * with one drive: QEMU answers them from an empty drive 1 (ERROR 00h after a reset), our model
 * from drive 0 (ATA-8 lets device 0 answer for an absent device 1: diagnostic code 01h). Linux
 * reads them in its reset's classification and draws the same conclusion (no device 1) from
 * either. STATUS and ALTSTATUS read 00h on both and stay compared.
 */
export const ABSENT_DEVICE1_REGS = new Set(['ATA_REG_ERR', 'ATA_REG_NSECT', 'ATA_REG_LBAL', 'ATA_REG_LBAM', 'ATA_REG_LBAH', 'ATA_REG_DEVICE']);

const MASKED = new Set(IDENTIFY_NORMALISED.flatMap(({ words: [a, b] }) => Array.from({ length: b - a + 1 }, (_, i) => a + i)));

/**
 * The first 16-bit word where two data buffers differ (-1: none), skipping IDENTIFY's normalised
 * words when asked; `firstWord`: the IDENTIFY word the buffer starts at (a read in pieces).
 */
export function firstWordDiff(a: Uint8Array, b: Uint8Array, normaliseIdentify: boolean, firstWord = 0): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i += 2) {
    const w = i / 2;
    if (normaliseIdentify && MASKED.has((firstWord + w) % 256)) continue;
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1]) return w;
  }
  return -1;
}

export function normalisedText(): string {
  return IDENTIFY_NORMALISED.map(({ words: [a, b], why }) => `${a === b ? a : `${a}-${b}`} (${why})`).join(', ');
}
