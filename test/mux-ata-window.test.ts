// Partition windows of the ATA MUX (machines/ata/window.ts) on the real ATA model: three
// scripted guests share one disk round-robin, each in its own LBA window; a fourth guest may
// run in shared mode (no window). What each guest sees is checked against the physical disk
// (the MemoryBackend's bytes and call counters) and against what a lone guest would see.

import { existsSync, openSync, readFileSync, readSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AtaDriverError } from '../src/guests/ata-driver.ts';
import { makeImage, qemuMissingReason } from './helpers/qemu.ts';
import {
  attachGuest,
  identifyRaw,
  identifyWord,
  openAtaRig,
  physical,
  rawCommand,
  readError,
  readNativeMax,
  tagged,
  bytesDiff,
  type AtaRig,
} from './helpers/ata-mux.ts';
import { titled } from './helpers/requires.ts';

const DISK = 4096;
const WINDOWS = {
  g1: { startLba: 100, sectors: 1000 },
  g2: { startLba: 1100, sectors: 2000 },
  g3: { startLba: 3100, sectors: 996 },
};
const IDNF = 0x10;

async function withRig(fn: (rig: AtaRig) => Promise<void>, shared = false): Promise<void> {
  const guests = Object.entries(WINDOWS).map(([name, window]) => ({ name, window }));
  if (shared) guests.push({ name: 'whole', window: undefined as never });
  const rig = await openAtaRig({ guests, sectors: DISK });
  try {
    await fn(rig);
    expect(rig.stats().unsafeSwitches).toBe(0);
  } finally {
    await rig.close();
  }
}

