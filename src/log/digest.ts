// Digests of moved data: length and CRC-32 (zlib's, so `crc32` tools agree), bytes when kept.

import { crc32 } from 'node:zlib';
import type { DataDigest } from './record.ts';

export function crcHex(data: Uint8Array): string {
  return crc32(data).toString(16).padStart(8, '0');
}

export function digest(data: Uint8Array, keep: boolean): DataDigest {
  // A copy: the caller's buffer (a guest's DMA memory, a reused reply) changes after this returns.
  return keep ? { len: data.length, crc: crcHex(data), bytes: Uint8Array.from(data) } : { len: data.length, crc: crcHex(data) };
}
