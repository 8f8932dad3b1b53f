// Isolation against a hostile guest's access forms (the MUX must see every single access the
// device executes) and its reads past the drive's data (the MUX must trust the drive, not the
// guest's word count). Each attack here got through before the fix: a string or wide write to
// the command register ran a command against the guest's untranslated task file (another
// guest's window), and one over-long `rep insw` ended a 2-sector read in the MUX's eyes while
// the drive still held the second sector.

import { afterEach, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { encodeFrame } from '../src/channel/codec.ts';
import { type AtaRig, CMD, openAtaRig, physical, tagged, waitNotBusy } from './helpers/ata-mux.ts';

const CTL = 0x3f6;
const A = { startLba: 0, sectors: 1024 }; // the honest guest
const M = { startLba: 1024, sectors: 1024 }; // the attacker
const VICTIM_LBA = 6; // in A's window; the attacker addresses it as its own LBA 6

let rig: AtaRig | null = null;
afterEach(async () => {
  rig?.blk?.release();
  await rig?.close();
  rig = null;
});

async function twoGuests(): Promise<AtaRig> {
  rig = await openAtaRig({ guests: [{ name: 'a', window: A }, { name: 'm', window: M }], manualWatchdog: true });
  rig.blk!.data.set(tagged(0xa, VICTIM_LBA), VICTIM_LBA * 512);
  return rig;
}

function acc(r: AtaRig, who: string, a: Omit<Access, 'space'>) {
  return r.g(who).guest.access({ space: 'pio', ...a } as Access);
}

/** LBA28 task file for 1 sector at `lba`, each byte its own outb (what the shadow records). */
async function taskfile(r: AtaRig, who: string, lba: number): Promise<void> {
  const io = r.g(who).driver.io;
  await waitNotBusy(io);
  await io.outb(CMD + 6, 0xe0);
  await io.outb(CMD + 1, 0);
  await io.outb(CMD + 2, 1);
  await io.outb(CMD + 3, lba & 0xff);
  await io.outb(CMD + 4, (lba >> 8) & 0xff);
  await io.outb(CMD + 5, (lba >> 16) & 0xff);
}

/** Write the attacker's sector data (DRQ expected), then end the command with a status read. */
async function finishWrite(r: AtaRig, who: string, fill: number): Promise<number> {
  const io = r.g(who).driver.io;
  const st = await waitNotBusy(io);
  if (st & 0x08) await io.outsw(CMD, new Uint8Array(512).fill(fill));
  await waitNotBusy(io);
  return io.inb(CMD + 7);
}

/** Every way of writing the command byte 0x30 (WRITE SECTORS) that is not a plain outb. */
const COMMAND_FORMS: Array<{ name: string; write: (r: AtaRig) => Promise<unknown> }> = [
  { name: 'rep outsb of one byte', write: (r) => acc(r, 'm', { addr: CMD + 7, size: 1, dir: 'write', count: 1, data: Uint8Array.of(0x30), value: 0x30 }) },
  { name: 'rep outsb of two bytes', write: (r) => acc(r, 'm', { addr: CMD + 7, size: 1, dir: 'write', count: 2, data: Uint8Array.of(0x30, 0x30) }) },
  { name: 'rep outsb of three bytes', write: (r) => acc(r, 'm', { addr: CMD + 7, size: 1, dir: 'write', count: 3, data: Uint8Array.of(0x30, 0x30, 0x30) }) },
  { name: 'outw over DEVICE and COMMAND', write: (r) => acc(r, 'm', { addr: CMD + 6, size: 2, dir: 'write', value: 0x30e0 }) },
  { name: 'outl over LBAM, LBAH, DEVICE and COMMAND', write: (r) => acc(r, 'm', { addr: CMD + 4, size: 4, dir: 'write', value: 0x30e0_0000 | (VICTIM_LBA >> 8) }) },
  { name: 'rep outsw over DEVICE and COMMAND', write: (r) => acc(r, 'm', { addr: CMD + 6, size: 2, dir: 'write', count: 2, data: Uint8Array.of(0xe0, 0x30, 0xe0, 0x30) }) },
];

describe('hole 1: every access form of the command register is translated into the guest window', () => {
  for (const form of COMMAND_FORMS) {
    it(`${form.name}: the write lands in the attacker's own window, never in another's`, async () => {
      const r = await twoGuests();
      const victimBefore = physical(r.blk!, VICTIM_LBA).slice();
      await taskfile(r, 'm', VICTIM_LBA);
      await form.write(r);
      const st = await finishWrite(r, 'm', 0xee);
      expect(st & 0x01, `status 0x${st.toString(16)}`).toBe(0);
      expect(physical(r.blk!, VICTIM_LBA)).toEqual(victimBefore);
      expect(physical(r.blk!, M.startLba + VICTIM_LBA)).toEqual(new Uint8Array(512).fill(0xee));
      expect(r.stats().unsafeSwitches).toBe(0);
    });
  }

  it('a string read command (rep outsb 0x20) reads the attacker\'s own window', async () => {
    const r = await twoGuests();
    r.blk!.data.set(tagged(0xb, M.startLba + VICTIM_LBA), (M.startLba + VICTIM_LBA) * 512);
    await taskfile(r, 'm', VICTIM_LBA);
    await acc(r, 'm', { addr: CMD + 7, size: 1, dir: 'write', count: 2, data: Uint8Array.of(0x20, 0x20) });
    const io = r.g('m').driver.io;
    expect((await waitNotBusy(io)) & 0x08).toBe(0x08);
    expect(await io.insw(CMD, 256)).toEqual(tagged(0xb, M.startLba + VICTIM_LBA));
  });

  it('task-file bytes written as a string are shadowed in order (the LBA48 FIFO sees both)', async () => {
    const r = await twoGuests();
    const io = r.g('m').driver.io;
    const lba = 0x0102; // LBA48: previous bytes first, as one rep outsb per register
    await io.outb(CMD + 6, 0x40);
    for (const [off, prev, cur] of [[1, 0, 0], [2, 0, 1], [3, 0, lba & 0xff], [4, 0, lba >> 8], [5, 0, 0]])
      await acc(r, 'm', { addr: CMD + off, size: 1, dir: 'write', count: 2, data: Uint8Array.of(prev, cur) });
    await io.outb(CMD + 7, 0x34); // WRITE SECTORS EXT
    await finishWrite(r, 'm', 0x5a);
    expect(physical(r.blk!, M.startLba + lba)).toEqual(new Uint8Array(512).fill(0x5a));
    expect(physical(r.blk!, lba).every((b) => b === 0)).toBe(true);
  });

  it('SRST as a string write to device control moves the chart to reset, as the device does', async () => {
    const r = await twoGuests();
    await acc(r, 'm', { addr: CTL, size: 1, dir: 'write', count: 2, data: Uint8Array.of(0x00, 0x04) });
    expect(r.stats().state).toBe('reset.asserted');
    await acc(r, 'm', { addr: CTL, size: 1, dir: 'write', count: 2, data: Uint8Array.of(0x04, 0x00) });
    expect(r.stats().state).toBe('reset.released');
  });

  it('a string access to a register standing for more than the bound of single accesses is refused and counted', async () => {
    const r = await twoGuests();
    const before = r.stats().perGuest.find((p) => p.guest === 'm')!.denials;
    const rep = await acc(r, 'm', { addr: CMD + 7, size: 1, dir: 'write', count: 5000, data: new Uint8Array(5000).fill(0x30) });
    expect(rep.error).toMatch(/string access of 5000 elements to register CMD/);
    expect(r.stats().perGuest.find((p) => p.guest === 'm')!.denials).toBe(before + 1);
    expect(r.stats().state).toBe('idle');
  });
});

describe('hole 2: a PIO data-in phase ends when the drive says so, not when the guest counted words', () => {
  async function overRead(r: AtaRig): Promise<void> {
    const io = r.g('m').driver.io;
    await waitNotBusy(io);
    await io.outb(CMD + 6, 0xe0);
    await io.outb(CMD + 2, 2);
    await io.outb(CMD + 3, 5);
    await io.outb(CMD + 4, 0);
    await io.outb(CMD + 5, 0);
    await io.outb(CMD + 7, 0x20); // READ SECTORS, 2 sectors
    expect((await waitNotBusy(io)) & 0x08).toBe(0x08);
    r.blk!.hold(); // the drive will stay BSY fetching the second sector
    await io.insw(CMD, 512); // both sectors' words in one string read
  }

  it('one rep insw for both sectors leaves the chart mid-command; the next guest waits; the drive ends it', async () => {
    const r = await twoGuests();
    await overRead(r);
    expect(r.stats().state).toBe('pioIn.busy');
    expect(r.stats().owner).toBe('m');
    // The honest guest's write waits for the device; it is not granted mid-command.
    let done = false;
    const write = r.g('a').driver.writePio(VICTIM_LBA, tagged(0xc, VICTIM_LBA)).then(() => (done = true));
    for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
    expect(done).toBe(false);
    expect(r.stats().owner).toBe('m');
    // The attacker then finishes the command honestly: the drive's DRQ, the second sector, the end.
    r.blk!.release();
    const io = r.g('m').driver.io;
    expect((await waitNotBusy(io)) & 0x08).toBe(0x08);
    await io.inb(CMD + 7);
    await io.insw(CMD, 256);
    expect(r.stats().state).toBe('idle');
    await write;
    expect(await r.g('a').driver.readPio(VICTIM_LBA, 1)).toEqual(tagged(0xc, VICTIM_LBA));
    expect(r.stats().unsafeSwitches).toBe(0);
  });

  it('an attacker that never finishes is cut off by the watchdog; the honest guest\'s writes and flush survive', async () => {
    const r = await twoGuests();
    await overRead(r);
    const honest = (async () => {
      const d = r.g('a').driver;
      for (let i = 0; i < 4; i++) await d.writePio(VICTIM_LBA + i, tagged(0xd, VICTIM_LBA + i));
      await d.flush();
      return d.readPio(VICTIM_LBA, 4);
    })();
    r.blk!.release();
    for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
    expect(r.stats().owner).toBe('m');
    expect(r.fireWatchdogs()).toBeGreaterThan(0);
    const back = await honest;
    for (let i = 0; i < 4; i++) expect(back.subarray(i * 512, (i + 1) * 512)).toEqual(tagged(0xd, VICTIM_LBA + i));
    for (let i = 0; i < 4; i++) expect(physical(r.blk!, VICTIM_LBA + i)).toEqual(tagged(0xd, VICTIM_LBA + i));
    expect(r.stats().perGuest.find((p) => p.guest === 'm')!.faults).toBe(1);
  });

  it('reads past the end of the data are answered by the drive and do not move the chart', async () => {
    const r = await twoGuests();
    const io = r.g('m').driver.io;
    await r.g('m').driver.readPio(3, 1);
    expect(r.stats().state).toBe('idle');
    await io.insw(CMD, 64);
    await io.inw(CMD);
    expect(r.stats().state).toBe('idle');
  });
});

describe('hole 8: a translated reply has the size of the access', () => {
  it('inl of the error register after an out-of-window command is a 32-bit value that encodes', async () => {
    const r = await twoGuests();
    const io = r.g('m').driver.io;
    await taskfile(r, 'm', M.sectors + 5); // beyond the window
    await io.outb(CMD + 7, 0x20);
    const st = await waitNotBusy(io);
    expect(st & 0x01).toBe(0x01);
    const rep = await acc(r, 'm', { addr: CMD + 1, size: 4, dir: 'read' });
    const v = Number(rep.value);
    expect(v).toBe(v >>> 0);
    expect(v & 0x10).toBe(0x10); // IDNF in the error byte
    expect(() => encodeFrame({ t: 'rep', id: 1, v })).not.toThrow();
    for (const size of [1, 2] as const) {
      const w = Number((await acc(r, 'm', { addr: CMD + 1, size, dir: 'read' })).value);
      expect(w).toBeGreaterThanOrEqual(0);
      expect(w).toBeLessThan(2 ** (8 * size));
    }
  });
});
