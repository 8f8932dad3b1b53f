// The sequences Linux's ata_piix + libata-sff run against a PIIX3 IDE port, replayed in
// order (ata_devchk, ata_bus_softreset, ata_sff_wait_after_reset, ata_sff_dev_classify,
// IDENTIFY with 32-bit PIO, SET FEATURES XFER, revalidation, BMDMA reads/writes through
// ata_bmdma_port_intr, FLUSH). Device 0 must classify as ATA and device 1 as absent.

import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.ts';
import { BMIDE_BASE, firstDiff, makeRig, pattern, type Rig } from './helpers/ata-driver.ts';

const CMD = 0x1f0, CTL = 0x3f6, BM = BMIDE_BASE;
const NSECT = CMD + 2, LBAL = CMD + 3, LBAM = CMD + 4, LBAH = CMD + 5, DEVICE = CMD + 6, STATUS = CMD + 7, ERROR = CMD + 1;
const BSY = 0x80, DRDY = 0x40, DF = 0x20, DRQ = 0x08, ERR = 0x01;
const DEVCTL_OBS = 0x08, SRST = 0x04;
const DMA_START = 0x01, DMA_WR = 0x08, DMA_ERR = 0x02, DMA_INTR = 0x04;
const PRD = 0x10_1000;
const BUF = 0x12_0000;

type Class = 'ATA' | 'ATAPI' | 'NONE' | 'UNKNOWN';

class LibataPort {
  constructor(readonly rig: Rig) {}
  private get d() {
    return this.rig.drv;
  }
  private tick(): Promise<void> {
    return new Promise((r) => setImmediate(r));
  }

  devSelect(dev: number): void {
    this.d.outb(DEVICE, dev ? 0xb0 : 0xa0);
    this.d.inb(CTL); // ata_sff_pause
  }

  /** ata_devchk: write patterns, see them come back. */
  devchk(dev: number): boolean {
    this.devSelect(dev);
    for (const [n, l] of [[0x55, 0xaa], [0xaa, 0x55], [0x55, 0xaa]]) {
      this.d.outb(NSECT, n);
      this.d.outb(LBAL, l);
    }
    return this.d.inb(NSECT) === 0x55 && this.d.inb(LBAL) === 0xaa;
  }

  /** ata_sff_wait_ready: poll status until !BSY; 0xff means no device. */
  async waitReady(): Promise<'ready' | 'nodev'> {
    for (let i = 0; i < 1000; i++) {
      const st = this.d.inb(STATUS);
      if (st === 0xff) return 'nodev';
      if (!(st & BSY)) return 'ready';
      await this.tick();
    }
    throw new Error('timeout waiting for !BSY');
  }

  async softreset(): Promise<Class[]> {
    let devmask = 0;
    if (this.devchk(0)) devmask |= 1;
    if (this.devchk(1)) devmask |= 2;
    this.devSelect(0);
    // ata_bus_softreset
    this.d.outb(CTL, DEVCTL_OBS);
    this.d.outb(CTL, DEVCTL_OBS | SRST);
    this.d.outb(CTL, DEVCTL_OBS);
    // ata_sff_wait_after_reset
    expect(await this.waitReady()).toBe('ready');
    if (devmask & 2) {
      this.devSelect(1);
      for (let i = 0; i < 2; i++) if (this.d.inb(NSECT) === 1 && this.d.inb(LBAL) === 1) break;
      await this.waitReady();
    }
    this.devSelect(0);
    if (devmask & 2) this.devSelect(1);
    if (devmask & 1) this.devSelect(0);
    const classes: Class[] = [];
    const c0 = this.classify(0, (devmask & 1) !== 0);
    classes.push(c0.cls);
    if (c0.err !== 0x81) classes.push(this.classify(1, (devmask & 2) !== 0).cls);
    return classes;
  }

  /** ata_sff_dev_classify with ata_dev_classify's signature table. */
  classify(dev: number, present: boolean): { cls: Class; err: number } {
    this.devSelect(dev);
    const err = this.d.inb(ERROR);
    const lbam = this.d.inb(LBAM);
    const lbah = this.d.inb(LBAH);
    let diagFailed = false;
    if (err === 0) diagFailed = true;
    else if (err === 1 || (dev === 0 && err === 0x81)) {
      /* passed */
    } else return { cls: 'NONE', err };
    let cls: Class = lbam === 0 && lbah === 0 ? 'ATA' : lbam === 0x14 && lbah === 0xeb ? 'ATAPI' : 'UNKNOWN';
    if (cls === 'UNKNOWN') cls = present && diagFailed ? 'ATA' : 'NONE';
    else if (cls === 'ATA' && this.d.inb(STATUS) === 0) cls = 'NONE';
    return { cls, err };
  }

  /** Waits for INTRQ, then does what ata_sff_irq_status does: altstatus, then status (ack). */
  async waitIrq(): Promise<number> {
    for (let i = 0; i < 1000 && !this.rig.irq.level; i++) {
      await this.rig.dev.whenIdle();
      await this.tick();
    }
    if (!this.rig.irq.level) throw new Error('no interrupt');
    if (this.d.inb(CTL) & BSY) throw new Error('interrupt while BSY');
    return this.d.inb(STATUS);
  }

