// A register-level ATA driver for tests: it touches the model exactly as a PIO/BMDMA driver
// (Linux libata-sff) does, through legacy port numbers mapped to region offsets.

import type { DeviceEdges, DmaPort } from '../../src/device.ts';
import { AtaDevice, REGION_BMIDE, REGION_CMD, REGION_CTL, type AtaOptions } from '../../src/devices/ata/index.ts';
import type { BlockBackend } from '../../src/backends/block.ts';

export const BMIDE_BASE = 0xc000; // where a BIOS might place BAR4; only the offset matters

/** Guest memory with a DMA window [base, base+size); accesses outside are refused (null/false). */
export class GuestRam implements DmaPort {
  readonly mem: Uint8Array;
  reads = 0;
  writes = 0;
  constructor(readonly base: number, readonly size: number) {
    this.mem = new Uint8Array(size);
  }
  private inside(addr: number, len: number): boolean {
    return addr >= this.base && addr + len <= this.base + this.size;
  }
  async read(addr: number, len: number): Promise<Uint8Array | null> {
    this.reads++;
    if (!this.inside(addr, len)) return null;
    return this.mem.slice(addr - this.base, addr - this.base + len);
  }
  async write(addr: number, data: Uint8Array): Promise<boolean> {
    this.writes++;
    if (!this.inside(addr, data.length)) return false;
    this.mem.set(data, addr - this.base);
    return true;
  }
  /** Writes a PRD table: entries of [addr, byteCount, eot]. */
  putPrd(at: number, entries: Array<[number, number, boolean]>): void {
    const view = new DataView(this.mem.buffer);
    entries.forEach(([addr, count, eot], i) => {
      view.setUint32(at - this.base + i * 8, addr, true);
      view.setUint32(at - this.base + i * 8 + 4, (count & 0xffff) | (eot ? 0x8000_0000 : 0), true);
    });
  }
}

export class IrqProbe {
  level = false;
  rises = 0;
  set(level: boolean): void {
    if (level && !this.level) this.rises++;
    this.level = level;
  }
}

export interface Rig {
  dev: AtaDevice;
  irq: IrqProbe;
  ram: GuestRam;
  drv: AtaDriver;
}

export function makeRig(blk: BlockBackend, options: AtaOptions = {}, ram = new GuestRam(0x10_0000, 0x40_0000)): Rig {
  const irq = new IrqProbe();
  const edges: DeviceEdges = { irq, dma: ram, clock: () => 0 };
  const dev = new AtaDevice(edges, blk, options);
  return { dev, irq, ram, drv: new AtaDriver(dev) };
}

function locate(port: number): [number, number] {
  if (port >= 0x1f0 && port <= 0x1f7) return [REGION_CMD, port - 0x1f0];
  if (port === 0x3f6) return [REGION_CTL, 0];
  if (port >= BMIDE_BASE && port < BMIDE_BASE + 16) return [REGION_BMIDE, port - BMIDE_BASE];
  throw new Error(`test driver: port 0x${port.toString(16)} is not ATA`);
}

export class AtaDriver {
  constructor(readonly dev: AtaDevice) {}

  inb(port: number): number {
    const [r, o] = locate(port);
    return this.dev.read(r, o, 1) as number;
  }
  inw(port: number): number {
    const [r, o] = locate(port);
    return this.dev.read(r, o, 2) as number;
  }
  inl(port: number): number {
    const [r, o] = locate(port);
    return this.dev.read(r, o, 4) as number;
  }
  outb(port: number, v: number): void {
    const [r, o] = locate(port);
    this.dev.write(r, o, 1, v);
  }
  outw(port: number, v: number): void {
    const [r, o] = locate(port);
    this.dev.write(r, o, 2, v);
  }
  outl(port: number, v: number): void {
    const [r, o] = locate(port);
    this.dev.write(r, o, 4, v);
  }
  insw(port: number, words: number): Uint8Array {
    const [r, o] = locate(port);
    return this.dev.readString(r, o, 2, words);
  }
  outsw(port: number, data: Uint8Array): void {
    const [r, o] = locate(port);
    this.dev.writeString(r, o, 2, data);
  }

  altStatus(): number {
    return this.inb(0x3f6);
  }
  status(): number {
    return this.inb(0x1f7);
  }
  error(): number {
    return this.inb(0x1f1);
  }

