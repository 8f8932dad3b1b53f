// QEMU's own PIIX3 IDE as the physical device: PIO, IRQ 14 and bounced bus-master DMA,
// checked against the raw image file on disk and a Buffer-backed guest memory.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { QtestError } from '../src/backends/qtest.ts';
import { createQemuIde, QemuIdeDevice, REGION_BMIDE, REGION_CMD, REGION_CTL } from '../src/devices/qemu-ide.ts';
import {
  ataString,
  BufferMemory,
  IrqRecorder,
  issue,
  makeEdges,
  makeImage,
  patternSector,
  qemuMissingReason,
  readData,
  SECTOR,
  waitDrq,
  waitNotBusy,
  word,
  writeData,
} from './helpers/qemu.ts';
import { titled } from './helpers/requires.ts';

const missing = qemuMissingReason();

const SECTORS = 4096; // 2 MiB image
const MEM_BASE = 0x10_0000; // the guest's DMA window: [1 MiB, 1 MiB + 1 MiB)
const MEM_SIZE = 0x10_0000;

// ATA opcodes and bus-master bits used by the tests (names as in Linux ata.h).
const ATA_CMD_ID_ATA = 0xec;
const ATA_CMD_PIO_READ = 0x20;
const ATA_CMD_PIO_WRITE = 0x30;
const ATA_CMD_READ = 0xc8; // READ DMA
const ATA_CMD_WRITE = 0xca; // WRITE DMA
const ATA_CMD_FLUSH = 0xe7;
const BM_CMD = 0;
const BM_STATUS = 2;
const BM_PRD = 4;
const BM_START = 0x01;
const BM_WR = 0x08; // device -> memory
const BM_ACTIVE = 0x01;
const BM_ERR = 0x02;
const BM_INTR = 0x04;
const PRD_EOT = 0x8000_0000;