  loadTf(cmd: number, lba: number, count: number, feature = 0): void {
    this.d.outb(CTL, DEVCTL_OBS); // nIEN clear: interrupt-driven
    this.d.outb(ERROR, feature);
    this.d.outb(NSECT, count);
    this.d.outb(LBAL, lba & 0xff);
    this.d.outb(LBAM, (lba >> 8) & 0xff);
    this.d.outb(LBAH, (lba >> 16) & 0xff);
    this.d.outb(DEVICE, 0xe0 | ((lba >> 24) & 0xf));
    this.d.outb(STATUS, cmd);
  }

  /** PIO data-in, one sector per DRQ, read as 32-bit words (ATA_PFLAG_PIO32). */
  async pioIn(cmd: number, lba: number, count: number, sectors = count): Promise<Uint8Array> {
    this.loadTf(cmd, lba, count);
    const out = new Uint8Array(sectors * 512);
    for (let s = 0; s < sectors; s++) {
      const st = await this.waitIrq();
      expect(st & (DRQ | ERR | DF)).toBe(DRQ);
      out.set(this.rig.dev.readString(0, 0, 4, 128), s * 512);
    }
    expect(this.d.inb(CTL) & (BSY | DRQ)).toBe(0);
    return out;
  }

  async nodata(cmd: number, feature = 0, count = 0): Promise<number> {
    this.loadTf(cmd, 0, count, feature);
    return this.waitIrq();
  }

  /** ata_bmdma_setup + exec + ata_bmdma_start, then ata_bmdma_port_intr on the IRQ. */
  async dma(cmd: number, lba: number, count: number, write: boolean): Promise<{ status: number; host: number }> {
    const view = new DataView(this.rig.ram.mem.buffer);
    view.setUint32(PRD - this.rig.ram.base, BUF, true);
    view.setUint32(PRD - this.rig.ram.base + 4, ((count * 512) | 0x8000_0000) >>> 0, true);
    this.d.outl(BM + 4, PRD);
    let dmactl = this.d.inb(BM) & ~(DMA_WR | DMA_START);
    if (!write) dmactl |= DMA_WR;
    this.d.outb(BM, dmactl);
    this.loadTf(cmd, lba, count);
    this.d.outb(BM, this.d.inb(BM) | DMA_START);
    for (let i = 0; i < 1000 && !this.rig.irq.level; i++) {
      await this.rig.dev.whenIdle();
      await this.tick();
    }
    const host = this.d.inb(BM + 2);
    expect(host & DMA_INTR).toBe(DMA_INTR);
    this.d.outb(BM, this.d.inb(BM) & ~DMA_START); // ata_bmdma_stop
    this.d.inb(CTL); // ata_sff_dma_pause
    const status = this.d.inb(STATUS);
    this.d.outb(BM + 2, this.d.inb(BM + 2)); // ata_bmdma_irq_clear
    return { status, host };
  }
}

const ataOk = (st: number): boolean => (st & (BSY | DF | DRQ | ERR)) === 0 && (st & DRDY) !== 0;

describe('libata (ata_piix) sequences against the model', () => {
  it('probes: device 0 is ATA, device 1 is absent; IDENTIFY, SET XFER, revalidate, DMA I/O, flush', async () => {
    const blk = new MemoryBackend(8192, { data: pattern(8192, 1) });
    const rig = makeRig(blk, { model: 'LIBATA TEST', serial: 'S1' });
    const port = new LibataPort(rig);
    expect(await port.softreset()).toEqual(['ATA', 'NONE']);

    port.devSelect(0);
    const id = await port.pioIn(0xec, 0, 0, 1);
    const sum = id.reduce((a, b) => a + b, 0);
    expect(sum % 256).toBe(0);
    expect(await port.nodata(0xef, 0x03, 0x22)).toSatisfy(ataOk); // MWDMA2 (PIIX3 has no UDMA)
    const again = await port.pioIn(0xec, 0, 0, 1);
    // ata_dev_same_device: model, serial and capacity unchanged.
    expect(firstDiff(again.subarray(20, 94), id.subarray(20, 94))).toBe(-1);
    expect(firstDiff(again.subarray(120, 124), id.subarray(120, 124))).toBe(-1);

    const r = await port.dma(0xc8, 100, 8, false);
    expect(r.status).toSatisfy(ataOk);
    expect(r.host & DMA_ERR).toBe(0);
    expect(firstDiff(rig.ram.mem.subarray(BUF - rig.ram.base, BUF - rig.ram.base + 4096), blk.data.subarray(100 * 512, 108 * 512))).toBe(-1);

    rig.ram.mem.set(pattern(8, 9), BUF - rig.ram.base);
    const w = await port.dma(0xca, 2000, 8, true);
    expect(w.status).toSatisfy(ataOk);
    expect(firstDiff(blk.data.subarray(2000 * 512, 2008 * 512), pattern(8, 9))).toBe(-1);
    expect(firstDiff(await port.pioIn(0x20, 2000, 2), pattern(8, 9).subarray(0, 1024))).toBe(-1);
    expect(await port.nodata(0xe7)).toSatisfy(ataOk);
    expect(blk.calls.flush).toBe(1);
    expect(rig.dev.metrics()).toEqual({});
  });
});
