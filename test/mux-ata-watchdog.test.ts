// Watchdog and detach paths of the ATA MUX on the real ATA model: a guest that starts READ
// SECTORS and never takes the data is cut off after the deadline (device property deadlineNs,
// honoured by the router factory), the others go on and complete verified workloads; a guest
// detached in the middle of a bus-master DMA transfer leaves nothing behind in anybody's memory.
//
// The watchdog timers are held by the rig (manualWatchdog) and fired by the test: with a real
// 50 ms timer, a busy machine (2 cores, many test processes) sometimes descheduled a healthy
// guest's command past the deadline, and that guest was cut off instead. The timer's delay is
// checked to be the configured deadline.

import { describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { runWorkload } from '../src/guests/ata-workload.ts';
import { attachGuest, bytesDiff, DMA_BASE, openAtaRig, type AtaRig } from './helpers/ata-mux.ts';

const DEADLINE_NS = 50_000_000;
const WINDOWS = {
  hang: { startLba: 0, sectors: 512 },
  g1: { startLba: 512, sectors: 512 },
  g2: { startLba: 1024, sectors: 512 },
};
const GUESTS = Object.entries(WINDOWS).map(([name, window]) => ({ name, window }));

const inb = (addr: number): Access => ({ space: 'pio', addr, size: 1, dir: 'read' });
const outb = (addr: number, value: number): Access => ({ space: 'pio', addr, size: 1, dir: 'write', value });

async function workloads(rig: AtaRig, names: string[], seed: number) {
  return Promise.all(
    names.map(async (n, i) => {
      const d = rig.g(n).driver;
      await d.identify();
      return runWorkload(d, { guest: n, seed: seed + i, mode: 'mixed', maxOps: 40, maxSectors: 8, flushEvery: 10 });
    }),
  );
}

function guestStats(rig: AtaRig, name: string) {
  const s = rig.stats().perGuest.find((g) => g.guest === name);
  if (!s) throw new Error(`no stats for ${name}`);
  return s;
}

describe('ATA MUX watchdog', () => {
  it('cuts off a guest that never reads its data; the others complete verified workloads', async () => {
    const rig = await openAtaRig({ guests: GUESTS, sectors: 2048, properties: { deadlineNs: DEADLINE_NS }, manualWatchdog: true });
    try {
      const hang = rig.g('hang');
      // READ SECTORS of 4 sectors at LBA 0 ... and nothing after the command.
      for (const [port, v] of [[0x1f6, 0xe0], [0x1f2, 4], [0x1f3, 0], [0x1f4, 0], [0x1f5, 0], [0x1f7, 0x20]])
        expect((await hang.guest.access(outb(port, v))).error).toBeUndefined();
      expect(rig.stats().state).toMatch(/^pioIn/);
      expect(rig.stats().owner).toBe('hang');
      // The MUX armed its watchdog with the configured deadline.
      expect(rig.heldWatchdogs().map((t) => t.delayNs)).toEqual([DEADLINE_NS]);
      // The others start at once: they wait for the device until the watchdog frees it.
      const running = workloads(rig, ['g1', 'g2'], 100);
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      expect(rig.stats().owner).toBe('hang');
      expect(guestStats(rig, 'g1').stalls + guestStats(rig, 'g2').stalls).toBeGreaterThan(0);
      expect(rig.fireWatchdogs()).toBe(1); // the deadline passes
      const results = await running;
      for (const r of results) {
        expect(r.firstError, r.guest).toBeUndefined();
        expect(r.verified, r.guest).toBe(true);
        expect(r.ops).toBe(40);
      }
      const st = rig.stats();
      expect(st.resets).toBe(1);
      expect(st.faults).toBe(1);
      expect(st.unsafeSwitches).toBe(0);
      expect(guestStats(rig, 'hang').faulted).toBe(true);
      expect(guestStats(rig, 'hang').faults).toBe(1);
      expect(guestStats(rig, 'g1').faulted).toBe(false);
      expect(hang.resets).toEqual([expect.stringMatching(new RegExp(`^disk0: watchdog: .* longer than ${DEADLINE_NS} ns`))]);
      // The faulted guest's later accesses: all-ones and an error; writes dropped.
      const status = await hang.guest.access(inb(0x1f7));
      expect(status.value).toBe(0xff);
      expect(status.error).toMatch(/faulted/);
      const data = await hang.guest.access({ space: 'pio', addr: 0x1f0, size: 2, dir: 'read', count: 256 });
      expect(data.error).toMatch(/faulted/);
      expect(data.data?.every((b) => b === 0xff) ?? Number(data.value) === 0xffff).toBe(true);
      const before = { ...rig.blk!.calls };
      expect((await hang.guest.access(outb(0x1f7, 0x30))).error).toMatch(/faulted/);
      expect(rig.blk!.calls).toEqual(before);
      // Attached again, the guest is a guest like the others.
      hang.guest.detach('bye');
      const again = await attachGuest(rig, 'hang');
      expect((await again.driver.identify()).sectors).toBe(WINDOWS.hang.sectors);
      const sector = new Uint8Array(512).fill(0x42);
      await again.driver.writePio(7, sector);
      expect(bytesDiff(await again.driver.readPio(7, 1), sector)).toBe('');
      expect(guestStats(rig, 'hang').faulted).toBe(false);
    } finally {
      await rig.close();
    }
  });

  it('a guest detached mid-DMA: the transfer is stopped, no other guest’s memory is written, the others go on', async () => {
    const rig = await openAtaRig({
      guests: [...GUESTS, { name: 'dma', window: { startLba: 1536, sectors: 512 } }],
      sectors: 2048,
      properties: { deadlineNs: DEADLINE_NS },
      manualWatchdog: true,
    });
    try {
      // The DMA guest's sectors hold a pattern no other guest ever writes.
      rig.blk!.data.fill(0xd5, 1536 * 512, 2048 * 512);
      const dma = rig.g('dma');
      const io = dma.driver.io;
      // READ DMA of 256 sectors into the guest's buffer at DMA_BASE + 4 KiB (PRD at DMA_BASE).
      const view = new DataView(dma.dma.buffer);
      for (let i = 0; i < 2; i++) {
        view.setUint32(8 * i, DMA_BASE + 0x1000 + i * 0x10000, true);
        view.setUint32(8 * i + 4, i === 1 ? 0x8000_0000 : 0, true); // 64 KiB each, the second is the last
      }
      const bm = await bmBase(rig);
      await io.outl(bm + 4, DMA_BASE);
      await io.outb(bm, 0x08);
      await io.outb(bm + 2, 0x06);
      for (const [port, v] of [[0x1f6, 0xe0], [0x1f2, 0], [0x1f3, 0], [0x1f4, 0], [0x1f5, 0]]) await io.outb(port, v);
      await io.outb(0x1f7, 0xc8);
      await io.outb(bm, 0x09); // start: the transfer runs while...
      expect(rig.stats().state).toMatch(/^dma/);
      dma.guest.detach('bye'); // ...its guest goes away
      const st = rig.stats();
      expect(st.resets).toBe(1);
      expect(st.owner).toBeNull();
      expect(rig.stats().state).toBe('idle');
      // g1 takes the device with PIO only: its DMA memory (same bus addresses) must stay untouched.
      const g1 = rig.g('g1');
      await g1.driver.identify();
      for (let i = 0; i < 20; i++) await g1.driver.readPio(i * 8, 8);
      await new Promise((r) => setTimeout(r, 20)); // give a leftover transfer every chance to land
      expect(g1.dma.some((b) => b === 0xd5)).toBe(false);
      expect(rig.g('g2').dma.some((b) => b === 0xd5)).toBe(false);
      // The others complete verified workloads (PIO and DMA) afterwards.
      const results = await workloads(rig, ['g1', 'g2', 'hang'], 200);
      for (const r of results) expect(r.firstError ?? '', r.guest).toBe('');
      expect(rig.stats().unsafeSwitches).toBe(0);
      expect(rig.stats().resets).toBe(1);
      // The DMA guest's departure is on record (detached while owning mid-command).
      expect(guestStats(rig, 'dma').faults).toBe(1);
    } finally {
      await rig.close();
    }
  });
});

/** The bus-master base the guest's PCI scan found (BAR4 of 8086:7010), read like a driver. */
async function bmBase(rig: AtaRig): Promise<number> {
  const io = rig.g('g1').driver.io;
  for (let dev = 0; dev < 32; dev++)
    for (let fn = 0; fn < 8; fn++) {
      await io.outl(0xcf8, (0x8000_0000 | (dev << 11) | (fn << 8)) >>> 0);
      if ((await io.inl(0xcfc)) >>> 0 === 0x7010_8086) {
        await io.outl(0xcf8, (0x8000_0000 | (dev << 11) | (fn << 8) | 0x20) >>> 0);
        return (await io.inl(0xcfc)) & 0xfffc;
      }
    }
  throw new Error('no PIIX IDE function in the PCI scan');
}

describe('ATA MUX watchdog deadline through the device registry’s own ata kind', () => {
  it('properties.deadlineNs on an `ata` device reaches the MUX (and the device factory accepts it)', async () => {
    const rig = await openAtaRig({ backend: 'file', sizeMiB: 1, properties: { deadlineNs: DEADLINE_NS }, guests: [{ name: 'hang' }, { name: 'g1' }], manualWatchdog: true });
    try {
      const hang = rig.g('hang');
      for (const [port, v] of [[0x1f6, 0xe0], [0x1f2, 1], [0x1f3, 0], [0x1f4, 0], [0x1f5, 0], [0x1f7, 0x20]]) await hang.guest.access(outb(port, v));
      expect(rig.heldWatchdogs().map((t) => t.delayNs)).toEqual([DEADLINE_NS]);
      const id = rig.g('g1').driver.identify(); // waits for the watchdog
      expect(rig.fireWatchdogs()).toBe(1);
      await id;
      expect(guestStats(rig, 'hang').faulted).toBe(true);
      // Cut off by the configured deadline, not the machine's own (2 s).
      expect(hang.resets).toEqual([expect.stringContaining(`longer than ${DEADLINE_NS} ns`)]);
    } finally {
      await rig.close();
    }
  });
});
