// One PRD table walk (src/devices/ata/bmdma.ts walkPrdTable) for both bus masters: our ATA
// model's and the QEMU bounce path's (src/devices/qemu-ide.ts, QEMU's real IDE over qtest).
// The same READ DMA with the same PRD table ends the same way on both: a byte count of 0 is
// 64 KiB; a buffer may cross a 64 KiB boundary (neither enforces SFF-8038i's rule for buffers,
// Linux splits them itself); a table that crosses a 64 KiB boundary without end-of-table is a
// bus-master error (ERR|INTR, nothing written) on both, where QEMU alone would have walked on;
// entries after end-of-table are not used; a table longer than the transfer leaves the bus
// master active (SFF-8038i; QEMU's stay_active); PRD address bit 0 is reserved.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.ts';
import type { Device } from '../src/device.ts';
import { AtaDevice } from '../src/devices/ata/index.ts';
import { QemuIdeDevice } from '../src/devices/qemu-ide.ts';
import { BufferMemory, IrqRecorder, issue, makeEdges, makeImage, patternSector, qemuMissingReason, SECTOR, waitNotBusy } from './helpers/qemu.ts';
import { titled } from './helpers/requires.ts';

const SECTORS = 1024;
const MEM_BASE = 0x10_0000;
const MEM_SIZE = 0x3_0000; // 192 KiB: the table and buffers may sit on either side of 0x110000
const BMIDE = 2;
const BM_START = 0x01;
const BM_WR = 0x08;
const BM_ACTIVE = 0x01;
const BM_ERR = 0x02;
const BM_INTR = 0x04;
const PRD_EOT = 0x8000_0000;
const READ_DMA = 0xc8;

interface Scenario {
  name: string;
  table: number;
  /** [address, byte count field, end-of-table] per entry */
  entries: Array<[number, number, boolean]>;
  lba: number;
  count: number;
  /** What both paths must show: bus-master status bits, the interrupt, and the bytes in memory. */
  bm: number;
  /** Guest memory [address, length] that must hold disk sectors lba.. in order. */
  data?: [number, number];
  /** Guest memory that must stay untouched (0xEE). */
  untouched: Array<[number, number]>;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'a byte count of 0 moves 64 KiB',
    table: MEM_BASE,
    entries: [[MEM_BASE + 0x1_0000, 0, true]],
    lba: 100,
    count: 128,
    bm: BM_INTR,
    data: [MEM_BASE + 0x1_0000, 0x1_0000],
    untouched: [[MEM_BASE + 0x2_0000, 0x1000]],
  },
  {
    name: 'a buffer crossing a 64 KiB boundary is moved whole',
    table: MEM_BASE,
    entries: [[MEM_BASE + 0xf000, 0x2000, true]],
    lba: 7,
    count: 16,
    bm: BM_INTR,
    data: [MEM_BASE + 0xf000, 0x2000],
    untouched: [[MEM_BASE + 0x1_1000, 0x1000]],
  },
  {
    name: 'a PRD table crossing a 64 KiB boundary without end-of-table is a bus-master error',
    table: MEM_BASE + 0xfff8, // its second entry would be at 0x110000
    entries: [[MEM_BASE + 0x2000, SECTOR, false], [MEM_BASE + 0x3000, SECTOR, true]],
    lba: 3,
    count: 2,
    bm: BM_ERR | BM_INTR,
    untouched: [[MEM_BASE + 0x2000, SECTOR], [MEM_BASE + 0x3000, SECTOR]],
  },
  {
    name: 'entries after end-of-table are not used',
    table: MEM_BASE,
    entries: [[MEM_BASE + 0x2000, SECTOR, true], [MEM_BASE + 0x3000, SECTOR, false]],
    lba: 9,
    count: 1,
    bm: BM_INTR,
    data: [MEM_BASE + 0x2000, SECTOR],
    untouched: [[MEM_BASE + 0x3000, SECTOR]],
  },
  {
    name: 'a table longer than the transfer leaves the bus master active',
    table: MEM_BASE,
    entries: [[MEM_BASE + 0x2000, 0x2000, true]],
    lba: 11,
    count: 2,
    bm: BM_ACTIVE | BM_INTR,
    data: [MEM_BASE + 0x2000, 2 * SECTOR],
    untouched: [[MEM_BASE + 0x2000 + 2 * SECTOR, 0x2000 - 2 * SECTOR]],
  },
  {
    name: 'PRD address bit 0 is reserved',
    table: MEM_BASE,
    entries: [[(MEM_BASE + 0x2000) | 1, SECTOR, true]],
    lba: 13,
    count: 1,
    bm: BM_INTR,
    data: [MEM_BASE + 0x2000, SECTOR],
    untouched: [[MEM_BASE + 0x2000 + SECTOR, SECTOR]],
  },
];

