// PIIX bus-master DMA through the ATA model: normal transfers in both orders of command and
// START, and the CVE-class cases (bad PRD tables, refused DMA) that must end in an error, not a hang.

import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.ts';
import { BMIDE_BASE, GuestRam, makeRig, pattern, firstDiff } from './helpers/ata-driver.ts';

const DRDY = 0x40, DSC = 0x10, DRQ = 0x08, ERR = 0x01, ABRT = 0x04, UNC = 0x40;
const BM_ACTIVE = 0x01, BM_ERR = 0x02, BM_INTR = 0x04;
const RAM = 0x10_0000;
const PRD = RAM + 0x1000;
const BUF = RAM + 0x2_0000;

async function settle(rig: ReturnType<typeof makeRig>): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await rig.dev.whenIdle();
    await new Promise((r) => setImmediate(r));
  }
}

describe('bus-master DMA transfers', () => {
  it('READ DMA scatters into a two-entry PRD table; INTR set, ACTIVE cleared, IRQ raised', async () => {
    const blk = new MemoryBackend(1000, { data: pattern(1000, 2) });
    const rig = makeRig(blk);
    const { drv, ram, irq } = rig;
    ram.putPrd(PRD, [[BUF, 1024, false], [BUF + 0x8000, 1024, true]]);
    drv.bmSetup(PRD, true);
    drv.issue28(0xc8, 50, 4);
    expect(drv.altStatus() & DRQ).toBe(DRQ);
    drv.bmStart();
    await settle(rig);
    expect(irq.level).toBe(true);
    expect(drv.bmStatus() & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_INTR);
    drv.bmStop();
    expect(drv.status()).toBe(DRDY | DSC);
    expect(irq.level).toBe(false);
    const want = blk.data.subarray(50 * 512, 54 * 512);
    expect(firstDiff(ram.mem.subarray(BUF - RAM, BUF - RAM + 1024), want.subarray(0, 1024))).toBe(-1);
    expect(firstDiff(ram.mem.subarray(BUF - RAM + 0x8000, BUF - RAM + 0x8000 + 1024), want.subarray(1024))).toBe(-1);
    drv.outb(BMIDE_BASE + 2, BM_INTR); // write 1 to clear
    expect(drv.bmStatus() & BM_INTR).toBe(0);
  });

  it('WRITE DMA EXT with START before the command (both orders work)', async () => {
    const blk = new MemoryBackend(100_000);
    const rig = makeRig(blk);
    const { drv, ram } = rig;
    const data = pattern(300, 7); // 150 KiB: 3 entries of 64 KiB (count 0) minus the tail
    ram.mem.set(data, BUF - RAM);
    ram.putPrd(PRD, [[BUF, 0, false], [BUF + 0x1_0000, 0, false], [BUF + 0x2_0000, 300 * 512 - 0x2_0000, true]]);
    drv.bmSetup(PRD, false);
    drv.bmStart();
    drv.issue48(0x35, 70_000, 300);
    await settle(rig);
    expect(drv.status() & (ERR | DRQ)).toBe(0);
    expect(drv.bmStatus() & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_INTR);
    expect(firstDiff(blk.data.subarray(70_000 * 512, 70_300 * 512), data)).toBe(-1);
  });

  it('a PRD table in the last 8 bytes of the guest window is read (batched table reads fall back)', async () => {
    const blk = new MemoryBackend(100, { data: pattern(100, 6) });
    const ram = new GuestRam(RAM, 0x4_0000);
    const rig = makeRig(blk, {}, ram);
    const last = RAM + 0x4_0000 - 8;
    ram.putPrd(last, [[BUF, 512, true]]);
    rig.drv.bmSetup(last, true);
    rig.drv.issue28(0xc8, 7, 1);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.drv.status() & ERR).toBe(0);
    expect(firstDiff(ram.mem.subarray(BUF - RAM, BUF - RAM + 512), blk.data.subarray(7 * 512, 8 * 512))).toBe(-1);
  });

  it('a PRD table longer than the transfer completes and leaves ACTIVE set (SFF-8038i)', async () => {
    const blk = new MemoryBackend(100, { data: pattern(100, 1) });
    const rig = makeRig(blk);
    rig.ram.putPrd(PRD, [[BUF, 4096, true]]);
    rig.drv.bmSetup(PRD, true);
    rig.drv.issue28(0xc8, 0, 1);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.drv.status() & ERR).toBe(0);
    expect(rig.drv.bmStatus() & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_ACTIVE | BM_INTR);
    expect(rig.dev.metrics().prdLongerThanTransfer).toBe(1);
  });

  it('a backend failure during READ DMA is ERR + UNC', async () => {
    const blk = new MemoryBackend(100);
    const rig = makeRig(blk);
    blk.fail.read = true;
    rig.ram.putPrd(PRD, [[BUF, 512, true]]);
    rig.drv.bmSetup(PRD, true);
    rig.drv.issue28(0xc8, 9, 1);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.irq.level).toBe(true);
    expect(rig.drv.status()).toBe(DRDY | ERR);
    expect(rig.drv.error()).toBe(UNC);
  });
});

