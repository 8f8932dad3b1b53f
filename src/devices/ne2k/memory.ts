// The card's address space as remote DMA sees it: the 32-byte station-address PROM at
// 0x0000 (read-only), nothing at 0x0020-0x3FFF (reads 0xFF), 32 KiB of buffer memory at
// 0x4000-0xBFFF, nothing above. Every access is checked byte by byte, so no guest address
// can reach outside the array (CVE-2015-8743: 4-byte accesses at the end of memory).

import { ETH_ALEN, NE_PMEM_END, NE_PMEM_SIZE, NE_PMEM_START, NE_PROM_SIZE } from './regs.ts';

/** PROM bytes 14 and 15: 0x57 ('W') marks a word-wide (NE2000, not NE1000) card for probes. */
const PROM_WORD_SIGNATURE = 0x57;

/** The PROM image of a MAC: 16 bytes (MAC, 8 zero bytes, 0x57 0x57), each byte doubled. */
export function buildProm(mac: Uint8Array): Uint8Array {
  if (mac.length !== ETH_ALEN) throw new RangeError(`ne2k: a MAC has 6 bytes, got ${mac.length}`);
  const prom = new Uint8Array(NE_PROM_SIZE);
  const words = new Uint8Array(16);
  words.set(mac, 0);
  words[14] = PROM_WORD_SIGNATURE;
  words[15] = PROM_WORD_SIGNATURE;
  for (let i = 0; i < 16; i++) prom[2 * i] = prom[2 * i + 1] = words[i];
  return prom;
}

/** Parses "52:54:00:12:34:56" (or with '-'); null when malformed. */
export function parseMac(text: string): Uint8Array | null {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(text);
  if (!m) return null;
  return Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => Number.parseInt(h, 16)));
}

export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export type MemWriteResult = 'ok' | 'prom' | 'unmapped';

export class NicMemory {
  /** Buffer memory only; index = address - NE_PMEM_START. */
  readonly buffer = new Uint8Array(NE_PMEM_SIZE);
  prom: Uint8Array;

  constructor(mac: Uint8Array) {
    this.prom = buildProm(mac);
  }

  /** One byte at a 16-bit card address; 0xFF where nothing decodes. */
  readByte(addr: number): number {
    if (addr < NE_PROM_SIZE) return this.prom[addr];
    if (addr >= NE_PMEM_START && addr < NE_PMEM_END) return this.buffer[addr - NE_PMEM_START];
    return 0xff;
  }

  /** One byte written; the PROM and unmapped addresses keep their contents. */
  writeByte(addr: number, value: number): MemWriteResult {
    if (addr >= NE_PMEM_START && addr < NE_PMEM_END) {
      this.buffer[addr - NE_PMEM_START] = value & 0xff;
      return 'ok';
    }
    return addr < NE_PROM_SIZE ? 'prom' : 'unmapped';
  }

  /** Is [addr, addr + len) entirely buffer memory? */
  static inBuffer(addr: number, len: number): boolean {
    return addr >= NE_PMEM_START && len >= 0 && addr + len <= NE_PMEM_END;
  }

  /** A copy of buffer memory [addr, addr + len); the caller checked inBuffer. */
  slice(addr: number, len: number): Uint8Array {
    return this.buffer.slice(addr - NE_PMEM_START, addr - NE_PMEM_START + len);
  }

  clear(): void {
    this.buffer.fill(0);
  }
}
