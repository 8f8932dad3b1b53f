// Helpers for tests that drive QEMU's real IDE over qtest: availability, raw images,
// a Buffer-backed guest memory as edges.dma, an IRQ recorder and a tiny ATA PIO driver.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missing } from './requires.ts';
import type { DevSize, Device, DeviceEdges, DmaPort, IrqLine } from '../../src/device.ts';

/** Why QEMU tests must skip, or null when qemu-system-x86_64 is installed. */
export function qemuMissingReason(): string | null {
  return missing('qemu');
}

export const SECTOR = 512;

/** A temporary raw image whose sector n is filled by `fill(n)` (default: zeroes). */
export function makeImage(sectors: number, fill?: (lba: number) => Uint8Array): { path: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-qemu-img-'));
  const path = join(dir, 'disk.img');
  const buf = Buffer.alloc(sectors * SECTOR);
  if (fill) for (let n = 0; n < sectors; n++) buf.set(fill(n).subarray(0, SECTOR), n * SECTOR);
  writeFileSync(path, buf);
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic, sector-specific content: each sector differs from every other. */
export function patternSector(lba: number, salt = 0): Uint8Array {
  const s = new Uint8Array(SECTOR);
  for (let i = 0; i < SECTOR; i++) s[i] = (lba * 31 + i * 7 + salt * 13 + (i >> 8)) & 0xff;
  s[0] = lba & 0xff;
  s[1] = (lba >> 8) & 0xff;
  return s;
}

/** Guest memory window [base, base+size) backed by a Buffer; refusals are counted. */
export class BufferMemory implements DmaPort {
  readonly bytes: Buffer;
  refused = 0;
  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    this.bytes = Buffer.alloc(size);
  }
  private inside(addr: number, len: number): boolean {
    return addr >= this.base && len >= 0 && addr + len <= this.base + this.size;
  }
  async read(addr: number, len: number): Promise<Uint8Array | null> {
    if (!this.inside(addr, len)) return this.refused++, null;
    return Uint8Array.from(this.bytes.subarray(addr - this.base, addr - this.base + len));
  }
  async write(addr: number, data: Uint8Array): Promise<boolean> {
    if (!this.inside(addr, data.length)) return this.refused++, false;
    this.bytes.set(data, addr - this.base);
    return true;
  }
  /** Direct access for the test's own setup and checks. */
  at(addr: number, len: number): Buffer {
    return this.bytes.subarray(addr - this.base, addr - this.base + len);
  }
}

/** Records every level change handed to the IRQ line. */
export class IrqRecorder implements IrqLine {
  level = false;
  readonly history: boolean[] = [];
  set(level: boolean): void {
    this.level = level;
    this.history.push(level);
  }
}

export function makeEdges(memory: DmaPort, irq: IrqLine): DeviceEdges {
  return { irq, dma: memory, clock: () => Number(process.hrtime.bigint()) };
}

// A minimal ATA driver over a Device with regions cmd(0), ctl(1), bmide(2).
const CMD = 0;
const CTL = 1;
const STATUS = 7;
const BSY = 0x80;
const DRQ = 0x08;
const ERR = 0x01;

const rd = (dev: Device, region: number, offset: number, size: DevSize = 1) => Promise.resolve(dev.read(region, offset, size));
const wr = (dev: Device, region: number, offset: number, value: number, size: DevSize = 1) => Promise.resolve(dev.write(region, offset, size, value));

/** Poll alternate status (does not clear the IRQ) until BSY clears; bounded. */
export async function waitNotBusy(dev: Device, polls = 10_000): Promise<number> {
  for (let i = 0; i < polls; i++) {
    const s = await rd(dev, CTL, 0);
    if (!(s & BSY)) return s;
  }
  throw new Error(`ATA device still busy after ${polls} polls`);
}

/** Select the master and issue an LBA28 command with sector count and LBA. */
export async function issue(dev: Device, command: number, lba = 0, count = 0): Promise<void> {
  await waitNotBusy(dev);
  await wr(dev, CMD, 6, 0xe0 | ((lba >> 24) & 0x0f)); // LBA mode, device 0
  await wr(dev, CMD, 2, count & 0xff);
  await wr(dev, CMD, 3, lba & 0xff);
  await wr(dev, CMD, 4, (lba >> 8) & 0xff);
  await wr(dev, CMD, 5, (lba >> 16) & 0xff);
  await wr(dev, CMD, STATUS, command);
}

/** Wait for DRQ (data phase) and return the status; throws on ERR. */
export async function waitDrq(dev: Device): Promise<number> {
  const s = await waitNotBusy(dev);
  if (s & ERR) throw new Error(`ATA error, status 0x${s.toString(16)}, error 0x${(await rd(dev, CMD, 1)).toString(16)}`);
  if (!(s & DRQ)) throw new Error(`ATA: no DRQ, status 0x${s.toString(16)}`);
  return s;
}

export async function readData(dev: Device, words = 256): Promise<Uint8Array> {
  return Promise.resolve(dev.readString!(CMD, 0, 2, words));
}

export async function writeData(dev: Device, data: Uint8Array): Promise<void> {
  await Promise.resolve(dev.writeString!(CMD, 0, 2, data));
}

/** ATA string from IDENTIFY words: two characters per word, first in the high byte. */
export function ataString(id: Uint8Array, word: number, words: number): string {
  const b = Buffer.from(id.subarray(word * 2, (word + words) * 2));
  b.swap16();
  return b.toString('latin1').trimEnd();
}

export const word = (id: Uint8Array, n: number): number => id[n * 2] | (id[n * 2 + 1] << 8);
