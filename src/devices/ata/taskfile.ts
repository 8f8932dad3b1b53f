// The ATA command block registers with their LBA48 "previous content" (HOB) copies.
// Both drives on a cable latch every write, so these are shared by device 0 and 1.

import { ATA_DEV1, ATA_LBA } from './regs.ts';
import type { Geometry } from './identify.ts';

/** Plain-data form, used by snapshots. */
export interface TaskFileState {
  feature: number;
  nsect: number;
  lbal: number;
  lbam: number;
  lbah: number;
  hobFeature: number;
  hobNsect: number;
  hobLbal: number;
  hobLbam: number;
  hobLbah: number;
  device: number;
}

export class TaskFile implements TaskFileState {
  feature = 0;
  nsect = 0;
  lbal = 0;
  lbam = 0;
  lbah = 0;
  hobFeature = 0;
  hobNsect = 0;
  hobLbal = 0;
  hobLbam = 0;
  hobLbah = 0;
  device = 0;

  /** Registers 1-5 keep the previous byte for LBA48 (written twice: high byte first). */
  write(reg: number, value: number): void {
    const v = value & 0xff;
    switch (reg) {
      case 1: this.hobFeature = this.feature; this.feature = v; break;
      case 2: this.hobNsect = this.nsect; this.nsect = v; break;
      case 3: this.hobLbal = this.lbal; this.lbal = v; break;
      case 4: this.hobLbam = this.lbam; this.lbam = v; break;
      case 5: this.hobLbah = this.lbah; this.lbah = v; break;
      case 6: this.device = v | 0xa0; break; // obsolete bits 7 and 5 read as one (as QEMU)
    }
  }

  /** Registers 2-6 (1 and 7 are error/status, owned by the drive). */
  read(reg: number, hob: boolean): number {
    switch (reg) {
      case 2: return hob ? this.hobNsect : this.nsect;
      case 3: return hob ? this.hobLbal : this.lbal;
      case 4: return hob ? this.hobLbam : this.lbam;
      case 5: return hob ? this.hobLbah : this.lbah;
      case 6: return this.device;
      default: return 0xff;
    }
  }

  get dev1(): boolean {
    return (this.device & ATA_DEV1) !== 0;
  }

  get lbaMode(): boolean {
    return (this.device & ATA_LBA) !== 0;
  }

  /** Sector count of a 28-bit command: 0 means 256. */
  count28(): number {
    return this.nsect === 0 ? 256 : this.nsect;
  }

  /** Sector count of a 48-bit command: 0 means 65536. */
  count48(): number {
    const n = (this.hobNsect << 8) | this.nsect;
    return n === 0 ? 65536 : n;
  }

  lba28(): number {
    return ((this.device & 0x0f) << 24 | this.lbah << 16 | this.lbam << 8 | this.lbal) >>> 0;
  }

  lba48(): number {
    const high = (this.hobLbah << 16 | this.hobLbam << 8 | this.hobLbal) >>> 0;
    const low = (this.lbah << 16 | this.lbam << 8 | this.lbal) >>> 0;
    return high * 0x100_0000 + low;
  }

  /** CHS to LBA with the current logical geometry; null for sector 0 or head/sector out of range. */
  chs(geo: Geometry): number | null {
    const cyl = this.lbah << 8 | this.lbam;
    const head = this.device & 0x0f;
    const sector = this.lbal;
    if (sector === 0 || sector > geo.sectorsPerTrack || head >= geo.heads) return null;
    return (cyl * geo.heads + head) * geo.sectorsPerTrack + (sector - 1);
  }

  setLba28(lba: number): void {
    this.lbal = lba & 0xff;
    this.lbam = (lba >>> 8) & 0xff;
    this.lbah = (lba >>> 16) & 0xff;
    this.device = (this.device & 0xf0) | ((lba >>> 24) & 0x0f);
  }

  setLba48(lba: number): void {
    const low = lba % 0x100_0000;
    const high = Math.floor(lba / 0x100_0000);
    this.lbal = low & 0xff;
    this.lbam = (low >>> 8) & 0xff;
    this.lbah = (low >>> 16) & 0xff;
    this.hobLbal = high & 0xff;
    this.hobLbam = (high >>> 8) & 0xff;
    this.hobLbah = (high >>> 16) & 0xff;
  }

  setChs(lba: number, geo: Geometry): void {
    const sector = (lba % geo.sectorsPerTrack) + 1;
    const track = Math.floor(lba / geo.sectorsPerTrack);
    const head = track % geo.heads;
    const cyl = Math.floor(track / geo.heads);
    this.lbal = sector & 0xff;
    this.lbam = cyl & 0xff;
    this.lbah = (cyl >>> 8) & 0xff;
    this.device = (this.device & 0xf0) | (head & 0x0f);
  }

  /** The ATA device signature (ATA-8 9.12): what an ATA disk leaves after reset/diagnostic. */
  setSignature(): void {
    this.nsect = 1;
    this.lbal = 1;
    this.lbam = 0;
    this.lbah = 0;
    this.hobNsect = 0;
    this.hobLbal = 0;
    this.hobLbam = 0;
    this.hobLbah = 0;
    this.device = (this.device & ATA_DEV1) | 0xa0; // head and LBA bits cleared; the selection is kept
  }

  state(): TaskFileState {
    const { feature, nsect, lbal, lbam, lbah, hobFeature, hobNsect, hobLbal, hobLbam, hobLbah, device } = this;
    return { feature, nsect, lbal, lbam, lbah, hobFeature, hobNsect, hobLbal, hobLbam, hobLbah, device };
  }

  load(s: TaskFileState): void {
    for (const [k, v] of Object.entries(s)) {
      if (typeof v !== 'number' || v < 0 || v > 0xff || !Number.isInteger(v)) {
        throw new RangeError(`ata taskfile: register ${k}=${String(v)} is not a byte`);
      }
    }
    Object.assign(this, s);
  }
}
