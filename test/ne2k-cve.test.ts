// Every CVE class of the NE2000 (../shared/NIC.md) as a test against our model: a guest's bad
// value is counted in metrics(), and never throws, hangs, or touches memory outside the card.

import { describe, expect, it } from 'vitest';
import type { DeviceEdges } from '../src/device.ts';
import { LoopWire, Ne2kDevice, ne2kRegs as R } from '../src/devices/ne2k/index.ts';
import { NicMemory } from '../src/devices/ne2k/memory.ts';
import { ethFrame, Ne2kDriver } from './helpers/ne2k-driver.ts';

const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const SRC = [0x52, 0x54, 0x00, 0x77, 0x77, 0x77];

/** Records every buffer-memory write the ring makes (address), to prove where frames land. */
function spyWrites(): { addrs: number[]; restore: () => void } {
  const addrs: number[] = [];
  const orig = NicMemory.prototype.writeByte;
  NicMemory.prototype.writeByte = function (this: NicMemory, addr: number, v: number) {
    addrs.push(addr);
    return orig.call(this, addr, v);
  };
  return { addrs, restore: () => (NicMemory.prototype.writeByte = orig) };
}

async function started() {
  const edges: DeviceEdges = { irq: { set() {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
  const wire = new LoopWire();
  const dev = new Ne2kDevice(edges, wire, { mac: MAC });
  const drv = new Ne2kDriver(dev);
  await drv.init(await drv.probe());
  return { dev, wire, drv };
}
const wr = (dev: Ne2kDevice, o: number, v: number) => dev.write(0, o, 1, v);
const rd = (dev: Ne2kDevice, o: number) => dev.read(0, o, 1);

describe('ne2k CVE classes', () => {
  it('CVE-2015-5278 / CVE-2016-2841: PSTART >= PSTOP is "receive off", no endless loop', async () => {
    const { dev, wire } = await started();
    for (const [start, stop] of [[0x60, 0x60], [0x70, 0x50], [0x80, 0x4c]]) {
      wr(dev, R.EN0_STARTPG, start);
      wr(dev, R.EN0_STOPPG, stop);
      expect(wire.inject(ethFrame(MAC, SRC, 1500))).toBe('invalid');
    }
    expect(dev.metrics().ringInvalid).toBe(3);
    // Remote DMA with a degenerate ring still ends: every access moves the address once.
    wr(dev, R.EN0_RCNTLO, 0);
    wr(dev, R.EN0_RCNTHI, 0x80);
    wr(dev, R.EN0_RSARLO, 0);
    wr(dev, R.EN0_RSARHI, 0x4c);
    wr(dev, R.NE_CMD, R.E8390_RREAD | R.E8390_START);
    expect(dev.readString(0, R.NE_DATAPORT, 4, 0x2000).length).toBe(0x8000);
    expect(rd(dev, R.EN0_ISR) & R.ENISR_RDC).toBe(R.ENISR_RDC);
  });

  it('CVE-2015-5279: ring registers outside buffer memory are counted and never reach the PROM or beyond', async () => {
    const { dev, wire } = await started();
    const spy = spyWrites();
    try {
      for (const [start, stop] of [[0x00, 0x4c], [0x10, 0x30], [0xbf, 0xff], [0x40, 0xc1], [0xf0, 0xff]]) {
        wr(dev, R.EN0_STARTPG, start);
        wr(dev, R.EN0_STOPPG, stop);
        expect(wire.inject(ethFrame(MAC, SRC, 100))).toBe('invalid');
      }
      expect(spy.addrs).toEqual([]);
    } finally {
      spy.restore();
    }
    expect(dev.metrics().ringRegisterOutside).toBeGreaterThanOrEqual(6);
    // The PROM is intact: the probe still finds the MAC.
    const drv = new Ne2kDriver(dev);
    expect([...(await drv.probe())]).toEqual([...MAC]);
  });

  it('CVE-2018-10839: CURR outside the ring restarts at PSTART; BNRY outside cannot steer writes out of the ring', async () => {
    const { dev, wire } = await started();
    wr(dev, R.NE_CMD, R.E8390_NODMA | 0x40);
    wr(dev, R.EN1_CURPAG, 0xff);
    wr(dev, R.NE_CMD, R.E8390_NODMA);
    wr(dev, R.EN0_BOUNDARY, 0xfe);
    const spy = spyWrites();
    try {
      for (let i = 0; i < 30; i++) wire.inject(ethFrame(MAC, SRC, 1500, i));
      expect(spy.addrs.length).toBeGreaterThan(0);
      expect(spy.addrs.every((a) => a >= 0x4c00 && a < 0x8000)).toBe(true);
    } finally {
      spy.restore();
    }
    expect(dev.metrics().ringPointerOutside).toBe(1);
    expect(dev.metrics().ringRegisterOutside).toBe(2);
  });

  it('CVE-2015-8743: 2- and 4-byte remote DMA at the end of memory and of the address space stays inside', async () => {
    const { dev } = await started();
    const spy = spyWrites();
    try {
      for (const addr of [0xbffe, 0xbfff, 0xfffe, 0xffff, 0x001e, 0x3ffe]) {
        wr(dev, R.EN0_RCNTLO, 8);
        wr(dev, R.EN0_RCNTHI, 0);
        wr(dev, R.EN0_RSARLO, addr & 0xff);
        wr(dev, R.EN0_RSARHI, addr >> 8);
        wr(dev, R.NE_CMD, R.E8390_RWRITE | R.E8390_START);
        dev.write(0, R.NE_DATAPORT, 4, 0xdeadbeef);
        dev.write(0, R.NE_DATAPORT, 4, 0xdeadbeef);
        wr(dev, R.EN0_RSARLO, addr & 0xff);
        wr(dev, R.EN0_RSARHI, addr >> 8);
        wr(dev, R.EN0_RCNTLO, 8);
        wr(dev, R.NE_CMD, R.E8390_RREAD | R.E8390_START);
        dev.read(0, R.NE_DATAPORT, 4);
        dev.read(0, R.NE_DATAPORT, 4);
      }
    } finally {
      spy.restore();
    }
    // Only two bytes of the 0xBFFE write are buffer memory; the rest was dropped and counted.
    expect(dev.peek(0xbffe, 2)).toEqual(Uint8Array.from([0xef, 0xbe]));
    expect(dev.metrics().promWrite).toBeGreaterThan(0);
    expect(dev.metrics().dmaUnmapped).toBeGreaterThan(0);
    const s = dev.state();
    expect(s.buffer.length).toBe(0x8000);
    expect(s.regs.rsar).toBeLessThanOrEqual(0xffff);
    expect([...(await new Ne2kDriver(dev).probe())]).toEqual([...MAC]);
  });

  it('oversize frames: from the wire (> 1518 bytes) dropped; a transmit of 0, > 1518 or past the buffer aborts with TXE', async () => {
    const { dev, wire } = await started();
    expect(wire.inject(new Uint8Array(1519).fill(0xff))).toBe('oversize');
    expect(wire.inject(new Uint8Array(65536).fill(0xff))).toBe('oversize');
    expect(wire.inject(new Uint8Array(3))).toBe('oversize');
    expect(wire.inject(new Uint8Array(1518).fill(0xff))).toBe('stored');
    for (const [tpsr, tbcr] of [[0x40, 0], [0x40, 1519], [0x40, 0xffff], [0xbf, 0x200], [0x00, 60], [0x3f, 60]]) {
      wr(dev, R.EN0_ISR, 0xff);
      wr(dev, R.EN0_TPSR, tpsr);
      wr(dev, R.EN0_TCNTLO, tbcr & 0xff);
      wr(dev, R.EN0_TCNTHI, tbcr >> 8);
      wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_START);
      expect(rd(dev, R.EN0_ISR) & (R.ENISR_TX | R.ENISR_TX_ERR)).toBe(R.ENISR_TX_ERR);
      expect(rd(dev, R.EN0_TSR)).toBe(R.ENTSR_ABT);
      expect(rd(dev, R.NE_CMD) & R.E8390_TRANS).toBe(0);
    }
    expect(wire.sent).toEqual([]);
    expect(dev.metrics()).toMatchObject({ rxOversize: 3, txBadLength: 3, txOutside: 3 });
    // QEMU's fold of pages 0xC0-0xFF onto the buffer still works (netware 3.11).
    wr(dev, R.EN0_TPSR, 0xcc); // 0xCC00 - 0x8000 = 0x4C00
    wr(dev, R.EN0_TCNTLO, 60);
    wr(dev, R.EN0_TCNTHI, 0);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_START);
    expect(wire.sent.length).toBe(1);
  });

  it('endless receive: a flood into a full ring ends at once and the reader sees only whole frames', async () => {
    const { dev, wire, drv } = await started();
    const results = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const r = wire.inject(ethFrame(MAC, SRC, 46 + (i % 1468), i));
      results.set(r, (results.get(r) ?? 0) + 1);
    }
    expect(results.get('full')).toBeGreaterThan(4000);
    const got = await drv.receive();
    expect(got.length).toBeGreaterThan(0);
    for (const g of got) expect(g.count - 4).toBe(g.frame.length);
    expect(rd(dev, R.EN0_COUNTER2)).toBe(0xff); // saturates
  });
});
