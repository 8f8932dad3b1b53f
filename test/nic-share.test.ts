// One NE2000 shared by scripted guests through the supervisor: each guest has its own MAC and
// virtual card (src/mux/nic). Guests run the Linux-like driver (src/guests/ne2k-driver.ts)
// against their port view; frames between guests, broadcasts, anti-spoofing, per-guest
// counters, a full ring that drops for one guest only.

import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import type { NicShareRouter } from '../src/mux/nic/nic-router.ts';
import { Supervisor } from '../src/supervisor.ts';
import { BROADCAST, ethFrame, Ne2kDriver } from '../src/guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { parseMac } from '../src/devices/ne2k/memory.ts';

const macOf = (i: number) => `52:54:00:12:34:0${i}`;

async function rig(n: number, extra: { promiscuous?: number[]; backend?: Record<string, unknown> } = {}) {
  const config = parseConfig({
    devices: [{ id: 'nic0', kind: 'ne2k', backend: extra.backend ?? { type: 'switch' } }],
    guests: Array.from({ length: n }, (_, i) => ({
      name: `g${i + 1}`,
      grants: [{ device: 'nic0', mac: macOf(i + 1), promiscuous: extra.promiscuous?.includes(i + 1) ?? false }],
    })),
  });
  let router: NicShareRouter | null = null;
  const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config, { onNicRouter: (_id, r) => (router = r) }) });
  await sup.start();
  const guests = [];
  for (let i = 0; i < n; i++) {
    const port = sup.attachLocalGuest(`g${i + 1}`);
    const base = await findPciIoBar(port, 0x10ec, 0x8029);
    if (base === null) throw new Error('no RTL8029 in the guest\'s PCI scan');
    const drv = new Ne2kDriver(new PortDevice(port, base));
    const mac = await drv.probe();
    await drv.init(mac);
    guests.push({ port, drv, mac });
  }
  return { sup, guests, router: router! as NicShareRouter };
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe('shared NE2000: a virtual card per guest', () => {
  it('each guest reads its own MAC from the PROM; unicast reaches only its addressee, broadcast all others', async () => {
    const { sup, guests, router } = await rig(3);
    cleanup = () => sup.close();
    expect(guests.map((g) => [...g.mac])).toEqual([1, 2, 3].map((i) => [...parseMac(macOf(i))!]));
    const [a, b, c] = guests;
    const toB = ethFrame(b.mac, a.mac, 100, 1);
    await a.drv.send(toB);
    const bcast = ethFrame(BROADCAST, c.mac, 64, 2);
    await c.drv.send(bcast);
    const gotA = await a.drv.receive();
    const gotB = await b.drv.receive();
    const gotC = await c.drv.receive();
    expect(gotB.map((r) => [...r.frame])).toEqual([[...toB], [...bcast]]);
    expect(gotA.map((r) => [...r.frame])).toEqual([[...bcast]]);
    expect(gotC).toEqual([]); // the sender does not hear itself
    const st = sup.stats().devices.find((d) => d.device === 'nic0')!;
    expect(st.switches).toBe(0);
    const nic = Object.fromEntries(st.perGuest.map((g) => [g.guest, g.nic!]));
    expect(nic.g1).toMatchObject({ txPackets: 1, txBytes: 114, rxPackets: 1, rxBytes: 78 });
    expect(nic.g2).toMatchObject({ txPackets: 0, rxPackets: 2, rxBytes: 114 + 78 });
    expect(nic.g3).toMatchObject({ txPackets: 1, rxPackets: 0, spoofed: 0 });
    expect(router.virtualCard('g1')).toBeDefined();
  });

  it('a frame with another source MAC is dropped and counted spoofed; a guest that takes another MAC in PAR gets nothing of it', async () => {
    const { sup, guests } = await rig(3);
    cleanup = () => sup.close();
    const [a, b, c] = guests;
    await a.drv.send(ethFrame(BROADCAST, b.mac, 80, 3)); // a pretends to be b
    await a.drv.send(ethFrame(c.mac, [0x52, 0x54, 0, 0, 0, 0x99], 80, 4));
    expect(await b.drv.receive()).toEqual([]);
    expect(await c.drv.receive()).toEqual([]);
    // c re-initialises with b's MAC in PAR: frames to b still reach only b.
    await c.drv.init(b.mac);
    const toB = ethFrame(b.mac, a.mac, 70, 5);
    await a.drv.send(toB);
    expect(await c.drv.receive()).toEqual([]);
    expect((await b.drv.receive()).map((r) => [...r.frame])).toEqual([[...toB]]);
    const nic = Object.fromEntries(sup.stats().devices[0].perGuest.map((g) => [g.guest, g.nic!]));
    expect(nic.g1.spoofed).toBe(2);
    expect(nic.g1.txPackets).toBe(1);
  });

  it('a full ring drops for its guest only; the others keep receiving', async () => {
    const { sup, guests } = await rig(3);
    cleanup = () => sup.close();
    const [a, b, c] = guests;
    // b never drains: its 52-page ring holds 8 frames of 1514 bytes (QEMU's rule: 1518 bytes free).
    for (let i = 0; i < 20; i++) {
      await a.drv.send(ethFrame(b.mac, a.mac, 1500, i));
      await a.drv.send(ethFrame(c.mac, a.mac, 1500, 100 + i));
      expect((await c.drv.receive()).length).toBe(1);
    }
    const nic = Object.fromEntries(sup.stats().devices[0].perGuest.map((g) => [g.guest, g.nic!]));
    expect(nic.g2.dropped).toBeGreaterThan(0);
    expect(nic.g2.rxPackets + nic.g2.dropped).toBe(20);
    expect(nic.g3).toMatchObject({ rxPackets: 20, dropped: 0 });
    const got = await b.drv.receive();
    expect(got.length).toBe(Math.min(9, nic.g2.rxPackets));
  });

  it('virtual IRQs: a guest\'s line rises for its own events only, and its acknowledgement lowers only its own', async () => {
    const { sup, guests } = await rig(3);
    cleanup = () => sup.close();
    const [a, b, c] = guests;
    const line = a.port.irqs[0];
    expect(line).toBeDefined();
    await a.drv.send(ethFrame(b.mac, a.mac, 60, 9));
    expect([a, b, c].map((g) => g.port.irqLevel(line))).toEqual([false, true, false]); // b: PRX
    await a.drv.send(ethFrame(BROADCAST, a.mac, 60, 10));
    expect([a, b, c].map((g) => g.port.irqLevel(line))).toEqual([false, true, true]);
    expect((await b.drv.receive()).length).toBe(2); // ei_receive acknowledges PRX
    expect([a, b, c].map((g) => g.port.irqLevel(line))).toEqual([false, false, true]);
  });

  it('a guest\'s reset and a guest that leaves mid-upload touch only their own virtual card', async () => {
    const { sup, guests } = await rig(3);
    cleanup = () => sup.close();
    const [a, b, c] = guests;
    // a leaves in the middle of a remote-DMA upload of a frame.
    await a.drv.wr(0x0a, 200); // RBCR0
    await a.drv.wr(0x0b, 0);
    await a.drv.wr(0x08, 0);
    await a.drv.wr(0x09, 0x40);
    await a.drv.wr(0x00, 0x12); // remote write, start
    await a.drv.wr(0x10, 0x1234, 2);
    a.port.detach('crash');
    // b resets its card (the reset port) and initialises it again; c is untouched meanwhile.
    const f1 = ethFrame(c.mac, b.mac, 100, 11);
    await b.drv.send(f1);
    expect(await b.drv.reset()).toBe(true);
    await b.drv.init(b.mac);
    const f2 = ethFrame(c.mac, b.mac, 100, 12);
    await b.drv.send(f2);
    expect((await c.drv.receive()).map((r) => [...r.frame])).toEqual([[...f1], [...f2]]);
    const st = sup.stats().devices[0];
    expect(st.resets).toBe(0);
    expect(st.perGuest.find((g) => g.guest === 'g1')!.nic!.txPackets).toBe(0);
  });

  it('a guest granted promiscuous mode (and asking for it in RCR) sees unicast between others', async () => {
    const { sup, guests } = await rig(3, { promiscuous: [3] });
    cleanup = () => sup.close();
    const [a, b, c] = guests;
    await c.drv.setMulticast(0x14, new Array(8).fill(0)); // AB | PRO
    const f = ethFrame(b.mac, a.mac, 90, 7);
    await a.drv.send(f);
    expect((await c.drv.receive()).map((r) => [...r.frame])).toEqual([[...f]]);
    expect((await b.drv.receive()).length).toBe(1);
  });
});
