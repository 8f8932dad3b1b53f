// Data round trips across transfer paths for the read/write commands the other ATA tests only
// reach through the fuzz test: data written by one protocol (PIO multiple, DMA) is read back
// by another, byte for byte, with the interrupts each protocol gives and the final status.
//   PIO data-out, multiple: no IRQ before the first block, one after each block of N sectors.
//   PIO data-in, multiple: one IRQ per DRQ block of N sectors, none after the last read.
//   DMA: one IRQ at the end, BMIDE status INTR with ACTIVE clear.

import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.ts';
import { firstDiff, makeRig, pattern, type Rig } from './helpers/ata-driver.ts';

const BSY = 0x80, DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01;
const BM_ACTIVE = 0x01, BM_ERR = 0x02, BM_INTR = 0x04;
const RAM = 0x10_0000;
const PRD = RAM + 0x1000;
const BUF = RAM + 0x2_0000;

const EXT = new Set([0x25, 0x29, 0x35, 0x39]);

function issue(rig: Rig, cmd: number, lba: number, count: number): void {
  if (EXT.has(cmd)) rig.drv.issue48(cmd, lba, count);
  else rig.drv.issue28(cmd, lba, count);
}

async function setMultiple(rig: Rig, n: number): Promise<void> {
  rig.drv.issue28(0xc6, 0, n);
  expect((await rig.drv.waitNotBusy()) & ERR).toBe(0);
  rig.irq.rises = 0;
}

/** Sectors per DRQ block for `count` sectors in blocks of `n`: [n, n, ..., rest]. */
function blocks(count: number, n: number): number[] {
  const out: number[] = [];
  for (let left = count; left > 0; left -= n) out.push(Math.min(n, left));
  return out;
}

/**
 * PIO data-out in whole DRQ blocks of `n` sectors: DRQ stays up inside a block and drops only
 * when the block is full; each block gets one interrupt once it is written.
 */
async function pioOutBlocks(rig: Rig, cmd: number, lba: number, data: Uint8Array, n: number): Promise<void> {
  const { drv, irq } = rig;
  const count = data.length / 512;
  issue(rig, cmd, lba, count);
  expect(irq.rises).toBe(0); // no interrupt before the first block of a write
  let at = 0;
  for (const [i, sectors] of blocks(count, n).entries()) {
    const st = await drv.waitNotBusy();
    expect(st & (DRQ | ERR), `block ${i}`).toBe(DRQ);
    expect(irq.rises, `interrupts before block ${i}`).toBe(i);
    drv.outsw(0x1f0, data.subarray(at, at + sectors * 512 - 2));
    expect(drv.altStatus() & DRQ, `block ${i}: one word short`).toBe(DRQ);
    drv.outsw(0x1f0, data.subarray(at + sectors * 512 - 2, at + sectors * 512));
    at += sectors * 512;
  }
  expect(await drv.waitNotBusy()).toBe(DRDY | DSC);
  expect(irq.rises).toBe(blocks(count, n).length);
  expect(irq.level).toBe(false); // the status read acknowledged the last one
}

/** PIO data-in in whole DRQ blocks of `n` sectors: one interrupt per block. */
async function pioInBlocks(rig: Rig, cmd: number, lba: number, count: number, n: number): Promise<Uint8Array> {
  const { drv, irq } = rig;
  const out = new Uint8Array(count * 512);
  issue(rig, cmd, lba, count);
  let at = 0;
  for (const [i, sectors] of blocks(count, n).entries()) {
    const st = await drv.waitNotBusy();
    expect(st & (DRQ | ERR), `block ${i}`).toBe(DRQ);
    expect(irq.rises, `interrupts by block ${i}`).toBe(i + 1);
    out.set(drv.insw(0x1f0, sectors * 256 - 1), at);
    expect(drv.altStatus() & DRQ, `block ${i}: one word short`).toBe(DRQ);
    out.set(drv.insw(0x1f0, 1), at + sectors * 512 - 2);
    at += sectors * 512;
  }
  await rig.dev.whenIdle();
  expect(drv.status()).toBe(DRDY | DSC);
  expect(irq.rises).toBe(blocks(count, n).length); // no interrupt after the last block is read
  expect(irq.level).toBe(false);
  return out;
}

async function settle(rig: Rig): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await rig.dev.whenIdle();
    await new Promise((r) => setImmediate(r));
  }
}

/** One bus-master transfer through a single PRD entry (64 KiB at most per entry here). */
async function dma(rig: Rig, cmd: number, lba: number, count: number, toMemory: boolean): Promise<void> {
  const { drv, ram, irq } = rig;
  const bytes = count * 512;
  const entries: Array<[number, number, boolean]> = [];
  for (let off = 0; off < bytes; off += 0x1_0000) {
    const len = Math.min(0x1_0000, bytes - off);
    entries.push([BUF + off, len & 0xffff, off + len >= bytes]); // count 0 is 64 KiB
  }
  ram.putPrd(PRD, entries);
  drv.bmSetup(PRD, toMemory);
  issue(rig, cmd, lba, count);
  expect(drv.altStatus() & (BSY | DRQ)).toBe(DRQ); // waiting for the bus master
  drv.bmStart();
  await settle(rig);
  expect(irq.level).toBe(true);
  expect(irq.rises).toBe(1); // DMA: one interrupt, at the end
  expect(drv.bmStatus() & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_INTR);
  drv.bmStop();
  expect(drv.status()).toBe(DRDY | DSC);
  expect(irq.level).toBe(false);
  drv.outb(0xc000 + 2, BM_INTR);
}

