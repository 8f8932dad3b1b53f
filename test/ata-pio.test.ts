// ATA model over the memory backend, driven through registers as a PIO driver does.

import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.ts';
import { readAtaString } from '../src/devices/ata/index.ts';
import { GatedBackend, makeRig, pattern, firstDiff } from './helpers/ata-driver.ts';

const BSY = 0x80, DRDY = 0x40, DRQ = 0x08, ERR = 0x01;
const ABRT = 0x04, IDNF = 0x10, UNC = 0x40;
const word = (id: Uint8Array, w: number): number => id[w * 2] | (id[w * 2 + 1] << 8);

describe('IDENTIFY DEVICE', () => {
  it('returns a checksummed block with strings, capacity and feature words', async () => {
    const blk = new MemoryBackend(20_000);
    const { drv, irq } = makeRig(blk, { model: 'TEST DISK', serial: 'SN123', firmware: 'FW1' });
    drv.outb(0x1f6, 0xa0);
    drv.outb(0x1f7, 0xec);
    expect(irq.level).toBe(true); // data ready: INTRQ asserted
    expect(drv.altStatus() & DRQ).toBe(DRQ);
    expect(irq.level).toBe(true); // alternate status does not acknowledge
    const id = await drv.pioIn(1);
    expect(drv.status() & (DRQ | BSY | ERR)).toBe(0);
    expect(irq.level).toBe(false); // status read acknowledged
    let sum = 0;
    for (const b of id) sum += b;
    expect(sum % 256).toBe(0);
    expect(id[510]).toBe(0xa5);
    expect(readAtaString(id, 27, 40)).toBe('TEST DISK');
    expect(readAtaString(id, 10, 20)).toBe('SN123');
    expect(readAtaString(id, 23, 8)).toBe('FW1');
    expect(word(id, 60) | (word(id, 61) << 16)).toBe(20_000);
    expect(word(id, 100) + word(id, 101) * 0x10000).toBe(20_000);
    expect(word(id, 47) & 0xff).toBe(16);
    expect(word(id, 49) & 0x0300).toBe(0x0300); // LBA + DMA
    expect(word(id, 83) & 0x3400).toBe(0x3400); // FLUSH EXT, FLUSH, LBA48
    expect(word(id, 85) & 0x20).toBe(0x20); // write cache on
    expect(word(id, 88) & 0x3f).toBe(0x3f);
  });

  it('reflects SET MULTIPLE, write cache and transfer mode in words 59, 85, 63/88', async () => {
    const { drv } = makeRig(new MemoryBackend(100));
    drv.issue28(0xc6, 0, 8); // SET MULTIPLE MODE 8
    expect((await drv.waitNotBusy()) & ERR).toBe(0);
    drv.issue28(0xef, 0, 0, 0x82); // write cache off
    expect((await drv.waitNotBusy()) & ERR).toBe(0);
    drv.issue28(0xef, 0, 0x22, 0x03); // MWDMA2
    expect((await drv.waitNotBusy()) & ERR).toBe(0);
    const id = await drv.identify();
    expect(word(id, 59)).toBe(0x0108);
    expect(word(id, 85) & 0x20).toBe(0);
    expect(word(id, 63)).toBe(0x0407);
    drv.issue28(0xef, 0, 0x47, 0x03); // UDMA7 does not exist
    expect(drv.status() & ERR).toBe(ERR);
    expect(drv.error()).toBe(ABRT);
  });

  it('IDENTIFY PACKET DEVICE aborts on an ATA disk', () => {
    const { drv, irq } = makeRig(new MemoryBackend(100));
    drv.issue28(0xa1, 0, 0);
    expect(irq.level).toBe(true);
    expect(drv.status()).toBe(DRDY | ERR);
    expect(drv.error()).toBe(ABRT);
  });
});

