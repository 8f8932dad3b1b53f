// PIIX bus-master IDE (SFF-8038i): one 8-byte register bank per channel and the PRD table
// walk. The walk is bounded (entries, 64 KiB table boundary) so that a hostile or broken
// table ends in an error, never a loop (the class of QEMU CVE-2014-3471 / CVE-2020-25743 style bugs).

import type { DmaPort } from '../../device.ts';
import {
  ATA_DMA_ACTIVE,
  ATA_DMA_CMD,
  ATA_DMA_DRV0_CAP,
  ATA_DMA_DRV1_CAP,
  ATA_DMA_ERR,
  ATA_DMA_INTR,
  ATA_DMA_START,
  ATA_DMA_STATUS,
  ATA_DMA_TABLE_OFS,
  ATA_DMA_WR,
  ATA_PRD_EOT,
  ATA_PRD_MAX_ENTRIES,
  ATA_PRD_SZ,
} from './regs.ts';

export interface BusMasterState {
  cmd: number;
  status: number;
  prd: number;
}

export type StartEdge = 'start' | 'stop' | null;

/** One channel's bus-master registers: command (0), status (2), PRD table pointer (4-7). */
export class BusMasterRegs implements BusMasterState {
  cmd = 0;
  status = 0; // the drive-capable bits are the BIOS's to set (QEMU starts at 0 too)
  prd = 0;

  get started(): boolean {
    return (this.cmd & ATA_DMA_START) !== 0;
  }

  /** Direction bit: 1 = the bus master writes memory, i.e. a disk READ. */
  get toMemory(): boolean {
    return (this.cmd & ATA_DMA_WR) !== 0;
  }

  private readByte(off: number): number {
    if (off === ATA_DMA_CMD) return this.cmd;
    if (off === ATA_DMA_STATUS) return this.status;
    if (off >= ATA_DMA_TABLE_OFS && off < ATA_DMA_TABLE_OFS + 4) return (this.prd >>> ((off - ATA_DMA_TABLE_OFS) * 8)) & 0xff;
    return 0; // offsets 1 and 3 are device specific; PIIX reads them as 0
  }

  /** Returns the START edge a command write made, so the channel can start or abort a transfer. */
  private writeByte(off: number, v: number): StartEdge {
    if (off === ATA_DMA_CMD) {
      const was = this.started;
      this.cmd = v & (ATA_DMA_START | ATA_DMA_WR); // other bits are reserved
      if (!was && this.started) {
        this.status |= ATA_DMA_ACTIVE;
        return 'start';
      }
      if (was && !this.started) {
        this.status &= ~ATA_DMA_ACTIVE;
        return 'stop';
      }
      return null;
    }
    if (off === ATA_DMA_STATUS) {
      // Bits 5/6 are plain read/write, 1 and 2 are write-one-to-clear, 0 and 7 are read-only.
      const keep = this.status & ATA_DMA_ACTIVE;
      const rw1c = this.status & ~v & (ATA_DMA_ERR | ATA_DMA_INTR);
      this.status = keep | rw1c | (v & (ATA_DMA_DRV0_CAP | ATA_DMA_DRV1_CAP));
      return null;
    }
    if (off >= ATA_DMA_TABLE_OFS && off < ATA_DMA_TABLE_OFS + 4) {
      const shift = (off - ATA_DMA_TABLE_OFS) * 8;
      const mask = 0xff << shift;
      // The pointer is dword aligned: bits 1:0 read as zero.
      this.prd = (((this.prd & ~mask) | ((v & 0xff) << shift)) & ~3) >>> 0;
    }
    return null;
  }

  read(off: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(off + i) << (8 * i);
    return v >>> 0;
  }

  write(off: number, size: number, value: number): StartEdge {
    let edge: StartEdge = null;
    for (let i = 0; i < size; i++) edge = this.writeByte(off + i, (value >>> (8 * i)) & 0xff) ?? edge;
    return edge;
  }

  state(): BusMasterState {
    return { cmd: this.cmd, status: this.status, prd: this.prd };
  }

  load(s: BusMasterState): void {
    if (![s.cmd, s.status].every((b) => Number.isInteger(b) && b >= 0 && b <= 0xff) || s.prd % 4 !== 0) {
      throw new RangeError(`bmdma: bad snapshot ${JSON.stringify(s)}`);
    }
    Object.assign(this, s);
  }
}

export interface PrdSegment {
  addr: number;
  len: number;
}

export type PrdWalk =
  | { ok: true; segments: PrdSegment[]; /** the table holds more bytes than the transfer */ longer: boolean }
  | { ok: false; reason: string; refused: boolean };

/** Entries fetched per DMA read while walking (a table never spans a 64 KiB boundary). */
const ENTRIES_PER_FETCH = 32;

/**
 * Reads the PRD table at `table` until it covers `needed` bytes, or, with `needed` undefined,
 * until its end-of-table entry (a bus master that does not know the transfer's length: the
 * QEMU bounce path, src/devices/qemu-ide.ts). Fails (never loops) when the table ends before
 * `needed`, runs past ATA_PRD_MAX_ENTRIES, crosses a 64 KiB boundary (SFF-8038i: the table
 * must not), or the DMA port refuses to read it. The last segment is trimmed to the transfer.
 * A byte count of 0 means 64 KiB; address bit 0 is reserved (read as 0).
 */
export async function walkPrdTable(dma: DmaPort, table: number, needed?: number): Promise<PrdWalk> {
  const segments: PrdSegment[] = [];
  let sum = 0;
  let index = 0;
  const page = Math.floor(table / 0x1_0000);
  while (index < ATA_PRD_MAX_ENTRIES) {
    const at = table + index * ATA_PRD_SZ;
    const toBoundary = Math.floor(((page + 1) * 0x1_0000 - at) / ATA_PRD_SZ);
    if (toBoundary <= 0) return { ok: false, reason: 'PRD table crosses a 64 KiB boundary without end-of-table', refused: false };
    const n = Math.min(ENTRIES_PER_FETCH, toBoundary, ATA_PRD_MAX_ENTRIES - index);
    let raw = await dma.read(at, n * ATA_PRD_SZ);
    let got = n;
    if (!raw) {
      // A batch may reach past the guest's window although the table ends before: retry one entry.
      raw = await dma.read(at, ATA_PRD_SZ);
      got = 1;
      if (!raw) return { ok: false, reason: `PRD table read at 0x${at.toString(16)} refused`, refused: true };
    }
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < got; i++, index++) {
      const addr = view.getUint32(i * ATA_PRD_SZ, true) & ~1;
      const ctl = view.getUint32(i * ATA_PRD_SZ + 4, true);
      const count = (ctl & 0xfffe) === 0 ? 0x1_0000 : ctl & 0xfffe; // byte count 0 means 64 KiB
      const eot = (ctl & ATA_PRD_EOT) !== 0;
      const take = needed === undefined ? count : Math.min(count, needed - sum);
      segments.push({ addr: addr >>> 0, len: take });
      sum += take;
      if (needed === undefined) {
        if (eot) return { ok: true, segments, longer: false };
        continue;
      }
      if (sum >= needed) return { ok: true, segments, longer: take < count || !eot };
      if (eot) return { ok: false, reason: `PRD table ends after ${sum} of ${needed} bytes`, refused: false };
    }
  }
  return { ok: false, reason: `PRD table has no end-of-table within ${ATA_PRD_MAX_ENTRIES} entries`, refused: false };
}
