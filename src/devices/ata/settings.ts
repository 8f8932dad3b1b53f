// Drive settings a driver changes with commands and that survive a software reset:
// READ/WRITE MULTIPLE block size, write cache, look-ahead, transfer mode, CHS translation.

import { LBA28_LIMIT, MAX_MULT_SECTORS, type Geometry } from './identify.ts';
import * as R from './regs.ts';

export interface SettingsState {
  multSectors: number;
  writeCache: boolean;
  lookAhead: boolean;
  xferMode: number | null;
  current: Geometry;
}

export class DriveSettings implements SettingsState {
  // Multiple mode on at power-on with the largest block, as QEMU: libata uses READ/WRITE
  // MULTIPLE when word 59 says a setting is valid.
  multSectors = MAX_MULT_SECTORS;
  writeCache: boolean;
  lookAhead = true;
  xferMode: number | null = null;
  current: Geometry;

  constructor(
    readonly geometry: Geometry,
    private readonly initialWriteCache: boolean,
  ) {
    this.writeCache = initialWriteCache;
    this.current = { ...geometry };
  }

  /** Power-on defaults. */
  reset(): void {
    this.load({ multSectors: MAX_MULT_SECTORS, writeCache: this.initialWriteCache, lookAhead: true, xferMode: null, current: this.geometry });
  }

  /** SET MULTIPLE MODE: 0 turns it off, else a power of two up to MAX_MULT_SECTORS. */
  setMultiple(n: number): boolean {
    if (n > MAX_MULT_SECTORS || (n & (n - 1)) !== 0) return false;
    this.multSectors = n;
    return true;
  }

  /** SET FEATURES; false means abort. */
  setFeature(feature: number, count: number): boolean {
    switch (feature) {
      case R.SETFEATURES_WC_ON: this.writeCache = true; return true;
      case R.SETFEATURES_WC_OFF: this.writeCache = false; return true;
      case R.SETFEATURES_RA_ON: this.lookAhead = true; return true;
      case R.SETFEATURES_RA_OFF: this.lookAhead = false; return true;
      case R.SETFEATURES_DEFAULTS_ON:
      case R.SETFEATURES_DEFAULTS_OFF: return true;
      case R.SETFEATURES_XFER:
        if (!validXferMode(count)) return false;
        this.xferMode = count;
        return true;
      default:
        return false;
    }
  }

  /** INITIALIZE DEVICE PARAMETERS: the CHS translation for CHS-addressed commands. */
  initParams(heads: number, sectorsPerTrack: number, capacity: number): boolean {
    if (sectorsPerTrack === 0 || heads === 0) return false;
    const cylinders = Math.max(1, Math.min(65535, Math.floor(Math.min(capacity, LBA28_LIMIT) / (heads * sectorsPerTrack))));
    this.current = { cylinders, heads, sectorsPerTrack };
    return true;
  }

  state(): SettingsState {
    const { multSectors, writeCache, lookAhead, xferMode } = this;
    return { multSectors, writeCache, lookAhead, xferMode, current: { ...this.current } };
  }

  load(s: SettingsState): void {
    if (s.multSectors > MAX_MULT_SECTORS || (s.multSectors & (s.multSectors - 1)) !== 0) {
      throw new RangeError(`ata: multiple count ${s.multSectors} invalid`);
    }
    if (s.xferMode !== null && !validXferMode(s.xferMode)) throw new RangeError(`ata: transfer mode 0x${s.xferMode.toString(16)} invalid`);
    this.multSectors = s.multSectors;
    this.writeCache = s.writeCache;
    this.lookAhead = s.lookAhead;
    this.xferMode = s.xferMode;
    this.current = { ...s.current };
  }
}

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