  /**
   * Polls the alternate status (as libata's ata_sff_busy_wait) until BSY clears, letting async
   * I/O run, then reads the status register as an interrupt handler does (acknowledging INTRQ).
   */
  async waitNotBusy(maxPolls = 10_000): Promise<number> {
    for (let i = 0; i < maxPolls; i++) {
      const st = this.altStatus();
      if (!(st & 0x80)) return this.status();
      await this.dev.whenIdle();
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('test driver: device stays BSY');
  }

  /** Loads the taskfile for an LBA28 command and issues it. */
  issue28(cmd: number, lba: number, count: number, feature = 0): void {
    this.outb(0x1f1, feature);
    this.outb(0x1f2, count & 0xff);
    this.outb(0x1f3, lba & 0xff);
    this.outb(0x1f4, (lba >>> 8) & 0xff);
    this.outb(0x1f5, (lba >>> 16) & 0xff);
    this.outb(0x1f6, 0xe0 | ((lba >>> 24) & 0x0f));
    this.outb(0x1f7, cmd);
  }

  /** LBA48: each register written twice, high-order byte first (as libata's ata_sff_tf_load). */
  issue48(cmd: number, lba: number, count: number): void {
    const hi = Math.floor(lba / 0x100_0000);
    this.outb(0x1f2, (count >>> 8) & 0xff);
    this.outb(0x1f3, hi & 0xff);
    this.outb(0x1f4, (hi >>> 8) & 0xff);
    this.outb(0x1f5, (hi >>> 16) & 0xff);
    this.outb(0x1f2, count & 0xff);
    this.outb(0x1f3, lba & 0xff);
    this.outb(0x1f4, (lba >>> 8) & 0xff);
    this.outb(0x1f5, (lba >>> 16) & 0xff);
    this.outb(0x1f6, 0x40);
    this.outb(0x1f7, cmd);
  }

  /** PIO data-in: waits for each DRQ block and reads it with rep insw, 512 bytes at a time. */
  async pioIn(sectors: number): Promise<Uint8Array> {
    const out = new Uint8Array(sectors * 512);
    for (let s = 0; s < sectors; s++) {
      const st = await this.waitNotBusy();
      if (!(st & 0x08) || st & 0x01) throw new Error(`test driver: no DRQ for sector ${s}: status 0x${st.toString(16)} error 0x${this.error().toString(16)}`);
      out.set(this.insw(0x1f0, 256), s * 512);
    }
    return out;
  }

  /** PIO data-out: one sector per DRQ wait. */
  async pioOut(data: Uint8Array): Promise<void> {
    for (let s = 0; s < data.length / 512; s++) {
      const st = await this.waitNotBusy();
      if (!(st & 0x08) || st & 0x01) throw new Error(`test driver: no DRQ for sector ${s}: status 0x${st.toString(16)}`);
      this.outsw(0x1f0, data.subarray(s * 512, s * 512 + 512));
    }
  }

  async identify(): Promise<Uint8Array> {
    this.outb(0x1f6, 0xa0);
    this.outb(0x1f7, 0xec);
    return this.pioIn(1);
  }

  /** Bus-master setup as libata: PRD pointer, direction, clear ERR/INTR. */
  bmSetup(prd: number, toMemory: boolean): void {
    this.outl(BMIDE_BASE + 4, prd);
    this.outb(BMIDE_BASE, toMemory ? 0x08 : 0x00);
    this.outb(BMIDE_BASE + 2, this.inb(BMIDE_BASE + 2) | 0x06);
  }
  bmStart(): void {
    this.outb(BMIDE_BASE, this.inb(BMIDE_BASE) | 0x01);
  }
  bmStop(): void {
    this.outb(BMIDE_BASE, this.inb(BMIDE_BASE) & ~0x01);
  }
  bmStatus(): number {
    return this.inb(BMIDE_BASE + 2);
  }
}

/** A backend wrapper whose operations wait for `release()`: makes BSY windows observable. */
export class GatedBackend implements BlockBackend {
  private gates: Array<() => void> = [];
  constructor(readonly inner: BlockBackend) {}
  get name(): string { return `gated:${this.inner.name}`; }
  get sectors(): number { return this.inner.sectors; }
  get readOnly(): boolean { return this.inner.readOnly; }
  get canTrim(): boolean { return this.inner.canTrim; }
  get waiting(): number { return this.gates.length; }
  private gate(): Promise<void> {
    return new Promise((r) => this.gates.push(r));
  }
  release(): void {
    for (const g of this.gates.splice(0)) g();
  }
  async read(lba: number, count: number): Promise<Uint8Array> {
    await this.gate();
    return this.inner.read(lba, count);
  }
  async write(lba: number, data: Uint8Array, fua?: boolean): Promise<void> {
    await this.gate();
    return this.inner.write(lba, data, fua);
  }
  async flush(): Promise<void> {
    await this.gate();
    return this.inner.flush();
  }
  trim(lba: number, count: number): Promise<void> {
    return this.inner.trim(lba, count);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export function pattern(sectors: number, seed: number): Uint8Array {
  const out = new Uint8Array(sectors * 512);
  for (let i = 0; i < out.length; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

/** Index of the first differing byte (or length mismatch), -1 when equal: fast for big buffers. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const i = Buffer.from(a.buffer, a.byteOffset, a.length).compare(Buffer.from(b.buffer, b.byteOffset, b.length));
  if (i === 0) return -1;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return k;
  return -1;
}
