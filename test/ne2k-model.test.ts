// The NE2000 (RTL8029) model register by register and command by command, driven the way
// Linux's ne2k-pci driver drives the card (test/helpers/ne2k-driver.ts).

import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { deviceShapeIssues } from '../src/config/device-shapes.ts';
import type { DeviceConfig } from '../src/config/schema.ts';
import type { DeviceEdges } from '../src/device.ts';
import { LoopWire, Ne2kDevice, crc32Be, multicastIndex, ne2kRegs as R, registerWireOpener } from '../src/devices/ne2k/index.ts';
import { DeviceRegistry } from '../src/devices/registry.ts';
import { silentLogger } from '../src/log.ts';
import { BROADCAST, ethFrame, Ne2kDriver, RX_START_PAGE, STOP_PAGE, TX_START_PAGE } from './helpers/ne2k-driver.ts';

const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0xab, 0xcd, 0x01]);
const OTHER = [0x52, 0x54, 0x00, 0x99, 0x99, 0x99];

class Irq {
  level = false;
  edges = 0;
  set(level: boolean): void {
    this.level = level;
    this.edges++;
  }
}

function rig(mac = MAC) {
  const irq = new Irq();
  const edges: DeviceEdges = { irq, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
  const wire = new LoopWire();
  const dev = new Ne2kDevice(edges, wire, { mac });
  const drv = new Ne2kDriver(dev);
  return { dev, wire, irq, drv };
}

async function started(mac = MAC, opts: { rcr?: number; mar?: number[] } = {}) {
  const r = rig(mac);
  const got = await r.drv.probe();
  await r.drv.init(got, opts);
  return r;
}

const rd = (dev: Ne2kDevice, o: number) => dev.read(0, o, 1);
const wr = (dev: Ne2kDevice, o: number, v: number) => dev.write(0, o, 1, v);
function page(dev: Ne2kDevice, p: number): void {
  wr(dev, R.NE_CMD, (rd(dev, R.NE_CMD) & 0x3f) | (p << 6));
}

describe('ne2k model: identity and power-on', () => {
  it('describes an RTL8029 PCI function with a 32-byte I/O BAR and INTA', () => {
    const d = rig().dev.describe();
    expect(d.kind).toBe('ne2k');
    expect(d.pci).toMatchObject({ vendor: 0x10ec, device: 0x8029, classCode: 0x020000, interruptPin: 1 });
    expect(d.regions).toEqual([{ name: 'regs', space: 'pio', size: 32, bar: 0 }]);
    expect(d.properties.find((p) => p.name === 'mac')?.value).toBe('52:54:00:ab:cd:01');
  });

  it('powers on stopped (CR 0x21) with RST set, the line low and the Realtek id', () => {
    const { dev, irq } = rig();
    expect(rd(dev, R.NE_CMD)).toBe(0x21);
    expect(rd(dev, R.EN0_ISR)).toBe(0x80);
    expect(rd(dev, R.EN0_RTL8029ID0)).toBe(0x50);
    expect(rd(dev, R.EN0_RTL8029ID1)).toBe(0x43);
    expect(irq.level).toBe(false);
  });

  it('PROM: the MAC with each byte doubled, 0x57 0x57 at words 14-15; probe in word mode yields the MAC', async () => {
    const { dev, drv } = rig();
    wr(dev, R.EN0_DCFG, 0x48); // byte mode: read the 32 PROM bytes one by one
    wr(dev, R.EN0_RCNTLO, 32);
    wr(dev, R.EN0_RSARLO, 0);
    wr(dev, R.EN0_RSARHI, 0);
    wr(dev, R.NE_CMD, R.E8390_RREAD | R.E8390_START);
    const prom = Array.from({ length: 32 }, () => dev.read(0, R.NE_DATAPORT, 1));
    expect(prom.slice(0, 12)).toEqual([...MAC].flatMap((b) => [b, b]));
    expect(prom.slice(12, 28)).toEqual(new Array(16).fill(0));
    expect(prom.slice(28)).toEqual([0x57, 0x57, 0x57, 0x57]);
    expect(rd(dev, R.EN0_ISR) & R.ENISR_RDC).toBe(R.ENISR_RDC);
    expect([...(await drv.probe())]).toEqual([...MAC]);
    // Linux's probe reads 32 times with a count of 32 in word mode: 16 reads past the count.
    expect(dev.metrics().dmaReadPastCount).toBe(16);
  });

  it('the reset port stops the chip: CR 0x21, RST set, IMR 0, loopback; reading ISR sees RST', async () => {
    const { dev, drv } = await started();
    expect(rd(dev, R.NE_CMD)).toBe(0x20); // do_set_multicast_list's last CR write: no STA bit
    expect(await drv.reset()).toBe(true);
    expect(rd(dev, R.NE_CMD)).toBe(0x21);
    page(dev, 2);
    expect(rd(dev, R.EN2_IMR)).toBe(0);
    expect(rd(dev, R.EN2_TCR) & R.ENTCR_LOOPBACK).toBe(0x02);
    page(dev, 0);
    // RST is not cleared by writing it (the driver's ack), only by a start.
    expect(rd(dev, R.EN0_ISR) & 0x80).toBe(0x80);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    expect(rd(dev, R.EN0_ISR) & 0x80).toBe(0);
  });

  it('power-on reset() clears registers and buffer memory but keeps the PROM', async () => {
    const { dev, drv, wire } = await started();
    wire.inject(ethFrame(MAC, OTHER, 100));
    dev.reset();
    expect(rd(dev, R.NE_CMD)).toBe(0x21);
    expect(dev.peek(RX_START_PAGE << 8, 4)).toEqual(new Uint8Array(4));
    expect([...(await drv.probe())]).toEqual([...MAC]);
  });
});

describe('ne2k model: NS8390_init and the register pages', () => {
  it('page 2 reads back what init wrote on page 0; page 1 holds PAR, CURR, MAR', async () => {
    const { dev } = await started(MAC, { rcr: 0x0c, mar: [1, 2, 3, 4, 5, 6, 7, 8] });
    page(dev, 2);
    expect([1, 2, 4, 0x0c, 0x0d, 0x0e, 0x0f].map((o) => rd(dev, o))).toEqual([RX_START_PAGE, STOP_PAGE, TX_START_PAGE, 0x0c, 0x00, 0x49, 0x3f]);
    page(dev, 1);
    expect([1, 2, 3, 4, 5, 6].map((o) => rd(dev, o))).toEqual([...MAC]);
    expect(rd(dev, R.EN1_CURPAG)).toBe(RX_START_PAGE);
    expect([8, 9, 10, 11, 12, 13, 14, 15].map((o) => rd(dev, o))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    page(dev, 0);
    expect(rd(dev, R.EN0_BOUNDARY)).toBe(STOP_PAGE - 1);
    expect(rd(dev, R.NE_CMD)).toBe(0x20);
  });

  it('ISR: write 1 to clear; the line is ISR & IMR & 0x7F, recomputed after every access', () => {
    const { dev, irq } = rig();
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    wr(dev, R.EN0_RCNTLO, 0);
    wr(dev, R.EN0_RCNTHI, 0);
    wr(dev, R.NE_CMD, R.E8390_RREAD | R.E8390_START); // zero-byte remote DMA: RDC at once
    expect(rd(dev, R.EN0_ISR)).toBe(R.ENISR_RDC);
    expect(irq.level).toBe(false);
    wr(dev, R.EN0_IMR, R.ENISR_RDC);
    expect(irq.level).toBe(true);
    wr(dev, R.EN0_ISR, R.ENISR_RX); // another bit: no change
    expect(irq.level).toBe(true);
    wr(dev, R.EN0_ISR, R.ENISR_RDC);
    expect(irq.level).toBe(false);
    expect(rd(dev, R.EN0_ISR)).toBe(0);
  });

  it('STP sets RST (DP8390) and RST alone never raises the line', () => {
    const { dev, irq } = rig();
    wr(dev, R.EN0_IMR, 0xff);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    expect(rd(dev, R.EN0_ISR)).toBe(0x80);
    expect(irq.level).toBe(false);
  });

  it('set_realtek_fdx: page 3 CONFIG3 is writable only while 9346CR is 0xC0', () => {
    const { dev } = rig();
    wr(dev, R.NE_CMD, 0xc0 | R.E8390_NODMA);
    wr(dev, R.EN3_CONFIG3, 0x00); // locked: ignored
    expect(rd(dev, R.EN3_CONFIG3)).toBe(0x40);
    expect(dev.metrics().page3Write).toBe(1);
    wr(dev, R.EN3_9346CR, 0xc0);
    wr(dev, R.EN3_CONFIG3, 0x00);
    expect(rd(dev, R.EN3_CONFIG3)).toBe(0x00);
    wr(dev, R.EN3_CONFIG3, 0x40);
    wr(dev, R.EN3_9346CR, 0x00);
    expect([rd(dev, R.EN3_CONFIG0), rd(dev, R.EN3_CONFIG2), rd(dev, R.EN3_CONFIG3)]).toEqual([0x00, 0x40, 0x40]);
  });

  it('registers take byte accesses only; other widths and undecoded offsets read all ones and count', () => {
    const { dev } = rig();
    expect(dev.read(0, R.EN0_ISR, 2)).toBe(0xffff);
    expect(dev.read(0, 0x00, 4)).toBe(0xffff_ffff);
    dev.write(0, R.EN0_IMR, 2, 0xffff);
    expect(dev.read(0, 0x14, 1)).toBe(0xff);
    expect(dev.read(0, 0x20, 1)).toBe(0xff);
    expect(dev.read(1, 0, 1)).toBe(0xff);
    expect(dev.read(0, R.NE_RESET, 2)).toBe(0xffff);
    expect(dev.metrics()).toMatchObject({ badWidth: 4, badRegister: 3 });
    page(dev, 2);
    expect(rd(dev, R.EN2_IMR)).toBe(0);
  });

  it('tally counters clear on read; CNT is raised when one reaches 128', async () => {
    const { dev, wire, drv } = await started();
    // Fill the ring until it refuses frames: each refused one is a missed frame (CNTR2).
    let missed = 0;
    for (let i = 0; i < 160; i++) if (wire.inject(ethFrame(MAC, OTHER, 1500, i)) === 'full') missed++;
    expect(missed).toBeGreaterThan(128);
    expect(rd(dev, R.EN0_ISR) & R.ENISR_COUNTERS).toBe(R.ENISR_COUNTERS);
    expect(rd(dev, R.EN0_RSR) & R.ENRSR_MPA).toBe(R.ENRSR_MPA);
    expect(rd(dev, R.EN0_COUNTER2)).toBe(missed);
    expect(rd(dev, R.EN0_COUNTER2)).toBe(0);
    expect([rd(dev, R.EN0_COUNTER0), rd(dev, R.EN0_COUNTER1)]).toEqual([0, 0]);
    expect(dev.metrics().rxDroppedFull).toBe(missed);
    // 1514-byte frames take 6 pages: 8 fit in the 52-page ring before less than 1518 bytes are free.
    expect(160 - missed).toBe(8);
    expect((await drv.receive()).length).toBe(8);
  });
});

describe('ne2k model: remote DMA', () => {
  function setup(dcr: number, pstart = 0x4c, pstop = 0x80) {
    const r = rig();
    wr(r.dev, R.EN0_DCFG, dcr);
    wr(r.dev, R.EN0_STARTPG, pstart);
    wr(r.dev, R.EN0_STOPPG, pstop);
    wr(r.dev, R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    return r;
  }
  function start(dev: Ne2kDevice, cmd: number, addr: number, count: number): void {
    wr(dev, R.EN0_RCNTLO, count & 0xff);
    wr(dev, R.EN0_RCNTHI, count >> 8);
    wr(dev, R.EN0_RSARLO, addr & 0xff);
    wr(dev, R.EN0_RSARHI, addr >> 8);
    wr(dev, R.NE_CMD, cmd | R.E8390_START);
  }

  it('byte mode moves one byte per 8/16-bit access, word mode two, a 32-bit access four', () => {
    for (const [dcr, unit] of [[0x48, 1], [0x49, 2]] as const) {
      const { dev } = setup(dcr);
      start(dev, R.E8390_RWRITE, 0x5000, 8);
      dev.write(0, R.NE_DATAPORT, 2, 0xbbaa);
      dev.write(0, R.NE_DATAPORT, 2, 0xddcc);
      dev.write(0, R.NE_DATAPORT, 4, 0x44332211);
      expect(rd(dev, R.EN0_CRDALO) | (rd(dev, R.EN0_CRDAHI) << 8)).toBe(0x5000 + 2 * unit + 4);
      expect([...dev.peek(0x5000, 2 * unit + 4)]).toEqual(unit === 1 ? [0xaa, 0xcc, 0x11, 0x22, 0x33, 0x44] : [0xaa, 0xbb, 0xcc, 0xdd, 0x11, 0x22, 0x33, 0x44]);
      wr(dev, R.EN0_ISR, R.ENISR_RDC);
      start(dev, R.E8390_RREAD, 0x5000, 2 * unit + 4);
      expect(dev.read(0, R.NE_DATAPORT, 2)).toBe(unit === 1 ? 0xaa : 0xbbaa);
      expect(dev.read(0, R.NE_DATAPORT, 1)).toBe(0xcc);
      expect(rd(dev, R.EN0_ISR) & R.ENISR_RDC).toBe(0);
      expect(dev.read(0, R.NE_DATAPORT, 4)).toBe(0x44332211);
      expect(rd(dev, R.EN0_ISR) & R.ENISR_RDC).toBe(R.ENISR_RDC);
    }
  });

  it('the address wraps from PSTOP to PSTART (a frame across the ring end reads in one transfer)', () => {
    const { dev } = setup(0x49);
    start(dev, R.E8390_RWRITE, 0x7ffc, 8);
    dev.writeString(0, R.NE_DATAPORT, 4, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    expect([...dev.peek(0x7ffc, 4)]).toEqual([1, 2, 3, 4]);
    expect([...dev.peek(0x4c00, 4)]).toEqual([5, 6, 7, 8]);
    start(dev, R.E8390_RREAD, 0x7ffc, 8);
    expect([...dev.readString(0, R.NE_DATAPORT, 4, 2)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(rd(dev, R.EN0_CRDAHI)).toBe(0x4c);
  });

  it('data-port accesses without a matching remote DMA command are counted and do nothing', () => {
    const { dev } = setup(0x49);
    start(dev, R.E8390_RREAD, 0x5000, 4);
    dev.write(0, R.NE_DATAPORT, 2, 0x1234); // a write during a read
    expect(dev.metrics().dmaNotStarted).toBe(1);
    expect([...dev.peek(0x5000, 2)]).toEqual([0, 0]);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    expect(dev.read(0, R.NE_DATAPORT, 2)).toBe(0xffff);
    expect(dev.metrics().dmaNotStarted).toBe(2);
    start(dev, R.E8390_RWRITE, 0x5000, 2);
    dev.write(0, R.NE_DATAPORT, 2, 0x1234);
    dev.write(0, R.NE_DATAPORT, 2, 0x5678); // past the count: dropped
    expect([...dev.peek(0x5000, 4)]).toEqual([0x34, 0x12, 0, 0]);
    expect(dev.metrics().dmaWritePastCount).toBe(1);
  });

  it('the PROM is read-only and addresses outside PROM and buffer read 0xFF', () => {
    const { dev } = setup(0x49);
    start(dev, R.E8390_RWRITE, 0x0000, 4);
    dev.write(0, R.NE_DATAPORT, 4, 0);
    expect(dev.metrics().promWrite).toBe(4);
    start(dev, R.E8390_RREAD, 0x0000, 2);
    expect(dev.read(0, R.NE_DATAPORT, 2)).toBe(MAC[0] | (MAC[0] << 8));
    start(dev, R.E8390_RREAD, 0x1000, 4);
    expect(dev.read(0, R.NE_DATAPORT, 4)).toBe(0xffff_ffff);
    expect(dev.metrics().dmaUnmapped).toBe(4);
  });

  it('remoteDmaBusy follows the command and the remaining count', () => {
    const { dev } = setup(0x49);
    expect(dev.remoteDmaBusy()).toBe(false);
    start(dev, R.E8390_RREAD, 0x5000, 4);
    expect(dev.remoteDmaBusy()).toBe(true);
    dev.read(0, R.NE_DATAPORT, 4);
    expect(dev.remoteDmaBusy()).toBe(false);
  });
});

describe('ne2k model: transmit', () => {
  it('ei_start_xmit: the frame (padded to 60) reaches the wire, PTX and TSR.PTX, the line rises', async () => {
    const { dev, wire, drv, irq } = await started();
    const short = ethFrame(OTHER, MAC, 20);
    const res = await drv.send(short);
    expect(res).toEqual({ isr: R.ENISR_TX, tsr: R.ENTSR_PTX });
    expect(wire.sent).toHaveLength(1);
    expect(wire.sent[0].length).toBe(60);
    expect([...wire.sent[0].subarray(0, 34)]).toEqual([...short]);
    expect([...wire.sent[0].subarray(34)]).toEqual(new Array(26).fill(0));
    // The second frame goes through the other slot (0x46); both arrive intact.
    const big = ethFrame(OTHER, MAC, 1500, 9);
    await drv.send(big);
    expect(wire.sent[1]).toEqual(big);
    expect(rd(dev, R.NE_CMD) & R.E8390_TRANS).toBe(0);
    expect(dev.metrics()).toMatchObject({ txFrames: 2, txBytes: 60 + 1514 });
    // PTX raised the line (IMR 0x3F) until the driver acknowledged it.
    expect(irq.edges).toBeGreaterThanOrEqual(2);
    expect(irq.level).toBe(false);
  });

  it('loopback (TCR.LB) keeps frames off the wire; a stopped card does not transmit', async () => {
    const { dev, wire } = await started();
    wr(dev, R.EN0_TXCR, 0x02);
    wr(dev, R.EN0_TCNTLO, 60);
    wr(dev, R.EN0_TPSR, TX_START_PAGE);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_START);
    expect(wire.sent).toHaveLength(0);
    expect(rd(dev, R.EN0_ISR) & R.ENISR_TX).toBe(R.ENISR_TX);
    expect(dev.metrics().txLoopback).toBe(1);
    wr(dev, R.EN0_TXCR, 0x00);
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_STOP);
    expect(wire.sent).toHaveLength(0);
  });
});

describe('ne2k model: receive into the ring', () => {
  it('frames land behind a 4-byte header; ei_receive reads them back through remote DMA', async () => {
    const { dev, wire, drv, irq } = await started();
    const frames = [ethFrame(MAC, OTHER, 46, 1), ethFrame(MAC, OTHER, 300, 2), ethFrame(BROADCAST, OTHER, 1000, 3), ethFrame(MAC, OTHER, 10, 4)];
    for (const f of frames) expect(wire.inject(f)).toBe('stored');
    expect(irq.level).toBe(true);
    expect(rd(dev, R.EN0_ISR) & R.ENISR_RX).toBe(R.ENISR_RX);
    const got = await drv.receive();
    expect(got.map((g) => g.frame.length)).toEqual([60, 314, 1014, 60]);
    expect(got[0].frame).toEqual(frames[0]);
    expect(got[2].frame).toEqual(frames[2]);
    expect([...got[3].frame.subarray(0, 24)]).toEqual([...frames[3]]);
    expect([...got[3].frame.subarray(24)]).toEqual(new Array(36).fill(0));
    // Header: RXOK (+PHY for broadcast), count = length + 4, next = page + ceil((count + 4) / 256).
    expect(got.map((g) => [g.status, g.count, g.page, g.next])).toEqual([
      [0x01, 64, 0x4c, 0x4d],
      [0x01, 318, 0x4d, 0x4f],
      [0x21, 1018, 0x4f, 0x53],
      [0x01, 64, 0x53, 0x54],
    ]);
    expect(irq.level).toBe(false);
    expect(drv.rxErrors).toBe(0);
    expect(dev.metrics()).toMatchObject({ rxFrames: 4, rxBytes: 60 + 314 + 1014 + 60 });
  });

  it('wraps at PSTOP: a frame across the ring end is whole, and the pages go round many times', async () => {
    const { dev, wire, drv } = await started();
    let seen = 0;
    for (let round = 0; round < 40; round++) {
      const f = ethFrame(MAC, OTHER, 100 + ((round * 397) % 1400), round);
      expect(wire.inject(f)).toBe('stored');
      const got = await drv.receive();
      expect(got).toHaveLength(1);
      expect(got[0].frame.subarray(0, f.length)).toEqual(f);
      seen++;
    }
    expect(seen).toBe(40);
    // 40 frames of about 800 bytes went round the 52-page ring more than twice.
    expect(dev.metrics().rxBytes).toBeGreaterThan(2 * (STOP_PAGE - RX_START_PAGE) * 256);
  });

  it('next-page arithmetic at the end: next wraps by the ring size, exactly as QEMU', async () => {
    const { dev, wire } = await started();
    page(dev, 1);
    wr(dev, R.EN1_CURPAG, 0x7e);
    page(dev, 0);
    wr(dev, R.EN0_BOUNDARY, 0x7d); // all but the last page free
    wire.inject(ethFrame(MAC, OTHER, 1000));
    // 1014 + 4 + 4 -> 4 pages from 0x7E: 0x82 - 0x34 = 0x4E
    const hdr = dev.peek(0x7e00, 4);
    expect([...hdr]).toEqual([0x01, 0x4e, 1018 & 0xff, 1018 >> 8]);
    page(dev, 1);
    expect(rd(dev, R.EN1_CURPAG)).toBe(0x4e);
    expect(dev.peek(0x4c00, 4)).toEqual(ethFrame(MAC, OTHER, 1000).subarray(508, 512));
  });

  it('a ring with less than 1518 bytes free drops the frame (QEMU\'s rule) and counts it', async () => {
    const { dev, wire } = await started();
    page(dev, 1);
    wr(dev, R.EN1_CURPAG, 0x60);
    page(dev, 0);
    wr(dev, R.EN0_BOUNDARY, 0x65); // 5 pages free
    expect(wire.inject(ethFrame(MAC, OTHER, 46))).toBe('full');
    wr(dev, R.EN0_BOUNDARY, 0x66); // 6 pages = 1536
    expect(wire.inject(ethFrame(MAC, OTHER, 46))).toBe('stored');
  });

  it('a stopped card and monitor mode store nothing', async () => {
    const { dev, wire } = await started();
    wr(dev, R.EN0_RXCR, R.ENRCR_MON | R.ENRCR_AB);
    expect(wire.inject(ethFrame(MAC, OTHER, 46))).toBe('monitor');
    wr(dev, R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    expect(wire.inject(ethFrame(MAC, OTHER, 46))).toBe('stopped');
    page(dev, 1);
    expect(rd(dev, R.EN1_CURPAG)).toBe(RX_START_PAGE);
    expect(dev.metrics()).toMatchObject({ rxMonitor: 1, rxDroppedStopped: 1, rxFrames: 0 });
  });
});

describe('ne2k model: address filters (RCR, PAR, MAR)', () => {
  /** Linux's ether_crc: the Ethernet CRC register, from zlib's reflected CRC (independent of filter.ts). */
  function etherCrc(b: Uint8Array): number {
    const le = ~zlibCrc32(Buffer.from(b)) >>> 0;
    let r = 0;
    for (let i = 0; i < 32; i++) if (le & (1 << i)) r |= 1 << (31 - i);
    return r >>> 0;
  }

  it('the multicast hash is the top 6 bits of the big-endian Ethernet CRC', () => {
    for (const mac of [[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], [0x33, 0x33, 0x00, 0x00, 0x00, 0x01], [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00], BROADCAST]) {
      const b = Uint8Array.from(mac);
      expect(crc32Be(b)).toBe(etherCrc(b));
      expect(multicastIndex(b)).toBe(etherCrc(b) >>> 26);
    }
  });

  it('unicast matches PAR0-5 (not the PROM); broadcast needs AB; multicast needs AM and its MAR bit; PRO takes all', async () => {
    const { dev, wire } = await started(MAC, { rcr: 0x04 });
    const mcast = Uint8Array.from([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    const idx = multicastIndex(mcast);
    expect(wire.inject(ethFrame(MAC, OTHER, 46))).toBe('stored');
    expect(wire.inject(ethFrame(OTHER, MAC, 46))).toBe('filtered');
    expect(wire.inject(ethFrame(BROADCAST, OTHER, 46))).toBe('stored');
    expect(wire.inject(ethFrame(mcast, OTHER, 46))).toBe('filtered');
    // AM with the hash bit set.
    page(dev, 1);
    wr(dev, R.EN1_MULT + (idx >> 3), 1 << (idx & 7));
    page(dev, 0);
    wr(dev, R.EN0_RXCR, 0x0c);
    expect(wire.inject(ethFrame(mcast, OTHER, 46))).toBe('stored');
    expect(wire.inject(ethFrame([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], OTHER, 46))).toBe(multicastIndex(Uint8Array.from([1, 0, 0x5e, 0, 0, 1])) === idx ? 'stored' : 'filtered');
    wr(dev, R.EN0_RXCR, 0x00);
    expect(wire.inject(ethFrame(BROADCAST, OTHER, 46))).toBe('filtered');
    // A driver that changes PAR (ip link set address) receives at the new address.
    page(dev, 1);
    OTHER.forEach((b, i) => wr(dev, R.EN1_PHYS + i, b));
    page(dev, 0);
    expect(wire.inject(ethFrame(OTHER, MAC, 46))).toBe('stored');
    expect(wire.inject(ethFrame(MAC, OTHER, 46))).toBe('filtered');
    wr(dev, R.EN0_RXCR, 0x10);
    expect(wire.inject(ethFrame([0x02, 1, 2, 3, 4, 5], OTHER, 46))).toBe('stored');
    expect(dev.metrics().rxFiltered).toBe(5);
  });
});

describe('ne2k model: snapshots, registry, configuration', () => {
  it('state() / fromState() round-trip; a bad snapshot names the field', async () => {
    const { dev, wire } = await started();
    wire.inject(ethFrame(MAC, OTHER, 200));
    const s = dev.state();
    const other = rig().dev;
    other.fromState(s);
    expect(other.state()).toEqual({ ...s, mac: '52:54:00:ab:cd:01' });
    expect(() => other.fromState({ ...s, regs: { ...s.regs, pstart: 256 } })).toThrow(/regs.pstart/);
    expect(() => other.fromState({ ...s, buffer: new Uint8Array(10) })).toThrow(/buffer/);
    expect(() => other.fromState({ ...s, regs: { ...s.regs, par: [1, 2] } })).toThrow(/regs.par/);
  });

  it('kind ne2k builds from the registry with its MAC; bad properties name the JSON path', async () => {
    const reg = new DeviceRegistry();
    expect(reg.kinds()).toContain('ne2k');
    const edges: DeviceEdges = { irq: { set() {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
    const dev = await reg.create({ id: 'nic0', kind: 'ne2k', edges, properties: { mac: '52:54:00:12:34:09' }, config: {} as DeviceConfig, logger: silentLogger });
    expect(dev.describe().properties[0].value).toBe('52:54:00:12:34:09');
    await expect(reg.create({ id: 'nic1', kind: 'ne2k', edges, properties: { mac: 'nope' }, config: {} as DeviceConfig, logger: silentLogger })).rejects.toThrow(/nic1.*properties.mac/);
    await expect(reg.create({ id: 'nic2', kind: 'ne2k', edges, backend: { type: 'pty' } as never, properties: {}, config: {} as DeviceConfig, logger: silentLogger })).rejects.toThrow(/nic2: backend.type "pty"/);
    const issues = await deviceShapeIssues([
      { id: 'nic0', kind: 'ne2k', properties: { mac: '01:00:5e:00:00:01' }, map: {} },
      { id: 'nic1', kind: 'ne2k', properties: { mac: '52:54:00:12:34:5' }, map: {} },
      { id: 'nic2', kind: 'ne2k', properties: { macc: 'x' }, map: {} },
    ] as DeviceConfig[]);
    expect(issues.map((i) => i.path)).toEqual(['devices[0].properties.mac', 'devices[1].properties.mac', 'devices[2].properties']);
  });

  it('a backend type that registered a wire opener carries the frames of a configured card', async () => {
    const wire = new LoopWire();
    let seen: Record<string, unknown> | null = null;
    registerWireOpener('null', (backend, id) => {
      seen = { ...backend, id };
      return wire;
    });
    const edges: DeviceEdges = { irq: { set() {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
    const dev = await new DeviceRegistry().create({ id: 'nic5', kind: 'ne2k', edges, backend: { type: 'null' }, properties: { mac: '52:54:00:ab:cd:01' }, config: {} as DeviceConfig, logger: silentLogger });
    expect(seen).toEqual({ type: 'null', id: 'nic5' });
    const drv = new Ne2kDriver(dev);
    await drv.init(await drv.probe());
    await drv.send(ethFrame(OTHER, MAC, 100));
    expect(wire.sent).toHaveLength(1);
    expect(wire.inject(ethFrame(MAC, OTHER, 100))).toBe('stored');
    expect((await drv.receive())[0].frame).toEqual(ethFrame(MAC, OTHER, 100));
  });
});