describe('PIO read/write', () => {
  it('WRITE SECTORS then READ SECTORS round-trips through the backend, IRQ per block', async () => {
    const blk = new MemoryBackend(1000);
    const { drv, irq } = makeRig(blk);
    const data = pattern(3, 1);
    drv.issue28(0x30, 10, 3);
    expect(irq.rises).toBe(0); // no interrupt before the first write block
    await drv.pioOut(data);
    const st = await drv.waitNotBusy();
    expect(st & (DRQ | ERR)).toBe(0);
    expect(irq.rises).toBe(3); // one after each block written
    drv.status();
    expect(firstDiff(blk.data.subarray(10 * 512, 13 * 512), data)).toBe(-1);

    irq.rises = 0;
    drv.issue28(0x20, 10, 3);
    const back = await drv.pioIn(3);
    expect(firstDiff(back, data)).toBe(-1);
    expect(irq.rises).toBe(3); // one per DRQ block read
    expect(drv.status() & (BSY | DRQ | ERR)).toBe(0);
    // Output registers, as drives and QEMU leave them: next sector, nothing left to go.
    expect(drv.inb(0x1f3)).toBe(13);
    expect(drv.inb(0x1f2)).toBe(0);
  });

  it('sector count 0 means 256 sectors for a 28-bit command', async () => {
    const blk = new MemoryBackend(600, { data: pattern(600, 3) });
    const { drv } = makeRig(blk);
    drv.issue28(0x20, 0, 0);
    const back = await drv.pioIn(256);
    expect(firstDiff(back, blk.data.subarray(0, 256 * 512))).toBe(-1);
  });

  it('EXT commands use the HOB bytes: 300 sectors in one command; HOB reads the previous bytes', async () => {
    const blk = new MemoryBackend(1000, { data: pattern(1000, 5) });
    const { drv } = makeRig(blk);
    drv.issue48(0x24, 600, 300);
    const back = await drv.pioIn(300);
    expect(firstDiff(back, blk.data.subarray(600 * 512, 900 * 512))).toBe(-1);
    expect([drv.inb(0x1f2), drv.inb(0x1f3), drv.inb(0x1f4)]).toEqual([0, 900 & 0xff, 900 >> 8]); // next LBA
    drv.outb(0x1f2, 0x12);
    drv.outb(0x1f2, 0x34);
    drv.outb(0x3f6, 0x80); // HOB: the previously written byte
    expect(drv.inb(0x1f2)).toBe(0x12);
    drv.outb(0x1f3, 0x56); // any taskfile write clears HOB
    expect(drv.inb(0x1f2)).toBe(0x34);
    drv.issue48(0x34, 2, 1);
    await drv.pioOut(pattern(1, 9));
    await drv.waitNotBusy();
    expect(firstDiff(blk.data.subarray(1024, 1536), pattern(1, 9))).toBe(-1);
  });

  it('CHS addressing maps through the default geometry', async () => {
    const blk = new MemoryBackend(20_000, { data: pattern(20_000, 2) });
    const { drv } = makeRig(blk);
    // cylinder 1, head 2, sector 5 -> (1*16+2)*63 + 4
    const lba = (1 * 16 + 2) * 63 + 4;
    drv.outb(0x1f2, 1);
    drv.outb(0x1f3, 5);
    drv.outb(0x1f4, 1);
    drv.outb(0x1f5, 0);
    drv.outb(0x1f6, 0xa0 | 2);
    drv.outb(0x1f7, 0x20);
    expect(firstDiff(await drv.pioIn(1), blk.data.subarray(lba * 512, lba * 512 + 512))).toBe(-1);
  });

  it('READ/WRITE MULTIPLE need multiple mode on and interrupt once per block', async () => {
    const blk = new MemoryBackend(1000, { data: pattern(1000, 4) });
    const { drv, irq } = makeRig(blk);
    expect(word(await drv.identify(), 59)).toBe(0x0110); // on at power-on, 16 sectors (as QEMU)
    drv.issue28(0xc6, 0, 0); // off
    await drv.waitNotBusy();
    expect(word(await drv.identify(), 59)).toBe(0);
    drv.issue28(0xc4, 0, 16);
    expect(drv.status() & ERR).toBe(ERR);
    expect(drv.error()).toBe(ABRT);
    drv.issue28(0xc6, 0, 3); // not a power of two
    expect(drv.status() & ERR).toBe(ERR);
    drv.issue28(0xc6, 0, 8);
    await drv.waitNotBusy();
    drv.status();
    irq.rises = 0;
    drv.issue28(0xc4, 100, 20); // blocks of 8, 8, 4
    const back = await drv.pioIn(20);
    expect(firstDiff(back, blk.data.subarray(100 * 512, 120 * 512))).toBe(-1);
    expect(irq.rises).toBe(3);
    irq.rises = 0;
    drv.issue48(0x39, 200, 12); // WRITE MULTIPLE EXT: 8 + 4
    await drv.pioOut(pattern(12, 8));
    await drv.waitNotBusy();
    expect(irq.rises).toBe(2);
    expect(firstDiff(blk.data.subarray(200 * 512, 212 * 512), pattern(12, 8))).toBe(-1);
    expect(blk.calls.write).toBe(2);
  });

  it('an LBA beyond capacity fails with IDNF without touching the backend', async () => {
    const blk = new MemoryBackend(100);
    const { drv, irq } = makeRig(blk);
    drv.issue28(0x20, 99, 2);
    expect(irq.level).toBe(true);
    expect(drv.status()).toBe(DRDY | ERR);
    expect(drv.error() & IDNF).toBe(IDNF);
    drv.issue48(0x34, 2 ** 40, 1); // high HOB bytes count
    expect(drv.status() & ERR).toBe(ERR);
    expect(drv.error() & IDNF).toBe(IDNF);
    expect(blk.calls.read + blk.calls.write).toBe(0);
  });

  it('a backend read failure ends in ERR + UNC, a write failure in ERR + ABRT', async () => {
    const blk = new MemoryBackend(100);
    const { drv, dev } = makeRig(blk);
    blk.fail.read = true;
    drv.issue28(0x20, 7, 1);
    expect((await drv.waitNotBusy()) & (ERR | DRQ)).toBe(ERR);
    expect(drv.error()).toBe(UNC);
    expect(drv.inb(0x1f3)).toBe(7); // failing LBA
    blk.fail.write = true;
    drv.issue28(0x30, 3, 1);
    await drv.pioOut(pattern(1, 1));
    expect((await drv.waitNotBusy()) & ERR).toBe(ERR);
    expect(drv.error()).toBe(ABRT);
    expect(dev.lastHostError?.message).toMatch(/injected write failure/);
    expect(dev.metrics().backendErrors).toBe(2);
  });

  it('a read-only backend aborts writes before any data phase', () => {
    const blk = new MemoryBackend(100, { readOnly: true });
    const { drv } = makeRig(blk);
    drv.issue28(0x30, 0, 1);
    expect(drv.status()).toBe(DRDY | ERR);
    expect(drv.error()).toBe(ABRT);
  });

  it('32-bit string I/O (ata_piix sets ATA_PFLAG_PIO32: rep insl/outsl) moves whole sectors', async () => {
    const blk = new MemoryBackend(10);
    const { dev, drv } = makeRig(blk);
    drv.issue28(0x30, 2, 2);
    await drv.waitNotBusy();
    dev.writeString(0, 0, 4, pattern(1, 8));
    await drv.waitNotBusy();
    dev.writeString(0, 0, 4, pattern(2, 8).subarray(512));
    expect((await drv.waitNotBusy()) & 0x09).toBe(0);
    expect(firstDiff(blk.data.subarray(1024, 2048), pattern(2, 8))).toBe(-1);
    drv.issue28(0x20, 2, 2);
    await drv.waitNotBusy();
    const a = dev.readString(0, 0, 4, 128);
    await drv.waitNotBusy();
    const b = dev.readString(0, 0, 4, 128);
    expect(firstDiff(new Uint8Array([...a, ...b]), pattern(2, 8))).toBe(-1);
    expect(dev.metrics()).toEqual({});
  });

  it('32-bit data reads return two words', async () => {
    const blk = new MemoryBackend(10, { data: pattern(10, 6) });
    const { drv } = makeRig(blk);
    drv.issue28(0x20, 1, 1);
    await drv.waitNotBusy();
    const v = drv.inl(0x1f0);
    const d = blk.data.subarray(512, 516);
    expect(v).toBe((d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0);
  });
});

describe('cache and flush', () => {
  it('FLUSH CACHE (EXT) waits for the backend flush; a failure is ERR + ABRT', async () => {
    const inner = new MemoryBackend(100);
    const blk = new GatedBackend(inner);
    const { drv, dev, irq } = makeRig(blk);
    drv.issue28(0xe7, 0, 0);
    await new Promise((r) => setImmediate(r));
    expect(drv.altStatus() & BSY).toBe(BSY); // not complete before the backend answers
    expect(irq.level).toBe(false);
    blk.release();
    await dev.whenIdle();
    expect(drv.status()).toBe(DRDY | 0x10);
    expect(inner.calls.flush).toBe(1);
    inner.fail.flush = true;
    drv.issue48(0xea, 0, 0);
    blk.release();
    await new Promise((r) => setImmediate(r));
    blk.release();
    await dev.whenIdle();
    expect(drv.status() & ERR).toBe(ERR);
    expect(drv.error()).toBe(ABRT);
  });

  it('with the write cache off every write asks for FUA', async () => {
    const blk = new MemoryBackend(100);
    const { drv } = makeRig(blk);
    drv.issue28(0x30, 0, 1);
    await drv.pioOut(pattern(1, 1));
    await drv.waitNotBusy();
    expect(blk.calls.fuaWrites).toBe(0);
    drv.issue28(0xef, 0, 0, 0x82);
    await drv.waitNotBusy();
    drv.issue28(0x30, 0, 2);
    await drv.pioOut(pattern(2, 1));
    await drv.waitNotBusy();
    expect(blk.calls.fuaWrites).toBe(2);
  });
});

describe('other commands', () => {
  it('READ NATIVE MAX ADDRESS (EXT) report the last sector', () => {
    const { drv } = makeRig(new MemoryBackend(0x12345));
    drv.outb(0x1f6, 0x40);
    drv.outb(0x1f7, 0xf8);
    expect(drv.status() & ERR).toBe(0);
    const max28 = drv.inb(0x1f3) | (drv.inb(0x1f4) << 8) | (drv.inb(0x1f5) << 16) | ((drv.inb(0x1f6) & 0xf) << 24);
    expect(max28).toBe(0x12344);
    drv.outb(0x1f7, 0x27);
    drv.status();
    drv.outb(0x3f6, 0x80);
    expect([drv.inb(0x1f3), drv.inb(0x1f4), drv.inb(0x1f5)]).toEqual([0, 0, 0]);
    drv.outb(0x3f6, 0);
    expect(drv.inb(0x1f3) | (drv.inb(0x1f4) << 8) | (drv.inb(0x1f5) << 16)).toBe(0x12344);
  });

  it('EXECUTE DEVICE DIAGNOSTIC leaves the signature and code 01h', () => {
    const { drv, irq } = makeRig(new MemoryBackend(100));
    drv.issue28(0x90, 0x123456, 7);
    expect(irq.level).toBe(true);
    expect(drv.error()).toBe(0x01);
    expect([drv.inb(0x1f2), drv.inb(0x1f3), drv.inb(0x1f4), drv.inb(0x1f5)]).toEqual([1, 1, 0, 0]);
  });

  it('CHECK POWER MODE answers active; IDLE IMMEDIATE completes', () => {
    const { drv } = makeRig(new MemoryBackend(100));
    drv.issue28(0xe5, 0, 0);
    expect(drv.status()).toBe(DRDY | 0x10);
    expect(drv.inb(0x1f2)).toBe(0xff);
    drv.issue28(0xe1, 0, 0);
    expect(drv.status() & ERR).toBe(0);
  });
});

describe('reset, interrupts, selection', () => {
  it('SRST leaves the ATA signature, no interrupt, and drops a command in flight', async () => {
    const inner = new MemoryBackend(100, { data: pattern(100, 1) });
    const blk = new GatedBackend(inner);
    const { drv, dev, irq } = makeRig(blk);
    drv.issue28(0x20, 5, 1);
    drv.outb(0x3f6, 0x04); // SRST
    expect(drv.altStatus() & BSY).toBe(BSY);
    drv.outb(0x3f6, 0x00);
    blk.release(); // the read completes after the reset: must be dropped
    await dev.whenIdle();
    expect(drv.altStatus()).toBe(DRDY | 0x10);
    expect(irq.level).toBe(false);
    expect([drv.inb(0x1f2), drv.inb(0x1f3), drv.inb(0x1f4), drv.inb(0x1f5), drv.inb(0x1f6)]).toEqual([1, 1, 0, 0, 0xa0]);
    expect(drv.error()).toBe(0x01);
    expect(dev.metrics().dataReadWithoutDrq).toBeUndefined();
    drv.inw(0x1f0);
    expect(dev.metrics().dataReadWithoutDrq).toBe(1);
  });

  it('nIEN masks the IRQ line; the interrupt stays pending until status is read', () => {
    const { drv, irq } = makeRig(new MemoryBackend(100));
    drv.outb(0x3f6, 0x02);
    drv.issue28(0xe5, 0, 0);
    expect(irq.level).toBe(false);
    drv.outb(0x3f6, 0x00);
    expect(irq.level).toBe(true);
    drv.altStatus();
    expect(irq.level).toBe(true);
    drv.status();
    expect(irq.level).toBe(false);
  });

  it('device 1 is absent: its status reads 0 and commands to it are ignored', () => {
    const { drv, dev, irq } = makeRig(new MemoryBackend(100));
    drv.outb(0x1f6, 0xb0);
    expect(drv.status()).toBe(0);
    drv.outb(0x1f7, 0xec);
    expect(irq.level).toBe(false);
    expect(dev.metrics().commandToAbsentDevice).toBe(1);
    drv.outb(0x1f6, 0xa0);
    expect(drv.status()).toBe(DRDY | 0x10);
  });
});

describe('guest mistakes are counted, never thrown', () => {
  it('data port with no command, bad widths, unknown registers and commands', () => {
    const { drv, dev } = makeRig(new MemoryBackend(100));
    expect(drv.inw(0x1f0)).toBe(0);
    drv.outw(0x1f0, 0x1234);
    expect(drv.inb(0x1f0)).toBe(0xff);
    expect(dev.read(0, 7, 2)).toBe(0xffff);
    expect(dev.read(5, 0, 1)).toBe(0xff);
    dev.write(1, 1, 1, 0);
    drv.issue28(0x55, 0, 0);
    expect(drv.status()).toBe(DRDY | ERR);
    expect(drv.error()).toBe(ABRT);
    expect(dev.metrics()).toMatchObject({
      dataReadWithoutDrq: 1,
      dataWriteWithoutDrq: 1,
      badWidth: 2,
      unknownRegister: 2,
      unknownCommand: 1,
    });
  });

  it('a command written while BSY or DRQ is ignored', async () => {
    const inner = new MemoryBackend(100, { data: pattern(100, 3) });
    const blk = new GatedBackend(inner);
    const { drv, dev } = makeRig(blk);
    drv.issue28(0x20, 4, 2);
    drv.outb(0x1f7, 0xe7); // FLUSH while BSY
    blk.release();
    await dev.whenIdle();
    drv.outb(0x1f7, 0xec); // IDENTIFY while DRQ
    expect(dev.metrics().commandWhileBusy).toBe(2);
    const first = drv.insw(0x1f0, 256);
    expect(firstDiff(first, inner.data.subarray(4 * 512, 5 * 512))).toBe(-1);
    blk.release();
    await new Promise((r) => setImmediate(r));
    blk.release();
    await dev.whenIdle();
    expect(firstDiff(drv.insw(0x1f0, 256), inner.data.subarray(5 * 512, 6 * 512))).toBe(-1);
    expect(inner.calls.flush).toBe(0);
  });

  it('taskfile writes while BSY or DRQ are dropped and counted (as QEMU ide_ioport_write)', async () => {
    const inner = new MemoryBackend(100, { data: pattern(100, 3) });
    const blk = new GatedBackend(inner);
    const { drv, dev } = makeRig(blk);
    drv.issue28(0x20, 4, 2);
    drv.outb(0x1f3, 0x50); // BSY: the first block is being fetched
    blk.release();
    await dev.whenIdle();
    expect(drv.altStatus() & (BSY | DRQ)).toBe(DRQ);
    const regs = () => {
      const low = [2, 3, 4, 5, 6].map((r) => drv.inb(0x1f0 + r));
      drv.outb(0x3f6, 0x80);
      const hob = [1, 2, 3, 4, 5].map((r) => drv.inb(0x1f0 + r));
      drv.outb(0x3f6, 0x00);
      return [...low, ...hob];
    };
    const before = regs();
    for (const [reg, v] of [[1, 0x11], [2, 0x22], [3, 0x33], [4, 0x44], [5, 0x55], [6, 0xb0]]) drv.outb(0x1f0 + reg, v); // DRQ
    expect(regs()).toEqual(before); // no HOB byte moved, device 1 was not selected
    expect(dev.metrics().taskfileWriteWhileBusy).toBe(7);
    // The command goes on with the registers it was issued with.
    expect(firstDiff(drv.insw(0x1f0, 256), inner.data.subarray(4 * 512, 5 * 512))).toBe(-1);
    blk.release();
    await new Promise((r) => setImmediate(r));
    blk.release();
    await dev.whenIdle();
    expect(firstDiff(drv.insw(0x1f0, 256), inner.data.subarray(5 * 512, 6 * 512))).toBe(-1);
    expect(drv.status() & (BSY | DRQ | ERR)).toBe(0);
    drv.outb(0x1f3, 0x33); // idle again: taken
    expect(drv.inb(0x1f3)).toBe(0x33);
    expect(dev.metrics().taskfileWriteWhileBusy).toBe(7);
  });

  it('taskfile writes while a DMA command waits for the bus master (DRQ) are dropped', async () => {
    const blk = new MemoryBackend(100, { data: pattern(100, 4) });
    const { drv, dev } = makeRig(blk);
    drv.issue28(0xc8, 9, 1);
    expect(drv.altStatus() & DRQ).toBe(DRQ);
    drv.outb(0x1f2, 5);
    drv.outb(0x1f3, 50);
    expect([drv.inb(0x1f2), drv.inb(0x1f3)]).toEqual([1, 9]);
    expect(dev.metrics().taskfileWriteWhileBusy).toBe(2);
  });

  it('an absurd string read length is capped, not allocated', () => {
    const { dev } = makeRig(new MemoryBackend(10));
    expect(dev.readString(0, 0, 2, 2 ** 31).length).toBe(1 << 20);
    expect(dev.metrics()).toMatchObject({ stringTooLong: 1, dataReadWithoutDrq: 1 });
  });

  it('reading past the end of a DRQ block floats and is counted', async () => {
    const { drv, dev } = makeRig(new MemoryBackend(10, { data: pattern(10, 1) }));
    drv.issue28(0x20, 0, 1);
    await drv.waitNotBusy();
    const got = drv.insw(0x1f0, 300);
    expect(firstDiff(got.subarray(0, 512), pattern(10, 1).subarray(0, 512))).toBe(-1);
    expect(got.subarray(512).every((b) => b === 0)).toBe(true);
    expect(dev.metrics().dataReadWithoutDrq).toBe(1);
  });
});

describe('description and snapshot', () => {
  it('describes the PIIX3 IDE function', () => {
    const { dev } = makeRig(new MemoryBackend(100));
    const d = dev.describe();
    expect(d.pci).toMatchObject({ vendor: 0x8086, device: 0x7010, classCode: 0x010180 });
    expect(d.irq).toBe(14);
    expect(d.regions.map((r) => [r.name, r.size, r.legacyBase, r.bar])).toEqual([
      ['cmd', 8, 0x1f0, undefined],
      ['ctl', 1, 0x3f6, undefined],
      ['bmide', 16, undefined, 4],
    ]);
  });

  it('state()/fromState() carry settings across to a fresh device', async () => {
    const blk = new MemoryBackend(100);
    const a = makeRig(blk);
    a.drv.issue28(0xc6, 0, 4);
    await a.drv.waitNotBusy();
    a.drv.issue28(0xef, 0, 0, 0x82);
    await a.drv.waitNotBusy();
    const snap = structuredClone(a.dev.state());
    const b = makeRig(blk);
    b.dev.fromState(snap);
    const id = await b.drv.identify();
    expect(word(id, 59)).toBe(0x0104);
    expect(word(id, 85) & 0x20).toBe(0);
    expect(() => b.dev.fromState({ ...snap, settings: { ...snap.settings, multSectors: 3 } })).toThrow(/multiple/);
  });
});

describe('word-at-a-time data port (rep outsw traps once per word)', () => {
  it('single 16-bit outs fill a sector exactly like outsw', async () => {
    const blk = new MemoryBackend(10);
    const { drv, dev } = makeRig(blk);
    const data = pattern(1, 5);
    drv.issue28(0x30, 4, 1);
    for (let i = 0; i < 512; i += 2) drv.outw(0x1f0, data[i] | (data[i + 1] << 8));
    expect((await drv.waitNotBusy()) & 0x09).toBe(0);
    expect(firstDiff(blk.data.subarray(4 * 512, 5 * 512), data)).toBe(-1);
    drv.issue28(0x20, 4, 1);
    await drv.waitNotBusy();
    const words: number[] = [];
    for (let i = 0; i < 256; i++) words.push(drv.inw(0x1f0));
    expect(words[0]).toBe(data[0] | (data[1] << 8));
    expect(words[255]).toBe(data[510] | (data[511] << 8));
    expect(drv.altStatus() & 0x08).toBe(0);
    expect(dev.metrics()).toEqual({});
  });
});