describe.skipIf(missing !== null)(titled('QemuIdeDevice over qtest', missing), () => {
  let image: { path: string; dispose: () => void };
  let mem: BufferMemory;
  let irq: IrqRecorder;
  let dev: QemuIdeDevice;

  beforeAll(async () => {
    image = makeImage(SECTORS, (lba) => patternSector(lba));
    mem = new BufferMemory(MEM_BASE, MEM_SIZE);
    irq = new IrqRecorder();
    dev = await QemuIdeDevice.open(makeEdges(mem, irq), { image: image.path });
  });
  afterAll(async () => {
    await dev?.close();
    image?.dispose();
  });
  beforeEach(async () => {
    // Leave no interrupt or bus-master state from the previous test.
    await dev.read(REGION_CMD, 7, 1);
    await dev.write(REGION_BMIDE, BM_CMD, 1, 0);
    await dev.write(REGION_BMIDE, BM_STATUS, 1, BM_ERR | BM_INTR);
    irq.history.length = 0;
  });

  const diskSector = (lba: number): Buffer => readFileSync(image.path).subarray(lba * SECTOR, (lba + 1) * SECTOR);

  it('describes itself as the PIIX3 IDE function with the ATA regions', () => {
    const d = dev.describe();
    expect(d.kind).toBe('ata');
    expect(d.irq).toBe(14);
    expect(d.pci).toMatchObject({ vendor: 0x8086, device: 0x7010, classCode: 0x010180 });
    expect(d.regions.map((r) => [r.name, r.size, r.legacyBase ?? r.bar])).toEqual([
      ['cmd', 8, 0x1f0],
      ['ctl', 1, 0x3f6],
      ['bmide', 16, 4],
    ]);
  });

  it('IDENTIFY returns QEMU HARDDISK and the image capacity', async () => {
    await issue(dev, ATA_CMD_ID_ATA);
    await waitDrq(dev);
    const id = await readData(dev);
    expect(ataString(id, 27, 20)).toBe('QEMU HARDDISK');
    expect(word(id, 60) | (word(id, 61) << 16)).toBe(SECTORS); // LBA28 capacity
    expect(word(id, 100) + word(id, 101) * 0x10000).toBe(SECTORS); // LBA48 capacity
    expect((await waitNotBusy(dev)) & 0x08).toBe(0); // all data taken: DRQ clear
  });

  it('PIO READ SECTORS returns what the test wrote into the image file', async () => {
    await issue(dev, ATA_CMD_PIO_READ, 1234, 3);
    for (let i = 0; i < 3; i++) {
      await waitDrq(dev);
      const data = await readData(dev);
      expect(Buffer.from(data).equals(diskSector(1234 + i))).toBe(true);
      expect(data[0] | (data[1] << 8)).toBe(1234 + i);
    }
  });

  it('PIO WRITE SECTORS + FLUSH CACHE reaches the image file, and reads back', async () => {
    const payload = [patternSector(77, 9), patternSector(78, 9)];
    await issue(dev, ATA_CMD_PIO_WRITE, 77, 2);
    for (const s of payload) {
      await waitDrq(dev);
      await writeData(dev, s);
    }
    expect((await waitNotBusy(dev)) & 0x09).toBe(0); // no DRQ, no ERR
    await issue(dev, ATA_CMD_FLUSH);
    expect((await waitNotBusy(dev)) & 0x01).toBe(0);
    expect(diskSector(77).equals(Buffer.from(payload[0]))).toBe(true);
    expect(diskSector(78).equals(Buffer.from(payload[1]))).toBe(true);

    await issue(dev, ATA_CMD_PIO_READ, 78, 1);
    await waitDrq(dev);
    expect(Buffer.from(await readData(dev)).equals(Buffer.from(payload[1]))).toBe(true);
  });

  it('raises IRQ 14 on completion and lowers it when the status register is read', async () => {
    await issue(dev, ATA_CMD_FLUSH);
    await waitNotBusy(dev); // alternate status: does not acknowledge
    expect(irq.level).toBe(true);
    expect(await dev.read(REGION_CTL, 0, 1)).toBe(0x50);
    expect(irq.level).toBe(true);
    expect(await dev.read(REGION_CMD, 7, 1)).toBe(0x50);
    expect(irq.level).toBe(false);
    expect(irq.history).toEqual([true, false]);
  });

  /** Write a PRD table into guest memory: [addr, len] pairs, EOT on the last unless told. */
  function putPrd(at: number, entries: [number, number][], terminate = true): void {
    const t = mem.at(at, entries.length * 8);
    entries.forEach(([addr, len], i) => {
      t.writeUInt32LE(addr, i * 8);
      t.writeUInt32LE(((len & 0xffff) | (terminate && i === entries.length - 1 ? PRD_EOT : 0)) >>> 0, i * 8 + 4);
    });
  }

  /** Program the bus master like Linux's ata_bmdma_setup/start around an LBA28 DMA command. */
  async function startDma(prd: number, command: number, lba: number, count: number): Promise<void> {
    await dev.write(REGION_BMIDE, BM_PRD, 4, prd);
    const dir = command === ATA_CMD_READ ? BM_WR : 0;
    await dev.write(REGION_BMIDE, BM_CMD, 1, dir);
    await issue(dev, command, lba, count);
    await dev.write(REGION_BMIDE, BM_CMD, 1, dir | BM_START);
  }

  /** Resolves at the next rising edge of the IRQ line, with a copy of guest memory taken at that moment. */
  function nextRaise(): Promise<Buffer> {
    return new Promise((resolve) => {
      const set = irq.set.bind(irq);
      irq.set = (level: boolean) => {
        set(level);
        if (level) {
          irq.set = set;
          resolve(Buffer.from(mem.bytes));
        }
      };
    });
  }

  it('DMA read bounces QEMU data into the guest buffers before the IRQ rises', async () => {
    const prd = MEM_BASE + 0x1000;
    const bufA = MEM_BASE + 0x8000; // two scattered buffers: 1 and 3 sectors
    const bufB = MEM_BASE + 0x40000;
    mem.at(bufA, 4 * SECTOR).fill(0xee);
    mem.at(bufB, 4 * SECTOR).fill(0xee);
    putPrd(prd, [[bufA, SECTOR], [bufB, 3 * SECTOR]]);
    const raised = nextRaise();
    await startDma(prd, ATA_CMD_READ, 300, 4);
    const atRaise = await raised; // no device access in between: the IRQ path itself copied the data
    expect(atRaise.subarray(bufA - MEM_BASE, bufA - MEM_BASE + SECTOR).equals(diskSector(300))).toBe(true);
    for (let i = 0; i < 3; i++) {
      const off = bufB - MEM_BASE + i * SECTOR;
      expect(atRaise.subarray(off, off + SECTOR).equals(diskSector(301 + i))).toBe(true);
    }
    expect(mem.at(bufA + SECTOR, SECTOR).every((b) => b === 0xee)).toBe(true); // nothing past the PRD entry

    const bm = await dev.read(REGION_BMIDE, BM_STATUS, 1);
    expect(bm & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_INTR);
    expect(await dev.read(REGION_BMIDE, BM_PRD, 4)).toBe(prd); // the guest's own pointer, not the bounce table
    await dev.write(REGION_BMIDE, BM_CMD, 1, BM_WR); // stop
    expect(await dev.read(REGION_CMD, 7, 1)).toBe(0x50);
    expect(irq.level).toBe(false);
    expect(dev.metrics().dmaRefused).toBe(0);
  });

  it('DMA write carries guest memory to the image file', async () => {
    const prd = MEM_BASE + 0x2000;
    const buf = MEM_BASE + 0x20000;
    const payload = Buffer.concat([0, 1, 2, 3].map((i) => Buffer.from(patternSector(500 + i, 5))));
    mem.at(buf, payload.length).set(payload);
    putPrd(prd, [[buf, 2 * SECTOR], [buf + 2 * SECTOR, 2 * SECTOR]]);
    const raised = nextRaise();
    await startDma(prd, ATA_CMD_WRITE, 500, 4);
    await raised;
    expect((await dev.read(REGION_BMIDE, BM_STATUS, 1)) & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_INTR);
    await dev.write(REGION_BMIDE, BM_CMD, 1, 0);
    expect(await dev.read(REGION_CMD, 7, 1)).toBe(0x50);
    await issue(dev, ATA_CMD_FLUSH);
    await waitNotBusy(dev);
    for (let i = 0; i < 4; i++) expect(diskSector(500 + i).equals(payload.subarray(i * SECTOR, (i + 1) * SECTOR))).toBe(true);
  });

  it('a PRD byte count of 0 means 64 KiB, and bytes the device did not write stay the guest\'s own', async () => {
    const prd = MEM_BASE + 0x3000;
    const buf = MEM_BASE + 0x80000;
    mem.at(buf, 0x10000).fill(0xaa);
    putPrd(prd, [[buf, 0]]); // 0 = 64 KiB
    const raised = nextRaise();
    await startDma(prd, ATA_CMD_READ, 10, 2); // 1 KiB into a 64 KiB region
    await raised;
    expect(mem.at(buf, SECTOR).equals(diskSector(10))).toBe(true);
    expect(mem.at(buf + SECTOR, SECTOR).equals(diskSector(11))).toBe(true);
    expect(mem.at(buf + 2 * SECTOR, 0x10000 - 2 * SECTOR).every((b) => b === 0xaa)).toBe(true);
    await dev.write(REGION_BMIDE, BM_CMD, 1, BM_WR);
    await dev.read(REGION_CMD, 7, 1);
  });

  async function expectDmaError(): Promise<void> {
    // The bounce path ends a bad DMA like a master abort: ERR|INTR, not active, IRQ raised.
    expect(irq.level).toBe(true);
    expect((await dev.read(REGION_BMIDE, BM_STATUS, 1)) & (BM_ACTIVE | BM_ERR | BM_INTR)).toBe(BM_ERR | BM_INTR);
    await dev.write(REGION_BMIDE, BM_CMD, 1, 0);
    await dev.write(REGION_BMIDE, BM_STATUS, 1, BM_ERR | BM_INTR);
    // The drive still waits for its DMA: a reset (what a driver's error handling does) frees it.
    await dev.reset();
    expect(irq.level).toBe(false);
    await issue(dev, ATA_CMD_PIO_READ, 42, 1);
    await waitDrq(dev);
    expect(Buffer.from(await readData(dev)).equals(diskSector(42))).toBe(true);
  }

  it('an unterminated PRD table ends in an error, bounded, not a hang', async () => {
    const prd = MEM_BASE + 0x10000;
    const entries: [number, number][] = Array.from({ length: 600 }, () => [MEM_BASE + 0x90000, SECTOR]);
    putPrd(prd, entries, false);
    const before = dev.metrics().dmaBadPrd;
    await startDma(prd, ATA_CMD_READ, 0, 1);
    expect(dev.metrics().dmaBadPrd).toBe(before + 1);
    await expectDmaError();
  });

  it('a PRD entry outside the guest window is refused and ends in an error', async () => {
    const prd = MEM_BASE + 0x4000;
    putPrd(prd, [[MEM_BASE + MEM_SIZE - SECTOR, 2 * SECTOR]]); // runs off the end of the window
    const before = dev.metrics().dmaRefused;
    await startDma(prd, ATA_CMD_READ, 0, 2);
    expect(dev.metrics().dmaRefused).toBe(before + 1);
    await expectDmaError();
  });

  it('a PRD table pointer outside the guest window is refused', async () => {
    const before = mem.refused;
    await startDma(0x10, ATA_CMD_READ, 0, 1);
    expect(mem.refused).toBeGreaterThan(before);
    await expectDmaError();
  });

  it('a guest that stops the engine before completion still gets what QEMU wrote', async () => {
    const prd = MEM_BASE + 0x5000;
    const buf = MEM_BASE + 0xa0000;
    mem.at(buf, 8 * SECTOR).fill(0x55);
    putPrd(prd, [[buf, 8 * SECTOR]]);
    await startDma(prd, ATA_CMD_READ, 900, 8);
    await dev.write(REGION_BMIDE, BM_CMD, 1, BM_WR); // stop at once, whatever QEMU got done
    expect(await dev.read(REGION_BMIDE, BM_PRD, 4)).toBe(prd);
    // Every sector is either untouched or the disk's: never another transfer's bytes.
    for (let i = 0; i < 8; i++) {
      const got = mem.at(buf + i * SECTOR, SECTOR);
      expect(got.every((b) => b === 0x55) || got.equals(diskSector(900 + i))).toBe(true);
    }
    await dev.reset();
    await dev.write(REGION_BMIDE, BM_STATUS, 1, BM_ERR | BM_INTR);
    await issue(dev, ATA_CMD_PIO_READ, 42, 1);
    await waitDrq(dev);
    expect(Buffer.from(await readData(dev)).equals(diskSector(42))).toBe(true);
  });

  it('counts accesses outside a region instead of forwarding them', async () => {
    const before = dev.metrics().badAccess;
    expect(await dev.read(REGION_CTL, 1, 1)).toBe(0xff);
    expect(await dev.read(REGION_BMIDE, 2, 4)).toBe(0xffff_ffff); // straddles status and PRD pointer
    await dev.write(REGION_CMD, 7, 2, 0xffff);
    expect(dev.metrics().badAccess).toBe(before + 3);
    // A 32-bit value with bit 31 set is a valid access (the PRD pointer keeps it, bits 1:0 clear).
    await dev.write(REGION_BMIDE, BM_PRD, 4, 0x8000_0007);
    expect(await dev.read(REGION_BMIDE, BM_PRD, 4)).toBe(0x8000_0004);
    await dev.write(REGION_BMIDE, BM_PRD + 2, 2, 0x1234);
    expect(await dev.read(REGION_BMIDE, BM_PRD, 4)).toBe(0x1234_0004);
  });
});

describe.skipIf(missing !== null)(titled('createQemuIde (registry factory)', missing), () => {
  it('refuses a backend without an image with a typed error', async () => {
    const edges = makeEdges(new BufferMemory(0, 0x1000), new IrqRecorder());
    const err = await createQemuIde({ id: 'd0', edges, backend: { type: 'qemu' }, properties: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtestError);
    expect(String(err)).toContain('d0');
    expect(String(err)).toContain('image');
  });

  it('builds a working device from { type: qemu, image }', async () => {
    const img = makeImage(64, (lba) => patternSector(lba, 3));
    const d = await createQemuIde({ edges: makeEdges(new BufferMemory(0, 0x1000), new IrqRecorder()), backend: { type: 'qemu', image: img.path }, properties: { bmBase: 0xd000 } });
    try {
      await issue(d, ATA_CMD_ID_ATA);
      await waitDrq(d);
      expect(word(await readData(d), 60)).toBe(64);
      expect(d.describe().properties.find((p) => p.name === 'bmBase')?.value).toBe(0xd000);
    } finally {
      await d.close?.();
      img.dispose();
    }
  });
});
