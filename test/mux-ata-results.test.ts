// A command's result (STATUS, ERROR) and its interrupt belong to the guest that issued it.
// Found by the chaos test: a guest handed the device on right after the last word of a PIO
// read then read another guest's failed command in its final status read (0x41, ABRT/IDNF);
// and an interrupt it left pending (data read without a status read) hid the next owner's
// first interrupt (the line never dropped, so no edge), until the watchdog cut that guest off.

import { afterEach, describe, expect, it } from 'vitest';
import { type AtaRig, CMD, openAtaRig, rawCommand, waitNotBusy } from './helpers/ata-mux.ts';

const A = { startLba: 0, sectors: 1024 };
const B = { startLba: 1024, sectors: 1024 };
const ATA_ERR = 0x01;

let rig: AtaRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

/** READ SECTORS of one sector, its data read without a status read: the interrupt stays pending. */
async function readWithoutStatus(r: AtaRig, who: string): Promise<void> {
  const io = r.g(who).driver.io;
  await waitNotBusy(io);
  await io.outb(CMD + 6, 0xe0);
  await io.outb(CMD + 2, 1);
  await io.outb(CMD + 3, 7);
  await io.outb(CMD + 4, 0);
  await io.outb(CMD + 5, 0);
  await io.outb(CMD + 7, 0x20);
  expect((await waitNotBusy(io)) & 0x08).toBe(0x08);
  await io.insw(CMD, 256);
}

describe('command results and interrupts per guest', () => {
  it("another guest's failed command does not show in a guest's final status read", async () => {
    rig = await openAtaRig({ guests: [{ name: 'a', window: A }, { name: 'b', window: B }], manualWatchdog: true });
    await readWithoutStatus(rig, 'a');
    expect(rig.stats().state).toBe('idle');
    const st = await rawCommand(rig.g('b').driver.io, { cur: [0, 1, 0xff, 0xff, 0x0f], device: 0xe0 }, 0x20); // beyond b's window
    expect(st & ATA_ERR).toBe(ATA_ERR);
    expect(rig.stats().owner).toBe('b');
    const io = rig.g('a').driver.io;
    expect(await io.inb(CMD + 7)).toBe(0x50); // a's READ succeeded
    expect(await io.inb(CMD + 1)).toBe(0x00);
    expect(rig.stats().owner).toBe('a');
  });

  it('a guest that issued no command reads the power-on result, not another guest\'s failure', async () => {
    rig = await openAtaRig({ guests: [{ name: 'a', window: A }, { name: 'b', window: B }], manualWatchdog: true });
    const st = await rawCommand(rig.g('b').driver.io, { cur: [0, 1, 0xff, 0xff, 0x0f], device: 0xe0 }, 0x20);
    expect(st & ATA_ERR).toBe(ATA_ERR);
    const io = rig.g('a').driver.io;
    expect(await io.inb(0x3f6)).toBe(0x50);
    expect(await io.inb(CMD + 1)).toBe(0x01);
    // b still reads its own failure after a held the device.
    expect((await rig.g('b').driver.io.inb(CMD + 7)) & ATA_ERR).toBe(ATA_ERR);
  });

  it("an interrupt left pending by the previous owner does not hide the next owner's first interrupt", async () => {
    rig = await openAtaRig({ guests: [{ name: 'a', window: A }, { name: 'b', window: B }], manualWatchdog: true });
    await readWithoutStatus(rig, 'a');
    const b = rig.g('b');
    const before = b.irqs.length;
    await b.driver.io.outb(CMD + 6, 0xa0);
    await b.driver.io.outb(CMD + 7, 0xec); // IDENTIFY: its interrupt comes with DRQ
    expect(rig.stats().owner).toBe('b');
    for (let i = 0; i < 100 && !b.irqs.slice(before).some(([, level]) => level); i++) await new Promise((res) => setImmediate(res));
    expect(b.irqs.slice(before).some(([, level]) => level)).toBe(true);
    expect((await b.driver.io.inb(CMD + 7)) & 0x08).toBe(0x08);
    // a gets its own pending interrupt again when it regains the device.
    const a = rig.g('a');
    await b.driver.io.insw(CMD, 256);
    const aBefore = a.irqs.length;
    expect(await a.driver.io.inb(0x3f6)).toBe(0x50);
    expect(a.irqs.slice(aBefore).some(([, level]) => level)).toBe(true);
  });

  it('a guest that held the device again without a command keeps its own result through the next switch', async () => {
    rig = await openAtaRig({ guests: [{ name: 'a', window: A }, { name: 'b', window: B }], manualWatchdog: true });
    await readWithoutStatus(rig, 'a');
    const fail = () => rawCommand(rig!.g('b').driver.io, { cur: [0, 1, 0xff, 0xff, 0x0f], device: 0xe0 }, 0x20);
    expect((await fail()) & ATA_ERR).toBe(ATA_ERR);
    const io = rig.g('a').driver.io;
    expect(await io.inb(0x3f6)).toBe(0x50); // a holds the device again, issues nothing
    expect(rig.stats().owner).toBe('a');
    expect((await fail()) & ATA_ERR).toBe(ATA_ERR); // a loses it with the device showing b's failure
    expect(await io.inb(CMD + 7)).toBe(0x50);
    expect(await io.inb(CMD + 1)).toBe(0x00);
  });
});