describe('bad PRD tables and refused DMA end in an error with an IRQ, never a hang', () => {
  async function expectDmaError(rig: ReturnType<typeof makeRig>, reason: RegExp): Promise<void> {
    await settle(rig);
    expect(rig.irq.level).toBe(true);
    expect(rig.drv.bmStatus() & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_ERR | BM_INTR);
    expect(rig.drv.status()).toBe(DRDY | ERR);
    expect(rig.drv.error()).toBe(ABRT);
    expect(rig.dev.lastHostError?.message).toMatch(reason);
    // The drive is usable again at once.
    rig.drv.issue28(0xe5, 0, 0);
    expect(rig.drv.status() & ERR).toBe(0);
  }

  it('PRD table shorter than the transfer', async () => {
    const rig = makeRig(new MemoryBackend(100));
    rig.ram.putPrd(PRD, [[BUF, 512, true]]);
    rig.drv.bmSetup(PRD, true);
    rig.drv.issue28(0xc8, 0, 2);
    rig.drv.bmStart();
    await expectDmaError(rig, /ends after 512 of 1024/);
  });

  it('unterminated table of tiny entries stops at the entry bound', async () => {
    const rig = makeRig(new MemoryBackend(100));
    // 600 entries of 2 bytes and no end-of-table, for a 4-sector transfer (needs 1024 entries).
    rig.ram.putPrd(PRD, Array.from({ length: 600 }, (_, i): [number, number, boolean] => [BUF + i * 2, 2, false]));
    rig.drv.bmSetup(PRD, true);
    rig.drv.issue28(0xc8, 0, 4);
    rig.drv.bmStart();
    await expectDmaError(rig, /no end-of-table within 512 entries/);
  });

  it('a table running across a 64 KiB boundary', async () => {
    const rig = makeRig(new MemoryBackend(100));
    const at = RAM + 0xfff0; // two entries fit before the boundary
    rig.ram.putPrd(at, [[BUF, 2, false], [BUF + 2, 2, false], [BUF + 4, 2, true]]);
    rig.drv.bmSetup(at, true);
    rig.drv.issue28(0xc8, 0, 1);
    rig.drv.bmStart();
    await expectDmaError(rig, /64 KiB boundary/);
  });

  it('a PRD table outside the guest window (refused read)', async () => {
    const rig = makeRig(new MemoryBackend(100));
    rig.drv.bmSetup(0x1000, true);
    rig.drv.issue28(0xc8, 0, 1);
    rig.drv.bmStart();
    await expectDmaError(rig, /refused/);
  });

  it('a data buffer outside the guest window (refused write to memory)', async () => {
    const rig = makeRig(new MemoryBackend(100));
    rig.ram.putPrd(PRD, [[0x2000, 512, true]]);
    rig.drv.bmSetup(PRD, true);
    rig.drv.issue28(0xc8, 0, 1);
    rig.drv.bmStart();
    await expectDmaError(rig, /refused/);
  });

  it('byte count 0 means 64 KiB, not zero (no endless zero-length loop)', async () => {
    const blk = new MemoryBackend(200, { data: pattern(200, 4) });
    const rig = makeRig(blk);
    rig.ram.putPrd(PRD, [[BUF, 0, true]]);
    rig.drv.bmSetup(PRD, true);
    rig.drv.issue28(0xc8, 10, 128);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.drv.status() & ERR).toBe(0);
    expect(firstDiff(rig.ram.mem.subarray(BUF - RAM, BUF - RAM + 0x1_0000), blk.data.subarray(10 * 512, 138 * 512))).toBe(-1);
  });

  it('START with no DMA command moves nothing; a DMA command with a stopped engine waits', async () => {
    const blk = new MemoryBackend(100, { data: pattern(100, 5) });
    const rig = makeRig(blk, {}, new GuestRam(RAM, 0x40_0000));
    rig.drv.bmSetup(PRD, true);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.ram.reads + rig.ram.writes).toBe(0);
    rig.drv.bmStop();
    rig.ram.putPrd(PRD, [[BUF, 512, true]]);
    rig.drv.issue28(0xc8, 3, 1);
    await settle(rig);
    expect(rig.drv.altStatus() & DRQ).toBe(DRQ);
    expect(rig.irq.level).toBe(false);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.drv.status() & (DRQ | ERR)).toBe(0);
    expect(firstDiff(rig.ram.mem.subarray(BUF - RAM, BUF - RAM + 512), blk.data.subarray(3 * 512, 4 * 512))).toBe(-1);
  });

  it('SRST during a waiting DMA command returns the drive to idle with the signature', async () => {
    const rig = makeRig(new MemoryBackend(100));
    rig.drv.issue28(0xc8, 0, 1);
    rig.drv.outb(0x3f6, 0x04);
    rig.drv.outb(0x3f6, 0x00);
    rig.drv.bmSetup(PRD, true);
    rig.drv.bmStart();
    await settle(rig);
    expect(rig.drv.status()).toBe(DRDY | DSC);
    expect(rig.ram.reads).toBe(0);
  });
});

