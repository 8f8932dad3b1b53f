// What the Linux guest kit's workloads write (native/linux-guest/workloads/disk and stream),
// generated here independently, so the host can check a guest's disk after a run.

import { createHash } from 'node:crypto';

const line64 = (prefix: string): string => `${prefix.padEnd(63, '.')}\n`;

/** The disk workload's file k (0-based) of `guest`: (k+1)*196608 + k*4099 bytes of 64-byte lines. */
export function kitFileSize(k: number): number {
  return (k + 1) * 196608 + k * 4099;
}

export function kitFileContent(guest: string, k: number): Buffer {
  const size = kitFileSize(k);
  const parts: string[] = [];
  const k2 = String(k).padStart(2, '0');
  for (let i = 0; i * 64 < size; i++) parts.push(line64(`muxvisor ${guest} file ${k2} line ${String(i).padStart(8, '0')} `));
  return Buffer.from(parts.join(''), 'latin1').subarray(0, size);
}

/** The disk workload's raw region: 8 lines a sector, each naming the sector's LBA on the guest's disk. */
export function kitRawContent(guest: string, firstLba: number, sectors: number): Buffer {
  const parts: string[] = [];
  for (let s = 0; s < sectors; s++) {
    const lba = String(firstLba + s).padStart(10, '0');
    for (let j = 0; j < 8; j++) parts.push(line64(`muxvisor ${guest} raw sector ${lba} part ${j} `));
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** The stream workload's chunk k of `bytes` bytes. */
export function kitStreamChunk(guest: string, k: number, bytes: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < bytes / 64; i++) parts.push(line64(`muxvisor ${guest} stream chunk ${String(k).padStart(8, '0')} line ${String(i).padStart(8, '0')} `));
  return Buffer.from(parts.join(''), 'latin1');
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
