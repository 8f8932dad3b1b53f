// Reads a classic pcap file (as src/mux/nic/pcap.ts writes it: little-endian, µs timestamps)
// back into frames with their capture time, so tests can check what a capture holds.

import { readFileSync } from 'node:fs';

export interface PcapRecord {
  /** Microseconds since the epoch. */
  us: number;
  frame: Uint8Array;
}

export function readPcap(path: string): PcapRecord[] {
  const b = readFileSync(path);
  if (b.length < 24 || b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian µs pcap file`);
  const out: PcapRecord[] = [];
  for (let at = 24; at < b.length; ) {
    if (at + 16 > b.length) throw new Error(`${path}: record header cut at byte ${at}`);
    const us = b.readUInt32LE(at) * 1e6 + b.readUInt32LE(at + 4);
    const len = b.readUInt32LE(at + 8);
    if (at + 16 + len > b.length) throw new Error(`${path}: frame cut at byte ${at}`);
    out.push({ us, frame: new Uint8Array(b.subarray(at + 16, at + 16 + len)) });
    at += 16 + len;
  }
  return out;
}