describe('DATA SET MANAGEMENT (TRIM)', () => {
  function putRanges(ram: GuestRam, at: number, ranges: Array<[number, number]>): void {
    const view = new DataView(ram.mem.buffer);
    ranges.forEach(([lba, count], i) => {
      view.setUint32(at - RAM + i * 8, lba % 0x1_0000_0000, true);
      view.setUint32(at - RAM + i * 8 + 4, Math.floor(lba / 0x1_0000_0000) | (count << 16), true);
    });
  }
  function dsm(rig: ReturnType<typeof makeRig>, blocks: number, feature = 1): void {
    rig.ram.putPrd(PRD, [[BUF, blocks * 512, true]]);
    rig.drv.bmSetup(PRD, false);
    rig.drv.outb(0x1f1, 0);
    rig.drv.outb(0x1f2, 0);
    rig.drv.outb(0x1f1, feature);
    rig.drv.outb(0x1f2, blocks);
    rig.drv.outb(0x1f6, 0x40);
    rig.drv.outb(0x1f7, 0x06);
    rig.drv.bmStart();
  }

  it('is advertised (words 105, 169) and trims the listed ranges', async () => {
    const blk = new MemoryBackend(1000, { data: pattern(1000, 3) });
    const rig = makeRig(blk);
    const id = await rig.drv.identify();
    expect(id[169 * 2] & 1).toBe(1);
    expect(id[105 * 2]).toBe(8);
    rig.ram.mem.fill(0, BUF - RAM, BUF - RAM + 1024);
    putRanges(rig.ram, BUF, [[10, 5], [500, 100]]);
    dsm(rig, 1);
    await settle(rig);
    expect(rig.drv.status() & (ERR | DRQ)).toBe(0);
    expect(blk.calls.trim).toBe(2);
    expect(blk.data.subarray(10 * 512, 15 * 512).every((b) => b === 0)).toBe(true);
    expect(blk.data.subarray(500 * 512, 600 * 512).every((b) => b === 0)).toBe(true);
    expect(blk.data[15 * 512]).toBe(pattern(1000, 3)[15 * 512]); // neighbours untouched
  });

  it('a range past the end aborts without trimming anything', async () => {
    const blk = new MemoryBackend(1000, { data: pattern(1000, 3) });
    const rig = makeRig(blk);
    rig.ram.mem.fill(0, BUF - RAM, BUF - RAM + 512);
    putRanges(rig.ram, BUF, [[10, 5], [999, 2]]);
    dsm(rig, 1);
    await settle(rig);
    expect(rig.drv.status() & ERR).toBe(ERR);
    expect(rig.drv.error() & 0x10).toBe(0x10);
    expect(blk.calls.trim).toBe(0);
  });

  it('aborts when the backend cannot trim, or the TRIM bit is clear', async () => {
    const noTrim = makeRig(new MemoryBackend(100, { canTrim: false }));
    const id = await noTrim.drv.identify();
    expect(id[169 * 2] & 1).toBe(0);
    dsm(noTrim, 1);
    expect(noTrim.drv.status()).toBe(DRDY | ERR);
    const rig = makeRig(new MemoryBackend(100));
    dsm(rig, 1, 0);
    expect(rig.drv.status()).toBe(DRDY | ERR);
    expect(rig.drv.error()).toBe(ABRT);
  });
});
