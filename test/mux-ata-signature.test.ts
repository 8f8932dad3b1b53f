// After a soft reset (SRST) or EXECUTE DEVICE DIAGNOSTIC, libata classifies the drive by the
// signature it leaves in the task file (ata_sff_softreset -> ata_sff_dev_classify: NSECT 1,
// LBAL 1, LBAM 0, LBAH 0 for an ATA disk) and by the diagnostic code in ERROR (01h). Found
// with three Linux guests probing at once: another guest's read, issued between one guest's
// reset and its signature read, left its physical LBA in LBAM/LBAH, and the guest's libata
// classified its disk as absent, silently. The signature and the diagnostic code a guest's own
// reset produced are its own until it writes the task file or issues a command.

import { afterEach, describe, expect, it } from 'vitest';
import { type AtaRig, CMD, openAtaRig, rawCommand } from './helpers/ata-mux.ts';

// Windows whose starts have non-zero LBAM/LBAH bytes: a physical LBA left in the registers shows.
const A = { startLba: 0x2_0000, sectors: 1024 };
const B = { startLba: 0x4_1200, sectors: 1024 };
const CTL = 0x3f6;

let rig: AtaRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

type Io = AtaRig['g'] extends (n: string) => { driver: { io: infer I } } ? I : never;

/** libata's soft reset of device 0: nIEN|SRST, then nIEN, then wait for BSY to clear in STATUS (ata_sff_wait_ready). */
async function softReset(io: Io): Promise<void> {
  await io.outb(CMD + 6, 0xa0);
  await io.outb(CTL, 0x02);
  await io.outb(CTL, 0x06);
  await io.outb(CTL, 0x02);
  for (let i = 0; i < 1000 && (await io.inb(CMD + 7)) & 0x80; i++) await new Promise((r) => setImmediate(r));
}

async function signature(io: Io): Promise<number[]> {
  await io.outb(CMD + 6, 0xa0); // ata_sff_dev_classify selects the device first
  return [await io.inb(CMD + 1), await io.inb(CMD + 2), await io.inb(CMD + 3), await io.inb(CMD + 4), await io.inb(CMD + 5)];
}

const ATA_SIGNATURE = [0x01, 0x01, 0x01, 0x00, 0x00]; // ERROR (diagnostic passed), NSECT, LBAL, LBAM, LBAH

describe("a guest's reset signature is its own", () => {
  for (const [what, reset] of [
    ['SRST', softReset],
    ['EXECUTE DEVICE DIAGNOSTIC', async (io: Io) => void (await rawCommand(io, { cur: [0, 0, 0, 0, 0], device: 0xa0 }, 0x90))],
  ] as const) {
    it(`${what}, then another guest's READ: the signature reads as the reset left it`, async () => {
      rig = await openAtaRig({ guests: [{ name: "a", window: A }, { name: "b", window: B }], sectors: 0x4_1600, manualWatchdog: true });
      const a = rig.g('a').driver.io;
      const b = rig.g('b').driver.io;
      await reset(b);
      expect(await signature(b)).toEqual(ATA_SIGNATURE);
      // a reads LBA 0x123 of its window: the device's LBA registers then hold 0x20123.
      const st = await rawCommand(a, { cur: [0, 1, 0x23, 0x01, 0x00], device: 0xe0 }, 0x20);
      expect(st & 0x01).toBe(0);
      await a.insw(CMD, 256);
      expect(rig.stats().owner).toBe('a');
      expect(await signature(b)).toEqual(ATA_SIGNATURE);
      expect(await b.inb(CMD + 7)).toBe(0x50);
      // Once b writes its task file, it reads what it wrote.
      await b.outb(CMD + 2, 0x55);
      expect(await b.inb(CMD + 2)).toBe(0x55);
    });
  }

  it("device 1 (absent) reads what the device answers for it, not device 0's signature", async () => {
    rig = await openAtaRig({ guests: [{ name: "a", window: A }, { name: "b", window: B }], sectors: 0x4_1600, manualWatchdog: true });
    const b = rig.g('b').driver.io;
    await softReset(b);
    await b.outb(CMD + 6, 0xb0);
    const viaMux = [await b.inb(CMD + 2), await b.inb(CMD + 3), await b.inb(CMD + 4), await b.inb(CMD + 5)];
    // The same reads on the device itself, device 1 selected after the same reset.
    const dev = rig.device()!; // region 0: the command block
    const raw = async (off: number) => Number(await dev.read(0, off, 1));
    expect(viaMux).toEqual([await raw(2), await raw(3), await raw(4), await raw(5)]);
  });
});
