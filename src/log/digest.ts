// Digests of moved data: length and CRC-32 (zlib's, so `crc32` tools agree), bytes when kept.

import { crc32 } from 'node:zlib';
import type { DataDigest } from './record.ts';

export function crcHex(data: Uint8Array): string {
  return crc32(data).toString(16).padStart(8, '0');
}

/**
 * `bytes` is the caller's buffer, not a copy: records are serialized inside LogWriter.write,
 * before the caller's buffer (a guest's DMA memory, a reused reply) can change.
 */
export function digest(data: Uint8Array, keep: boolean): DataDigest {
  return keep ? { len: data.length, crc: crcHex(data), bytes: data } : { len: data.length, crc: crcHex(data) };
}
