// A scripted guest ATA driver: programs the task-file registers, the data port and the
// PIIX bus-master registers exactly as a real driver does (libata's SFF/BMDMA order),
// through a GuestPort. It never peeks at the device model.

import { PortIo, yieldToLoop, type GuestPort } from './port.ts';
import * as R from './ata-regs-driver.ts';

export class AtaDriverError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly error: number,
  ) {
    super(message);
    this.name = 'AtaDriverError';
  }
}

export interface Identity {
  model: string;
  serial: string;
  sectors: number;
  lba48: boolean;
  maxMultiple: number;
  writeCache: boolean;
}

/** The guest's own RAM that bus-master DMA reads and writes (bus address = base + index). */
export interface DmaMemory {
  base: number;
  buf: Uint8Array;
}

const POLL_LIMIT = 2_000_000; // polls before a command counts as hung

export class AtaDriver {
  readonly io: PortIo;
  private bmBase = -1;
  private multiple = 1;
  identity: Identity | null = null;

  constructor(
    port: GuestPort,
    readonly memory: DmaMemory | null = null,
    readonly cmd = R.ATA_PRIMARY_CMD,
    readonly ctl = R.ATA_PRIMARY_CTL,
  ) {
    this.io = new PortIo(port);
  }

  /** Scan PCI bus 0 for the PIIX IDE function (8086:7010) and take its BAR4 (bus master). */
  async probePci(): Promise<boolean> {
    for (let dev = 0; dev < 32; dev++) {
      for (let fn = 0; fn < 8; fn++) {
        const id = await this.pciRead(0, dev, fn, 0);
        if (id === 0xffff_ffff) {
          if (fn === 0) break;
          continue;
        }
        if (id === 0x7010_8086) {
          const bar4 = await this.pciRead(0, dev, fn, 0x20);
          if (bar4 & 1) this.bmBase = bar4 & 0xfffc;
          return this.bmBase > 0;
        }
      }
    }
    return false;
  }

  get hasDma(): boolean {
    return this.bmBase > 0 && this.memory !== null;
  }

  private async pciRead(bus: number, dev: number, fn: number, reg: number): Promise<number> {
    await this.io.outl(R.PCI_CONFIG_ADDRESS, (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | reg) >>> 0);
    return (await this.io.inl(R.PCI_CONFIG_DATA)) >>> 0;
  }

  private reg(r: number): number {
    return this.cmd + r;
  }

  /** Poll alternate status until BSY clears; yields to the event loop between polls. */
  private async waitNotBusy(what: string): Promise<number> {
    for (let i = 0; i < POLL_LIMIT; i++) {
      const st = await this.io.inb(this.ctl);
      if (!(st & R.ATA_BUSY)) return st;
      await yieldToLoop();
    }
    throw new AtaDriverError(`${what}: device stayed busy`, R.ATA_BUSY, 0);
  }

  /** Wait for the end of a phase, then read status (which acknowledges the IRQ). */
  private async settle(what: string): Promise<number> {
    await this.waitNotBusy(what);
    const st = await this.io.inb(this.reg(R.ATA_REG_STATUS));
    if (st & (R.ATA_ERR | R.ATA_DF)) {
      const err = await this.io.inb(this.reg(R.ATA_REG_ERR));
      throw new AtaDriverError(`${what}: status 0x${st.toString(16)} error 0x${err.toString(16)}`, st, err);
    }
    return st;
  }

  private async taskfile(lba: number, count: number, ext: boolean, feature = 0): Promise<void> {
    const io = this.io;
    await this.waitNotBusy('select');
    if (ext) {
      // LBA48: the "previous" (HOB) bytes go first, then the current ones.
      await io.outb(this.reg(R.ATA_REG_FEATURE), 0);
      await io.outb(this.reg(R.ATA_REG_NSECT), (count >> 8) & 0xff);
      await io.outb(this.reg(R.ATA_REG_LBAL), Math.floor(lba / 2 ** 24) & 0xff);
      await io.outb(this.reg(R.ATA_REG_LBAM), Math.floor(lba / 2 ** 32) & 0xff);
      await io.outb(this.reg(R.ATA_REG_LBAH), Math.floor(lba / 2 ** 40) & 0xff);
      await io.outb(this.reg(R.ATA_REG_DEVICE), R.ATA_LBA | R.ATA_DEVICE_OBS);
    } else {
      await io.outb(this.reg(R.ATA_REG_DEVICE), R.ATA_LBA | R.ATA_DEVICE_OBS | ((lba >> 24) & 0x0f));
    }
    await io.outb(this.reg(R.ATA_REG_FEATURE), feature);
    await io.outb(this.reg(R.ATA_REG_NSECT), count & 0xff);
    await io.outb(this.reg(R.ATA_REG_LBAL), lba & 0xff);
    await io.outb(this.reg(R.ATA_REG_LBAM), (lba >> 8) & 0xff);
    await io.outb(this.reg(R.ATA_REG_LBAH), (lba >> 16) & 0xff);
  }

