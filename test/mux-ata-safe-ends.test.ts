// Where an ATA command ends without the driver confirming it, the chart still reaches safety:
// after the last word of a PIO data-in command (no interrupt follows it, ATA needs no status
// read), and after a failed command whose ERROR register the driver never reads. Neither may
// arm the watchdog; and a guest switched out after an error still reads its own STATUS and
// ERROR later (saved at switch-out), not another guest's.
import { afterEach, describe, expect, it } from 'vitest';
import { CMD, openAtaRig, rawCommand, readError, waitNotBusy, type AtaRig } from './helpers/ata-mux.ts';

let rig: AtaRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

const ATA_ERR = 0x01;
const ATA_IDNF = 0x10;

describe('ATA MUX: commands that end without a confirming read', () => {
  it('the last data-in word makes the device safe: no status read, no watchdog', async () => {
    rig = await openAtaRig({ guests: [{ name: 'a', window: { startLba: 0, sectors: 1024 } }], manualWatchdog: true });
    const a = rig.g('a');
    const st = await rawCommand(a.driver.io, { cur: [0, 2, 5, 0, 0], device: 0xe0 }, 0x20); // READ SECTORS: 2 at LBA 5
    expect(st & 0x08).toBe(0x08);
    await a.driver.io.insw(CMD, 256);
    expect(rig.stats().state).toBe('pioIn.busy'); // one block of two: the MUX's status probe sees the drive BSY fetching the next
    await waitNotBusy(a.driver.io);
    await a.driver.io.inb(CMD + 7);
    await a.driver.io.insw(CMD, 256); // the last word, and no status read after it
    expect(rig.stats().state).toBe('idle');
    expect(rig.heldWatchdogs()).toHaveLength(0); // safe: nothing armed that could cut it off
  });

  it('a failed command is safe without an ERROR read; after a switch the guest reads its own result', async () => {
    rig = await openAtaRig({
      guests: [
        { name: 'a', window: { startLba: 0, sectors: 1024 } },
        { name: 'b', window: { startLba: 1024, sectors: 1024 } },
      ],
      manualWatchdog: true,
    });
    const a = rig.g('a');
    const b = rig.g('b');
    // a: READ SECTORS beyond its window -> the device answers IDNF; a reads STATUS only.
    const st = await rawCommand(a.driver.io, { cur: [0, 1, 0xff, 0xff, 0], device: 0xe0 }, 0x20);
    expect(st & ATA_ERR).toBe(ATA_ERR);
    expect(rig.stats().state).toBe('error');
    expect(rig.heldWatchdogs()).toHaveLength(0);
    // b takes the device and runs a command that succeeds (its status has no ERR).
    const identify = b.driver.identify();
    await identify;
    expect(await b.driver.io.inb(CMD + 7) & ATA_ERR).toBe(0);
    expect(await readError(b.driver.io) & ATA_IDNF).toBe(0);
    // a comes back and reads what its own device would show: ERR in status, IDNF in error.
    expect((await a.driver.io.inb(CMD + 7)) & ATA_ERR).toBe(ATA_ERR);
    expect((await readError(a.driver.io)) & ATA_IDNF).toBe(ATA_IDNF);
    // Its next command starts afresh.
    await a.driver.identify();
    expect((await a.driver.io.inb(CMD + 7)) & ATA_ERR).toBe(0);
    const stats = rig.stats();
    expect(stats.unsafeSwitches).toBe(0);
    expect(stats.perGuest.every((g) => !g.faulted)).toBe(true);
  });
});