const ramAt = (rig: Rig, len: number): Uint8Array => rig.ram.mem.subarray(BUF - RAM, BUF - RAM + len);

describe('write by one path, read back by another', () => {
  it('WRITE MULTIPLE (C5h), blocks of 4: read back with READ DMA EXT (25h)', async () => {
    const blk = new MemoryBackend(2000);
    const rig = makeRig(blk);
    await setMultiple(rig, 4);
    const data = pattern(10, 11); // blocks 4 + 4 + 2
    await pioOutBlocks(rig, 0xc5, 123, data, 4);
    expect(blk.calls.write).toBe(3); // one backend write per block
    expect(firstDiff(blk.data.subarray(123 * 512, 133 * 512), data)).toBe(-1);
    // Output registers: the next sector, nothing left to go.
    expect([rig.drv.inb(0x1f2), rig.drv.inb(0x1f3)]).toEqual([0, 133]);

    rig.irq.rises = 0;
    ramAt(rig, 10 * 512).fill(0xee);
    await dma(rig, 0x25, 123, 10, true);
    expect(firstDiff(ramAt(rig, 10 * 512), data)).toBe(-1);
  });

  it('READ DMA EXT (25h) of 300 sectors uses the HOB count, and leaves the next LBA', async () => {
    const blk = new MemoryBackend(2000, { data: pattern(2000, 12) });
    const rig = makeRig(blk);
    await dma(rig, 0x25, 1500, 300, true);
    expect(firstDiff(ramAt(rig, 300 * 512), blk.data.subarray(1500 * 512, 1800 * 512))).toBe(-1);
    const next = rig.drv.inb(0x1f3) | (rig.drv.inb(0x1f4) << 8) | (rig.drv.inb(0x1f5) << 16);
    expect(next).toBe(1800);
    expect(rig.drv.inb(0x1f2)).toBe(0);
    rig.drv.outb(0x3f6, 0x80); // HOB: high-order bytes of count and LBA
    expect([rig.drv.inb(0x1f2), rig.drv.inb(0x1f3), rig.drv.inb(0x1f4), rig.drv.inb(0x1f5)]).toEqual([0, 0, 0, 0]);
    rig.drv.outb(0x3f6, 0);
  });

  it('WRITE DMA (CAh): read back with READ MULTIPLE EXT (29h), blocks of 8', async () => {
    const blk = new MemoryBackend(2000);
    const rig = makeRig(blk);
    const data = pattern(20, 13);
    ramAt(rig, data.length).set(data);
    await dma(rig, 0xca, 700, 20, false);
    expect(firstDiff(blk.data.subarray(700 * 512, 720 * 512), data)).toBe(-1);

    await setMultiple(rig, 8);
    const back = await pioInBlocks(rig, 0x29, 700, 20, 8); // blocks 8 + 8 + 4
    expect(firstDiff(back, data)).toBe(-1);
    expect(blk.calls.read).toBe(3); // one backend read per block
    expect([rig.drv.inb(0x1f2), rig.drv.inb(0x1f3), rig.drv.inb(0x1f4)]).toEqual([0, 720 & 0xff, 720 >> 8]);
    rig.drv.outb(0x3f6, 0x80);
    expect(rig.drv.inb(0x1f2)).toBe(0); // HOB count: nothing left
    rig.drv.outb(0x3f6, 0);
  });

  it('WRITE MULTIPLE EXT (39h), blocks of 16 over 300 sectors: read back with READ DMA (C8h)', async () => {
    const blk = new MemoryBackend(2000);
    const rig = makeRig(blk); // multiple mode is on at power-on with 16 sectors
    const data = pattern(300, 14); // 18 blocks of 16 + one of 12
    await pioOutBlocks(rig, 0x39, 900, data, 16);
    expect(blk.calls.write).toBe(19);
    rig.irq.rises = 0;
    ramAt(rig, 128 * 512).fill(0);
    await dma(rig, 0xc8, 900, 128, true);
    expect(firstDiff(ramAt(rig, 128 * 512), data.subarray(0, 128 * 512))).toBe(-1);
    rig.irq.rises = 0;
    await dma(rig, 0x25, 1028, 172, true);
    expect(firstDiff(ramAt(rig, 172 * 512), data.subarray(128 * 512))).toBe(-1);
  });

  it('WRITE DMA EXT (35h): read back with READ MULTIPLE (C4h) whose last block is short', async () => {
    const blk = new MemoryBackend(2000);
    const rig = makeRig(blk);
    const data = pattern(7, 15);
    ramAt(rig, data.length).set(data);
    await dma(rig, 0x35, 40, 7, false);
    await setMultiple(rig, 2);
    expect(firstDiff(await pioInBlocks(rig, 0xc4, 40, 7, 2), data)).toBe(-1); // 2 + 2 + 2 + 1
    expect(rig.dev.metrics()).toEqual({});
  });

  it('WRITE MULTIPLE (C5h) with a count of 0 moves 256 sectors, read back with READ MULTIPLE EXT (29h)', async () => {
    const blk = new MemoryBackend(600);
    const rig = makeRig(blk);
    await setMultiple(rig, 16); // the largest size IDENTIFY word 47 allows
    const data = pattern(256, 16);
    await pioOutBlocks(rig, 0xc5, 0, data, 16);
    expect(firstDiff(blk.data.subarray(0, 256 * 512), data)).toBe(-1);
    rig.irq.rises = 0;
    expect(firstDiff(await pioInBlocks(rig, 0x29, 0, 256, 16), data)).toBe(-1);
    expect(rig.dev.metrics()).toEqual({});
  });
});