interface Outcome {
  bm: number;
  irq: boolean;
  /** Drive status after the transfer (alternate status), or null after a bus-master error. */
  status: number | null;
  memory: Buffer;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** One READ DMA with the scenario's PRD table; the device is reset before and after. */
async function run(dev: Device, mem: BufferMemory, irq: IrqRecorder, s: Scenario): Promise<Outcome> {
  await Promise.resolve(dev.reset());
  await Promise.resolve(dev.read(0, 7, 1));
  await Promise.resolve(dev.write(BMIDE, 2, 1, BM_ERR | BM_INTR));
  mem.bytes.fill(0xee);
  s.entries.forEach(([addr, len, eot], i) => {
    const e = mem.at(s.table + i * 8, 8);
    e.writeUInt32LE(addr >>> 0, 0);
    e.writeUInt32LE(((len & 0xffff) | (eot ? PRD_EOT : 0)) >>> 0, 4);
  });
  await Promise.resolve(dev.write(BMIDE, 4, 4, s.table));
  await Promise.resolve(dev.write(BMIDE, 0, 1, BM_WR));
  await issue(dev, READ_DMA, s.lba, s.count);
  await Promise.resolve(dev.write(BMIDE, 0, 1, BM_WR | BM_START));
  let bm = 0;
  // Bounded only against a wedged device: every scenario ends in INTR or ERR.
  for (const end = Date.now() + 20_000; Date.now() < end; await tick()) {
    bm = await Promise.resolve(dev.read(BMIDE, 2, 1));
    if (bm & (BM_INTR | BM_ERR)) break;
  }
  // A bus-master error leaves each drive as its own error path does (our model aborts the
  // command, QEMU's drive still waits for a DMA that was never started): not compared.
  const status = bm & BM_ERR ? null : await waitNotBusy(dev);
  const outcome = { bm: bm & (BM_ACTIVE | BM_ERR | BM_INTR), irq: irq.level, status, memory: Buffer.from(mem.bytes) };
  await Promise.resolve(dev.write(BMIDE, 0, 1, 0));
  await Promise.resolve(dev.reset());
  return outcome;
}

function checkAgainstDisk(s: Scenario, o: Outcome): void {
  expect(o.bm, 'bus-master status').toBe(s.bm);
  expect(o.irq, 'interrupt').toBe(true);
  if (s.bm & BM_ERR) expect(o.status).toBeNull();
  else expect(o.status, 'drive status').toBe(0x50);
  if (s.data) {
    const [addr, len] = s.data;
    const want = Buffer.concat(Array.from({ length: len / SECTOR }, (_, i) => Buffer.from(patternSector(s.lba + i))));
    expect(o.memory.subarray(addr - MEM_BASE, addr - MEM_BASE + len).equals(want), 'data in the PRD buffers').toBe(true);
  }
  for (const [addr, len] of s.untouched) {
    expect(o.memory.subarray(addr - MEM_BASE, addr - MEM_BASE + len).every((b) => b === 0xee), `untouched at 0x${addr.toString(16)}`).toBe(true);
  }
}

const model: Map<string, Outcome> = new Map();

describe('the PRD walk on our ATA model', () => {
  beforeAll(async () => {
    const blk = new MemoryBackend(SECTORS);
    for (let lba = 0; lba < SECTORS; lba++) await blk.write(lba, patternSector(lba));
    const mem = new BufferMemory(MEM_BASE, MEM_SIZE);
    const irq = new IrqRecorder();
    const dev = new AtaDevice(makeEdges(mem, irq), blk);
    for (const s of SCENARIOS) model.set(s.name, await run(dev, mem, irq, s));
  });

  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', (_name, s) => {
    checkAgainstDisk(s, model.get(s.name)!);
  });
});

const missing = qemuMissingReason();

describe.skipIf(missing !== null)(titled("the same PRD walk on QEMU's IDE (bounce path over qtest)", missing), () => {
  const qemu: Map<string, Outcome> = new Map();
  let dev: QemuIdeDevice | undefined;
  let image: { path: string; dispose: () => void } | undefined;
  beforeAll(async () => {
    image = makeImage(SECTORS, (lba) => patternSector(lba));
    const mem = new BufferMemory(MEM_BASE, MEM_SIZE);
    const irq = new IrqRecorder();
    dev = await QemuIdeDevice.open(makeEdges(mem, irq), { image: image.path });
    for (const s of SCENARIOS) qemu.set(s.name, await run(dev, mem, irq, s));
  }, 50_000);
  afterAll(async () => {
    await dev?.close();
    image?.dispose();
  });

  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s, as on the model', (_name, s) => {
    const q = qemu.get(s.name)!;
    checkAgainstDisk(s, q);
    const m = model.get(s.name);
    if (m) expect({ ...q, memory: q.memory.equals(m.memory) }).toEqual({ ...m, memory: true });
  });
});