/** The AtaDriverError a promise rejects with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<AtaDriverError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AtaDriverError) return e;
    throw e;
  }
  throw new Error('expected the command to fail');
}

describe('ATA MUX partition windows', () => {
  it('IDENTIFY shows each guest its window size with a valid checksum', async () => {
    await withRig(async (rig) => {
      // All three at once: their IDENTIFYs interleave at safe states.
      const ids = await Promise.all(Object.keys(WINDOWS).map((n) => identifyRaw(rig.g(n).driver.io)));
      Object.values(WINDOWS).forEach((w, i) => {
        const id = ids[i];
        expect(identifyWord(id, 60) + identifyWord(id, 61) * 0x10000).toBe(w.sectors);
        const lba48 = identifyWord(id, 100) + identifyWord(id, 101) * 2 ** 16 + identifyWord(id, 102) * 2 ** 32 + identifyWord(id, 103) * 2 ** 48;
        expect(lba48).toBe(w.sectors);
        // CHS (default words 1/3/6, current 54-58) fits in the window; no TRIM (DSM is not translated).
        const chs = identifyWord(id, 1) * identifyWord(id, 3) * identifyWord(id, 6);
        expect(identifyWord(id, 1)).toBe(Math.floor(w.sectors / (16 * 63))); // 0 (no CHS) under one cylinder
        expect(chs).toBeLessThanOrEqual(w.sectors);
        expect(identifyWord(id, 57) + identifyWord(id, 58) * 0x10000).toBe(identifyWord(id, 54) * identifyWord(id, 55) * identifyWord(id, 56));
        expect(identifyWord(id, 57) + identifyWord(id, 58) * 0x10000).toBeLessThanOrEqual(w.sectors);
        expect([identifyWord(id, 105), identifyWord(id, 169)]).toEqual([0, 0]);
        expect(id[510]).toBe(0xa5); // the signature: byte 511 is a checksum
        expect(id.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
      });
      // The driver's own IDENTIFY agrees (it rejects a bad checksum).
      for (const [n, w] of Object.entries(WINDOWS)) expect((await rig.g(n).driver.identify()).sectors).toBe(w.sectors);
    });
  });

  it('IDENTIFY read one word at a time (no string I/O) is patched the same way', async () => {
    await withRig(async (rig) => {
      const io = rig.g('g3').driver.io;
      const st = await rawCommand(io, { cur: [0, 0, 0, 0, 0], device: 0xa0 }, 0xec);
      expect(st & 0x08).toBe(0x08);
      const id = new Uint8Array(512);
      for (let w = 0; w < 256; w++) {
        const v = await io.inw(0x1f0);
        id[2 * w] = v & 0xff;
        id[2 * w + 1] = v >> 8;
      }
      await io.inb(0x1f7);
      expect(identifyWord(id, 60) + identifyWord(id, 61) * 0x10000).toBe(WINDOWS.g3.sectors);
      expect(identifyWord(id, 100) + identifyWord(id, 101) * 0x10000).toBe(WINDOWS.g3.sectors);
      expect(id.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
      expect(rig.stats().state).toBe('idle');
    });
  });

  it('READ NATIVE MAX ADDRESS (+EXT) reports the window size - 1', async () => {
    await withRig(async (rig) => {
      for (const [n, w] of Object.entries(WINDOWS)) {
        const io = rig.g(n).driver.io;
        const m28 = await readNativeMax(io, false);
        expect(m28.status & 0x01).toBe(0);
        expect(m28.max).toBe(w.sectors - 1);
        const m48 = await readNativeMax(io, true);
        expect(m48.status & 0x01).toBe(0);
        expect(m48.max).toBe(w.sectors - 1);
      }
    });
  });

  it('a write at guest LBA 0 lands at the window start (PIO and DMA), reads come back', async () => {
    await withRig(async (rig) => {
      const tags: Record<string, number> = { g1: 1, g2: 2, g3: 3 };
      await Promise.all(
        Object.keys(WINDOWS).map(async (n) => {
          const d = rig.g(n).driver;
          await d.writePio(0, tagged(tags[n], 0, 2));
          await d.writeDma(5, tagged(tags[n], 5, 3));
        }),
      );
      for (const [n, w] of Object.entries(WINDOWS)) {
        expect(bytesDiff(physical(rig.blk!, w.startLba, 2), tagged(tags[n], 0, 2))).toBe('');
        expect(bytesDiff(physical(rig.blk!, w.startLba + 5, 3), tagged(tags[n], 5, 3))).toBe('');
        const d = rig.g(n).driver;
        expect(bytesDiff(await d.readPio(0, 2), tagged(tags[n], 0, 2))).toBe('');
        expect(bytesDiff(await d.readDma(5, 3), tagged(tags[n], 5, 3))).toBe('');
      }
      // Nothing landed at physical LBA 0..99 (no window) or at the guests' LBA 0 unshifted.
      expect(physical(rig.blk!, 0, 100).every((b) => b === 0)).toBe(true);
    });
  });

  it('a command beyond the window fails with IDNF and never reaches the backend', async () => {
    await withRig(async (rig) => {
      const d = rig.g('g1').driver;
      const before = { ...rig.blk!.calls };
      const last = WINDOWS.g1.sectors;
      // Straddling the end, starting just beyond, far beyond (inside the physical disk), DMA and PIO.
      for (const op of [
        () => d.readPio(last - 1, 2),
        () => d.readPio(last, 1),
        () => d.writePio(last - 3, new Uint8Array(4 * 512).fill(0xee)),
        () => d.readPio(2500, 1), // physical 2600 exists: g2's data
        () => d.readDma(last - 1, 4),
        () => d.writeDma(last, new Uint8Array(512).fill(0xee)),
      ]) {
        const e = await failure(op());
        expect(e.status & 0x01, e.message).toBe(0x01);
        expect(e.error & IDNF, e.message).toBe(IDNF);
      }
      expect(rig.blk!.calls).toEqual(before);
      expect(rig.blk!.data.some((b) => b === 0xee)).toBe(false);
      // A sector count of 0 means 256: exactly up to the window's end is fine, one more is not.
      const full = await d.readPio(last - 256, 256);
      expect(bytesDiff(full, physical(rig.blk!, WINDOWS.g1.startLba + last - 256, 256))).toBe('');
      const reads = rig.blk!.calls.read;
      expect((await failure(d.readPio(last - 255, 256))).error & IDNF).toBe(IDNF);
      expect(rig.blk!.calls.read).toBe(reads);
      // The window's last sector is still reachable.
      await d.writePio(last - 1, tagged(1, last - 1));
      expect(bytesDiff(physical(rig.blk!, WINDOWS.g1.startLba + last - 1), tagged(1, last - 1))).toBe('');
    });
  });

  it('LBA48 commands are translated and bounds-checked on all 48 bits', async () => {
    await withRig(async (rig) => {
      const d = rig.g('g2').driver;
      // 300 sectors: the driver uses READ/WRITE SECTORS EXT.
      const data = tagged(2, 40, 300);
      await d.writePio(40, data);
      expect(bytesDiff(physical(rig.blk!, WINDOWS.g2.startLba + 40, 300), data)).toBe('');
      expect(bytesDiff(await d.readPio(40, 300), data)).toBe('');
      // WRITE DMA EXT of 260 sectors, read back by READ DMA EXT.
      const dmaData = tagged(9, 700, 260);
      await d.writeDma(700, dmaData);
      expect(bytesDiff(physical(rig.blk!, WINDOWS.g2.startLba + 700, 260), dmaData)).toBe('');
      expect(bytesDiff(await d.readDma(700, 260), dmaData)).toBe('');
      // READ SECTORS EXT at guest LBA 2^32 + 5: the high bytes count; it must not wrap to LBA 5.
      const io = d.io;
      const before = { ...rig.blk!.calls };
      const st = await rawCommand(io, { hob: [0, 0, 0, 1, 0], cur: [0, 1, 5, 0, 0], device: 0x40 }, 0x24);
      expect(st & 0x01).toBe(0x01);
      expect((await readError(io)) & IDNF).toBe(IDNF);
      expect(rig.blk!.calls).toEqual(before);
      // READ SECTORS EXT of one sector at guest LBA 41 (high bytes zero): the window's sector 41.
      const ok = await rawCommand(io, { hob: [0, 0, 0, 0, 0], cur: [0, 1, 41, 0, 0], device: 0x40 }, 0x24);
      expect(ok & 0x08).toBe(0x08);
      expect(bytesDiff(await io.insw(0x1f0, 256), data.subarray(512, 1024))).toBe('');
      await io.inb(0x1f7);
    });
  });

  it('a guest cannot read another guest’s sectors', async () => {
    await withRig(async (rig) => {
      await rig.g('g1').driver.writePio(0, tagged(1, 0, 16));
      await rig.g('g1').driver.writePio(WINDOWS.g1.sectors - 16, tagged(1, WINDOWS.g1.sectors - 16, 16));
      // g2 sees its own (zero) sectors everywhere it can address, not g1's.
      const g2 = rig.g('g2').driver;
      for (const lba of [0, 1, WINDOWS.g2.sectors - 16]) {
        const got = await g2.readPio(lba, 16);
        expect(got.every((b) => b === 0)).toBe(true);
      }
      // Every LBA g2 could use to reach g1's physical sectors is outside g2's window.
      for (const lba of [WINDOWS.g2.sectors, 2 ** 28 - 1]) {
        const e = await failure(g2.readPio(lba, 1));
        expect(e.error & IDNF).toBe(IDNF);
      }
    });
  });

  it('shared mode (a grant without a window) sees the whole disk', async () => {
    await withRig(async (rig) => {
      await rig.g('g1').driver.writePio(3, tagged(1, 3));
      await rig.g('g3').driver.writeDma(0, tagged(3, 0));
      const whole = rig.g('whole').driver;
      expect((await whole.identify()).sectors).toBe(DISK);
      const id = await identifyRaw(whole.io); // unpatched: the drive's own TRIM words
      expect([identifyWord(id, 105) > 0, identifyWord(id, 169)]).toEqual([true, 1]);
      expect((await readNativeMax(whole.io, true)).max).toBe(DISK - 1);
      expect(bytesDiff(await whole.readPio(WINDOWS.g1.startLba + 3, 1), tagged(1, 3))).toBe('');
      expect(bytesDiff(await whole.readDma(WINDOWS.g3.startLba, 1), tagged(3, 0))).toBe('');
      await whole.writePio(DISK - 1, tagged(7, DISK - 1));
      expect(bytesDiff(physical(rig.blk!, DISK - 1), tagged(7, DISK - 1))).toBe('');
    }, true);
  });

  it('task-file writes interleaved with another guest’s command still address the guest’s own LBA', async () => {
    await withRig(async (rig) => {
      for (const [n, w] of Object.entries(WINDOWS)) rig.blk!.data.set(tagged(n === 'g1' ? 1 : 2, 5), (w.startLba + 5) * 512);
      rig.blk!.data.set(tagged(1, 7), (WINDOWS.g1.startLba + 7) * 512);
      const io1 = rig.g('g1').driver.io;
      // g1 programs READ SECTORS of its LBA 7 but does not write the command yet.
      const tf = [0, 1, 7, 0, 0];
      for (let i = 0; i < 5; i++) await io1.outb(0x1f1 + i, tf[i]);
      await io1.outb(0x1f6, 0xe0);
      const switchesBefore = rig.stats().switches;
      // g2 runs complete commands in between (the device's task file now holds g2's values).
      await rig.g('g2').driver.writePio(9, tagged(2, 9, 3));
      expect(bytesDiff(await rig.g('g2').driver.readPio(5, 1), tagged(2, 5))).toBe('');
      expect(rig.stats().switches).toBeGreaterThan(switchesBefore);
      // g1's command, as if it had been alone: its own LBA 7, and its task file reads back as written.
      await io1.outb(0x1f7, 0x20);
      for (let i = 0; i < 100_000 && (await io1.inb(0x3f6)) & 0x80; i++) await new Promise((r) => setImmediate(r));
      const st = await io1.inb(0x1f7);
      expect(st & 0x09).toBe(0x08);
      expect(bytesDiff(await io1.insw(0x1f0, 256), tagged(1, 7))).toBe('');
      await io1.inb(0x1f7);
      expect(await io1.inb(0x1f3)).toBe(7);
      expect(await io1.inb(0x1f4)).toBe(0);
      expect((await io1.inb(0x1f6)) & 0x0f).toBe(0);
    });
  });

  it('task-file registers a guest wrote read back as written across another guest’s command (libata ata_devchk)', async () => {
    await withRig(async (rig) => {
      for (const n of ['g1', 'whole']) {
        const io = rig.g(n).driver.io;
        // ata_devchk: write NSECT/LBAL patterns, read them back to see a device is there.
        await io.outb(0x1f6, 0xa0);
        await io.outb(0x1f2, 0x55);
        await io.outb(0x1f3, 0xaa);
        await io.outb(0x1f4, 0x12);
        await rig.g('g2').driver.readPio(3, 2); // another guest's whole command in between
        await rig.g('g3').driver.flush();
        expect(await io.inb(0x1f2), n).toBe(0x55);
        expect(await io.inb(0x1f3), n).toBe(0xaa);
        expect(await io.inb(0x1f4), n).toBe(0x12);
        expect((await io.inb(0x1f6)) & 0xf0, n).toBe(0xa0);
      }
    }, true);
  });

  it('a window across the LBA28 limit: a 28-bit command is sent as EXT to the physical disk (file backend)', async () => {
    // A sparse image a little larger than 2^28 sectors (128 GiB) through the registry's own ata kind.
    const start = 2 ** 28 - 8;
    const rig = await openAtaRig({
      backend: 'file',
      sizeMiB: (2 ** 28 + 64) / 2048,
      guests: [
        { name: 'hi', window: { startLba: start, sectors: 64 } },
        { name: 'whole' },
      ],
    });
    try {
      const hi = rig.g('hi').driver;
      expect((await hi.identify()).sectors).toBe(64);
      const data = tagged(5, 0, 16);
      await hi.writePio(0, data); // LBA28 WRITE SECTORS at guest LBA 0 = physical 2^28-8 .. 2^28+7
      expect(bytesDiff(await hi.readPio(0, 16), data)).toBe('');
      const whole = rig.g('whole').driver;
      expect(bytesDiff(await whole.readPio(start, 16), data)).toBe('');
      const image = (rig.sup.config.devices[0].backend as { path: string }).path;
      expect(existsSync(image)).toBe(true);
      const fd = openSync(image, 'r');
      const buf = new Uint8Array(16 * 512);
      readSync(fd, buf, 0, buf.length, start * 512);
      closeSync(fd);
      expect(bytesDiff(buf, data)).toBe('');
      expect(rig.stats().unsafeSwitches).toBe(0);
    } finally {
      await rig.close();
    }
  });

  it('a guest attached after others gets a fresh view (no stale translation state)', async () => {
    const rig = await openAtaRig({ guests: [{ name: 'g1', window: WINDOWS.g1 }, { name: 'g2', window: WINDOWS.g2 }], sectors: DISK, attach: false });
    try {
      const g1 = await attachGuest(rig, 'g1');
      await g1.driver.writePio(1, tagged(1, 1));
      const g2 = await attachGuest(rig, 'g2');
      expect((await g2.driver.identify()).sectors).toBe(WINDOWS.g2.sectors);
      expect((await g2.driver.readPio(1, 1)).every((b) => b === 0)).toBe(true);
      expect(bytesDiff(await g1.driver.readPio(1, 1), tagged(1, 1))).toBe('');
    } finally {
      await rig.close();
    }
  });
});

const qemuSkip = qemuMissingReason();

describe.skipIf(qemuSkip !== null)(titled('ATA MUX partition windows on QEMU’s IDE (qtest)', qemuSkip), () => {
  it('a command beyond the window reads IDNF although QEMU itself answers only ABRT, and never reaches the image', async () => {
    const img = makeImage(DISK);
    const rig = await openAtaRig({ guests: [{ name: 'g1', window: WINDOWS.g1 }, { name: 'g2', window: WINDOWS.g2 }], backend: 'qemu', image: img.path });
    try {
      const d = rig.g('g1').driver;
      const last = WINDOWS.g1.sectors;
      expect((await d.identify()).sectors).toBe(last);
      for (const op of [() => d.readPio(last - 1, 2), () => d.writePio(last, new Uint8Array(512).fill(0xee)), () => d.readPio(2500, 1)]) {
        const e = await failure(op());
        expect(e.status & 0x01, e.message).toBe(0x01);
        expect(e.error & IDNF, e.message).toBe(IDNF);
      }
      // The guest's next good command reads a clean ERROR again; its data lands in its window.
      await d.writePio(last - 1, tagged(1, last - 1));
      expect(bytesDiff(await d.readPio(last - 1, 1), tagged(1, last - 1))).toBe('');
      expect(await readError(d.io)).toBe(0);
      expect(rig.stats().unsafeSwitches).toBe(0);
      await rig.close();
      // In the image: the good sector at the window's end; the sector right after it (g2's
      // first, where the refused write would have landed) still zero.
      const disk = readFileSync(img.path);
      const at = (WINDOWS.g1.startLba + last - 1) * 512;
      expect(bytesDiff(disk.subarray(at, at + 512), tagged(1, last - 1))).toBe('');
      expect(disk.subarray(at + 512, at + 1024).every((b) => b === 0)).toBe(true);
    } finally {
      await rig.close();
      img.dispose();
    }
  });
});

