// IDENTIFY DEVICE data (ATA-8 ACS 7.16): 256 little-endian words. Word numbers follow the
// spec and Linux's ATA_ID_* names; QEMU's hw/ide/core.c ide_identify() fills the same words.

import { SECTOR } from '../../backends/block.ts';

/** Largest READ/WRITE MULTIPLE block we offer (word 47), as QEMU's MAX_MULT_SECTORS. */
export const MAX_MULT_SECTORS = 16;
/** LBA28 limit: words 60-61 saturate here; LBA48 words 100-103 carry the real size. */
export const LBA28_LIMIT = 0x0fff_ffff;

export interface Geometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

export interface IdentifyInfo {
  sectors: number;
  model: string;
  serial: string;
  firmware: string;
  /** Default (physical) CHS geometry: words 1, 3, 6. */
  geometry: Geometry;
  /** Current (logical) CHS geometry set by INITIALIZE DEVICE PARAMETERS: words 54-58. */
  current: Geometry;
  /** Current READ/WRITE MULTIPLE block size, 0 = multiple mode off (word 59). */
  multSectors: number;
  writeCache: boolean;
  lookAhead: boolean;
  /** Selected transfer mode from SET FEATURES 03h (its sector-count value), or null. */
  xferMode: number | null;
  /** DATA SET MANAGEMENT TRIM offered (the backend can discard): blocks of ranges per command, 0 = none. */
  trimBlocks: number;
}

/** The classic BIOS translation: 16 heads, 63 sectors per track, at most 16383 cylinders. */
export function defaultGeometry(sectors: number): Geometry {
  const heads = 16;
  const sectorsPerTrack = 63;
  const cylinders = Math.max(1, Math.min(16383, Math.floor(sectors / (heads * sectorsPerTrack))));
  return { cylinders, heads, sectorsPerTrack };
}

/** ATA strings: space padded, two characters per word with the first in the high byte. */
function putString(buf: Uint8Array, word: number, text: string, chars: number): void {
  const padded = text.slice(0, chars).padEnd(chars, ' ');
  for (let i = 0; i < chars; i++) {
    const code = padded.charCodeAt(i);
    // Non-ASCII would not survive the byte swap meaningfully: replace it.
    buf[word * 2 + (i ^ 1)] = code >= 0x20 && code < 0x7f ? code : 0x3f;
  }
}

export function buildIdentify(info: IdentifyInfo): Uint8Array {
  const buf = new Uint8Array(SECTOR);
  const view = new DataView(buf.buffer);
  const put = (word: number, value: number): void => view.setUint16(word * 2, value & 0xffff, true);
  const { geometry: g, current: c } = info;

  put(0, 0x0040); // general configuration: fixed (non-removable) ATA device
  put(1, g.cylinders);
  put(3, g.heads);
  put(6, g.sectorsPerTrack);
  putString(buf, 10, info.serial, 20); // words 10-19
  putString(buf, 23, info.firmware, 8); // words 23-26
  putString(buf, 27, info.model, 40); // words 27-46
  put(47, 0x8000 | MAX_MULT_SECTORS); // max sectors per READ/WRITE MULTIPLE block
  put(48, 0x0001); // 32-bit PIO data transfers work (QEMU sets it too)
  put(49, (1 << 11) | (1 << 9) | (1 << 8)); // IORDY, LBA, DMA supported
  put(50, 0x4000); // bit 14 shall be one
  put(53, 0x0007); // words 54-58, 64-70 and 88 are valid
  put(54, c.cylinders);
  put(55, c.heads);
  put(56, c.sectorsPerTrack);
  const chsCapacity = c.cylinders * c.heads * c.sectorsPerTrack;
  put(57, chsCapacity);
  put(58, chsCapacity >>> 16);
  if (info.multSectors > 0) put(59, 0x0100 | info.multSectors); // multiple setting valid + current
  const lba28 = Math.min(info.sectors, LBA28_LIMIT);
  put(60, lba28);
  put(61, lba28 >>> 16);
  const mode = info.xferMode;
  const mwdmaSel = mode !== null && (mode & 0xf8) === 0x20 ? 1 << (8 + (mode & 7)) : 0;
  const udmaSel = mode !== null && (mode & 0xf8) === 0x40 ? 1 << (8 + (mode & 7)) : 0;
  put(63, 0x0007 | mwdmaSel); // multiword DMA 0-2 supported (+ the selected one)
  put(64, 0x0003); // PIO modes 3 and 4 supported
  put(65, 120); // minimum multiword DMA cycle time (ns)
  put(66, 120); // recommended multiword DMA cycle time
  put(67, 120); // minimum PIO cycle time without flow control
  put(68, 120); // minimum PIO cycle time with IORDY
  put(80, 0x00f0); // major version: ATA-4 .. ATA/ATAPI-7
  put(82, (1 << 6) | (1 << 5)); // look-ahead, volatile write cache supported
  put(83, 0x4000 | (1 << 13) | (1 << 12) | (1 << 10)); // FLUSH CACHE EXT, FLUSH CACHE, LBA48
  put(84, 0x4000);
  put(85, (info.lookAhead ? 1 << 6 : 0) | (info.writeCache ? 1 << 5 : 0)); // enabled now
  put(86, (1 << 13) | (1 << 12) | (1 << 10)); // enabled: FLUSH CACHE EXT, FLUSH CACHE, LBA48
  put(87, 0x4000);
  put(88, 0x003f | udmaSel); // UDMA 0-5 supported (+ the selected one)
  if (info.trimBlocks > 0) {
    put(105, info.trimBlocks); // max 512-byte blocks of LBA ranges per DATA SET MANAGEMENT
    put(169, 0x0001); // TRIM supported
  }
  put(93, 0x6001); // hardware reset result: device 0 passed, 80-wire cable (as QEMU)
  // Words 100-103: 48-bit capacity; JS numbers hold 2^53, plenty for 2^48 sectors.
  put(100, info.sectors);
  put(101, Math.floor(info.sectors / 0x1_0000));
  put(102, Math.floor(info.sectors / 0x1_0000_0000));
  put(103, 0);
  // Word 255: signature A5h in the low byte, checksum in the high byte so that all 512
  // bytes sum to zero modulo 256.
  buf[510] = 0xa5;
  let sum = 0;
  for (let i = 0; i < 511; i++) sum += buf[i];
  buf[511] = (256 - (sum & 0xff)) & 0xff;
  return buf;
}

/** Decodes an ATA string (for tests and tools). */
export function readAtaString(buf: Uint8Array, word: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) out += String.fromCharCode(buf[word * 2 + (i ^ 1)]);
  return out.trimEnd();
}