  private async command(code: number): Promise<void> {
    await this.io.outb(this.reg(R.ATA_REG_CMD), code);
  }

  async identify(): Promise<Identity> {
    await this.taskfile(0, 0, false);
    await this.command(R.ATA_CMD_ID_ATA);
    const st = await this.settle('IDENTIFY');
    if (!(st & R.ATA_DRQ)) throw new AtaDriverError('IDENTIFY: no data', st, 0);
    const raw = await this.io.insw(this.reg(R.ATA_REG_DATA), 256);
    await this.settle('IDENTIFY end');
    const w = (i: number): number => raw[2 * i] | (raw[2 * i + 1] << 8);
    const str = (from: number, words: number): string => {
      let s = '';
      for (let i = from; i < from + words; i++) s += String.fromCharCode(w(i) >> 8, w(i) & 0xff);
      return s.trim();
    };
    const lba48 = (w(83) & (1 << 10)) !== 0;
    const lba28 = w(60) + w(61) * 0x10000;
    const lba48Count = w(100) + w(101) * 0x10000 + w(102) * 2 ** 32;
    let sum = 0;
    for (const b of raw) sum = (sum + b) & 0xff;
    if ((w(255) & 0xff) === 0xa5 && sum !== 0) throw new AtaDriverError('IDENTIFY: bad checksum', st, 0);
    this.identity = {
      model: str(27, 20),
      serial: str(10, 10),
      sectors: lba48 && lba48Count > 0 ? lba48Count : lba28,
      lba48,
      maxMultiple: w(47) & 0xff,
      writeCache: (w(85) & (1 << 5)) !== 0,
    };
    return this.identity;
  }

  async setMultiple(n: number): Promise<void> {
    await this.taskfile(0, n, false);
    await this.command(R.ATA_CMD_SET_MULTI);
    await this.settle('SET MULTIPLE');
    this.multiple = n;
  }

  async setWriteCache(on: boolean): Promise<void> {
    await this.taskfile(0, 0, false, on ? R.SETFEATURES_WC_ON : R.SETFEATURES_WC_OFF);
    await this.command(R.ATA_CMD_SET_FEATURES);
    await this.settle('SET FEATURES');
  }

  async flush(): Promise<void> {
    await this.taskfile(0, 0, false);
    await this.command(this.identity?.lba48 ? R.ATA_CMD_FLUSH_EXT : R.ATA_CMD_FLUSH);
    await this.settle('FLUSH');
  }

  private ext(lba: number, count: number): boolean {
    return lba + count > 0x0fff_ffff || count > 256;
  }

  /** PIO read; `multiple` uses READ MULTIPLE with the current SET MULTIPLE block size. */
  async readPio(lba: number, count: number, multiple = false): Promise<Uint8Array> {
    const ext = this.ext(lba, count);
    await this.taskfile(lba, count === 256 && !ext ? 0 : count, ext);
    const code = multiple
      ? ext ? R.ATA_CMD_READ_MULTI_EXT : R.ATA_CMD_READ_MULTI
      : ext ? R.ATA_CMD_READ_EXT : R.ATA_CMD_READ;
    await this.command(code);
    const block = multiple ? this.multiple : 1;
    const out = new Uint8Array(count * 512);
    for (let done = 0; done < count; ) {
      const st = await this.settle('READ');
      if (!(st & R.ATA_DRQ)) throw new AtaDriverError(`READ: no DRQ at sector ${lba + done}`, st, 0);
      const n = Math.min(block, count - done);
      out.set(await this.io.insw(this.reg(R.ATA_REG_DATA), n * 256), done * 512);
      done += n;
    }
    await this.settle('READ end');
    return out;
  }

