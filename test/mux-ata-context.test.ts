// Per-guest context of the ATA MUX (machines/ata/index.ts): the multiple-sector count (SET
// MULTIPLE), the write cache (SET FEATURES 02h/82h) and nIEN are each guest's own, replayed
// when it gets the device back. Two scripted guests interleave on the real ATA model, then on
// QEMU's own IDE (qtest) through the same MUX.

import { describe, expect, it } from 'vitest';
import { makeImage, qemuMissingReason } from './helpers/qemu.ts';
import { identifyRaw, identifyWord, openAtaRig, type AtaRig, type RigGuest } from './helpers/ata-mux.ts';
import { titled } from './helpers/requires.ts';

const WINDOWS = { A: { startLba: 0, sectors: 1024 }, B: { startLba: 1024, sectors: 1024 } };
const GUESTS = Object.entries(WINDOWS).map(([name, window]) => ({ name, window }));

/** Rising edges of a guest's virtual IRQ seen so far. */
function rises(g: RigGuest): number {
  let n = 0;
  let level = false;
  for (const [, l] of g.irqs) {
    if (l && !level) n++;
    level = l;
  }
  return n;
}

/** READ MULTIPLE of `count` sectors; returns the IRQ rises it caused (one per DRQ block). */
async function readMultipleIrqs(g: RigGuest, lba: number, count: number): Promise<number> {
  const before = rises(g);
  await g.driver.readPio(lba, count, true);
  return rises(g) - before;
}

/** Run `rounds` of `op` for every guest at once, so their commands interleave. */
async function interleave<T>(rig: AtaRig, names: string[], rounds: number, op: (g: RigGuest, i: number) => Promise<T>): Promise<Record<string, T[]>> {
  const out: Record<string, T[]> = {};
  await Promise.all(
    names.map(async (n) => {
      out[n] = [];
      for (let i = 0; i < rounds; i++) out[n].push(await op(rig.g(n), i));
    }),
  );
  return out;
}

describe('ATA MUX per-guest context on the ATA model', () => {
  it('SET MULTIPLE and the write cache are per guest: DRQ blocks, IDENTIFY and FUA follow the owner', async () => {
    const rig = await openAtaRig({ guests: GUESTS, sectors: 2048, quantumNs: 50_000 });
    try {
      const A = rig.g('A');
      const B = rig.g('B');
      await A.driver.setMultiple(4);
      await A.driver.setWriteCache(false);
      // 16 sectors of READ MULTIPLE: blocks of 4 for A (4 interrupts), one block of 16 for B.
      const irqs = await interleave(rig, ['A', 'B'], 12, (g, i) => readMultipleIrqs(g, i * 16, 16));
      expect(irqs.A).toEqual(Array(12).fill(4));
      expect(irqs.B).toEqual(Array(12).fill(1));
      expect(rig.stats().switches).toBeGreaterThan(2); // they did interleave
      // IDENTIFY word 59 (current multiple, bit 8 valid) and word 85 bit 5 (write cache on).
      const ids = await interleave(rig, ['A', 'B'], 3, (g) => identifyRaw(g.driver.io));
      for (const id of ids.A) {
        expect(identifyWord(id, 59)).toBe(0x100 | 4);
        expect(identifyWord(id, 85) & 0x20).toBe(0);
      }
      for (const id of ids.B) {
        expect(identifyWord(id, 59)).toBe(0x100 | 16);
        expect(identifyWord(id, 85) & 0x20).toBe(0x20);
      }
      // Writes alternate owners: A's (cache off) are FUA, B's are not.
      const blk = rig.blk!;
      for (let i = 0; i < 4; i++) {
        for (const g of [A, B]) {
          const fua = blk.calls.fuaWrites;
          const writes = blk.calls.write;
          await g.driver.writePio(100 + i, new Uint8Array(512).fill(i));
          expect(blk.calls.write - writes).toBe(1);
          expect(blk.calls.fuaWrites - fua, `${g.name} write ${i}`).toBe(g === A ? 1 : 0);
        }
      }
      // READ MULTIPLE still in blocks of 4 for A after all that.
      expect(await readMultipleIrqs(A, 0, 8)).toBe(2);
      expect(await readMultipleIrqs(B, 0, 8)).toBe(1);
      expect(rig.stats().unsafeSwitches).toBe(0);
    } finally {
      await rig.close();
    }
  });

  it('nIEN is per guest: A masked gets no interrupt, B still gets its own', async () => {
    const rig = await openAtaRig({ guests: GUESTS, sectors: 2048, quantumNs: 50_000 });
    try {
      const A = rig.g('A');
      const B = rig.g('B');
      await A.driver.io.outb(0x3f6, 0x02); // nIEN
      const irqs = await interleave(rig, ['A', 'B'], 10, async (g, i) => {
        const before = rises(g);
        await g.driver.readPio(i * 4, 4);
        await g.driver.writePio(500 + i, new Uint8Array(512).fill(i));
        await g.driver.flush();
        return rises(g) - before;
      });
      expect(irqs.A).toEqual(Array(10).fill(0));
      // B: 4 read blocks + 1 write completion + 1 flush completion per round.
      expect(irqs.B).toEqual(Array(10).fill(6));
      expect(rig.stats().switches).toBeGreaterThan(2);
      // A unmasks: its interrupts come back.
      await A.driver.io.outb(0x3f6, 0x00);
      const before = rises(A);
      await A.driver.flush();
      expect(rises(A) - before).toBe(1);
      expect(rig.stats().unsafeSwitches).toBe(0);
    } finally {
      await rig.close();
    }
  });
});

const qemuSkip = qemuMissingReason();

describe.skipIf(qemuSkip !== null)(titled('ATA MUX per-guest context on QEMU’s IDE (qtest)', qemuSkip), () => {
  it('SET MULTIPLE and nIEN per guest, interleaved', async () => {
    const img = makeImage(2048);
    const rig = await openAtaRig({ guests: GUESTS, backend: 'qemu', image: img.path, quantumNs: 50_000 });
    try {
      const A = rig.g('A');
      const B = rig.g('B');
      expect((await A.driver.identify()).sectors).toBe(WINDOWS.A.sectors);
      await A.driver.setMultiple(4);
      const irqs = await interleave(rig, ['A', 'B'], 4, (g, i) => readMultipleIrqs(g, i * 16, 16));
      expect(irqs.A).toEqual(Array(4).fill(4));
      expect(irqs.B).toEqual(Array(4).fill(1));
      // (No IDENTIFY word 59 check here: QEMU builds its IDENTIFY data once and serves that copy
      // afterwards, so word 59 keeps the count of the first IDENTIFY even on a drive of its own.)
      // nIEN on A only.
      await A.driver.io.outb(0x3f6, 0x02);
      const masked = await interleave(rig, ['A', 'B'], 3, async (g, i) => {
        const before = rises(g);
        await g.driver.readPio(i, 2);
        return rises(g) - before;
      });
      expect(masked.A).toEqual([0, 0, 0]);
      expect(masked.B).toEqual([2, 2, 2]);
      expect(rig.stats().unsafeSwitches).toBe(0);
    } finally {
      await rig.close();
      img.dispose();
    }
  });
});