  async writePio(lba: number, data: Uint8Array, multiple = false): Promise<void> {
    const count = data.length / 512;
    const ext = this.ext(lba, count);
    await this.taskfile(lba, count === 256 && !ext ? 0 : count, ext);
    const code = multiple
      ? ext ? R.ATA_CMD_WRITE_MULTI_EXT : R.ATA_CMD_WRITE_MULTI
      : ext ? R.ATA_CMD_WRITE_EXT : R.ATA_CMD_WRITE;
    await this.command(code);
    const block = multiple ? this.multiple : 1;
    for (let done = 0; done < count; ) {
      // The first block has no IRQ; later ones follow the IRQ that ends the previous block.
      const st = await this.settle('WRITE');
      if (!(st & R.ATA_DRQ)) throw new AtaDriverError(`WRITE: no DRQ at sector ${lba + done}`, st, 0);
      const n = Math.min(block, count - done);
      await this.io.outsw(this.reg(R.ATA_REG_DATA), data.subarray(done * 512, (done + n) * 512));
      done += n;
    }
    await this.settle('WRITE end');
  }

  /** Bus-master DMA read or write through one PRD table at the start of DMA memory. */
  private async dma(lba: number, count: number, toDevice: Uint8Array | null): Promise<Uint8Array> {
    const mem = this.memory;
    if (!mem || this.bmBase < 0) throw new AtaDriverError('DMA: no bus-master function or memory', 0, 0);
    const bytes = count * 512;
    const prdOff = 0; // PRD table at offset 0, buffer at 4 KiB: inside one 64 KiB page for the table
    const bufOff = 4096;
    if (bufOff + bytes > mem.buf.length) throw new AtaDriverError('DMA: transfer larger than DMA memory', 0, 0);
    if (toDevice) mem.buf.set(toDevice, bufOff);
    const view = new DataView(mem.buf.buffer, mem.buf.byteOffset, mem.buf.byteLength);
    // One PRD entry per 64 KiB piece (byte count 0 means 64 KiB).
    let entries = 0;
    for (let off = 0; off < bytes; off += 0x10000, entries++) {
      const len = Math.min(0x10000, bytes - off);
      view.setUint32(prdOff + 8 * entries, mem.base + bufOff + off, true);
      const last = off + len >= bytes ? R.ATA_PRD_EOT : 0;
      view.setUint32(prdOff + 8 * entries + 4, ((len & 0xffff) | last) >>> 0, true);
    }
    const bm = this.bmBase;
    const read = toDevice === null;
    await this.io.outl(bm + R.ATA_DMA_TABLE_OFS, mem.base + prdOff);
    await this.io.outb(bm + R.ATA_DMA_CMD, read ? R.ATA_DMA_WR : 0);
    await this.io.outb(bm + R.ATA_DMA_STATUS, R.ATA_DMA_ERR | R.ATA_DMA_INTR); // write-1-to-clear
    const ext = this.ext(lba, count);
    await this.taskfile(lba, count === 256 && !ext ? 0 : count, ext);
    await this.command(read ? (ext ? R.ATA_CMD_READ_DMA_EXT : R.ATA_CMD_READ_DMA) : ext ? R.ATA_CMD_WRITE_DMA_EXT : R.ATA_CMD_WRITE_DMA);
    await this.io.outb(bm + R.ATA_DMA_CMD, (read ? R.ATA_DMA_WR : 0) | R.ATA_DMA_START);
    let bmst = 0;
    for (let i = 0; ; i++) {
      bmst = await this.io.inb(bm + R.ATA_DMA_STATUS);
      if (bmst & (R.ATA_DMA_INTR | R.ATA_DMA_ERR) || !(bmst & R.ATA_DMA_ACTIVE)) break;
      if (i > POLL_LIMIT) throw new AtaDriverError('DMA: transfer never ended', 0, 0);
      await yieldToLoop();
    }
    await this.io.outb(bm + R.ATA_DMA_CMD, 0); // stop the engine
    let failure: AtaDriverError | null = null;
    try {
      await this.settle(read ? 'READ DMA' : 'WRITE DMA');
    } catch (e) {
      failure = e as AtaDriverError;
    }
    await this.io.outb(bm + R.ATA_DMA_STATUS, R.ATA_DMA_ERR | R.ATA_DMA_INTR);
    if (failure) throw failure;
    if (bmst & R.ATA_DMA_ERR) throw new AtaDriverError('DMA: bus-master error', 0, bmst);
    return read ? mem.buf.slice(bufOff, bufOff + bytes) : new Uint8Array(0);
  }

  readDma(lba: number, count: number): Promise<Uint8Array> {
    return this.dma(lba, count, null);
  }

  async writeDma(lba: number, data: Uint8Array): Promise<void> {
    await this.dma(lba, data.length / 512, data);
  }
}
