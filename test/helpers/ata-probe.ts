// Observes, on a real device (our ATA model or QEMU's IDE over qtest), which protocol a command
// runs: issue it with a task file that makes a supported command succeed, then look at what the
// drive does. An error with ABRT is "aborted"; no DRQ is "non-data"; DRQ with the interrupt
// raised is "pio-in" (a data-in block is announced by INTRQ, ATA8-ACS); DRQ without it is a PIO
// data-out waiting for its first block (it takes a block written to the data port) or a DMA
// command waiting for the bus master: then the bus master is started, and the memory tells the
// direction.

import type { DevSize, Device } from '../../src/device.ts';
import type { BufferMemory, IrqRecorder } from './qemu.ts';

export type Observed = 'aborted' | 'non-data' | 'pio-in' | 'pio-out' | 'dma-in' | 'dma-out' | `error ${string}`;

const CMD = 0;
const CTL = 1;
const BMIDE = 2;
const BSY = 0x80;
const DRQ = 0x08;
const ERR = 0x01;
const ABRT = 0x04;
const BM_START = 0x01;
const BM_WR = 0x08;
const BM_ACTIVE = 0x01;
const BM_ERR = 0x02;
const BM_INTR = 0x04;
const PRD_EOT = 0x8000_0000;

export interface ProbeRig {
  dev: Device;
  mem: BufferMemory;
  irq: IrqRecorder;
  /** Where the PRD table and the one-sector buffer go (inside `mem`). */
  prdAt: number;
  bufAt: number;
}

/** Task file (FEATURE, NSECT, LBAL, LBAM, LBAH) that lets a supported command succeed. */
function taskfileFor(op: number): number[] {
  switch (op) {
    case 0x06:
      return [0x01, 1, 0, 0, 0]; // DATA SET MANAGEMENT: TRIM, one block of (empty) ranges
    case 0xef:
      return [0x02, 0, 0, 0, 0]; // SET FEATURES: enable the write cache
    case 0xb0:
      return [0xd8, 0, 0, 0x4f, 0xc2]; // SMART ENABLE OPERATIONS, with SMART's signature
    default:
      return [0, 1, 1, 0, 0]; // one sector at LBA 1 (SET MULTIPLE: 1; INITIALIZE: 1 sector per track)
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const rd = (dev: Device, region: number, off: number, size: DevSize = 1) => Promise.resolve(dev.read(region, off, size));
const wr = (dev: Device, region: number, off: number, v: number, size: DevSize = 1) => Promise.resolve(dev.write(region, off, size, v));

async function notBusy(dev: Device): Promise<number> {
  for (let i = 0; i < 5000; i++) {
    const s = await rd(dev, CTL, 0);
    if (!(s & BSY)) return s;
    await tick();
  }
  throw new Error('drive stayed busy');
}

/** Memory pattern for `op`'s buffer: zeros for DATA SET MANAGEMENT (no ranges), else op-specific. */
function pattern(op: number): Uint8Array {
  const b = new Uint8Array(512);
  if (op !== 0x06) for (let i = 0; i < b.length; i++) b[i] = (op * 7 + i * 13 + 1) & 0xff || 0x5a;
  return b;
}

/** Reset the device, issue `op`, and say what the drive did. */
export async function probeCommand(r: ProbeRig, op: number): Promise<Observed> {
  const { dev, mem } = r;
  await Promise.resolve(dev.reset());
  await rd(dev, CMD, 7); // acknowledge whatever the reset left
  const buf = pattern(op);
  mem.at(r.bufAt, 512).set(buf);
  const prd = mem.at(r.prdAt, 8);
  prd.writeUInt32LE(r.bufAt, 0);
  prd.writeUInt32LE((512 | PRD_EOT) >>> 0, 4);
  await wr(dev, BMIDE, 0, 0);
  await wr(dev, BMIDE, 2, BM_ERR | BM_INTR);
  await wr(dev, BMIDE, 4, r.prdAt, 4);
  const tf = taskfileFor(op);
  for (let i = 0; i < 5; i++) {
    await wr(dev, CMD, 1 + i, 0); // the previous (HOB) byte of a 48-bit command
    await wr(dev, CMD, 1 + i, tf[i]);
  }
  await wr(dev, CMD, 6, 0xe0); // LBA, device 0
  await wr(dev, CMD, 7, op);
  const st = await notBusy(dev);
  if (st & ERR) {
    const err = await rd(dev, CMD, 1);
    return err & ABRT ? 'aborted' : `error status 0x${st.toString(16)} error 0x${err.toString(16)}`;
  }
  if (!(st & DRQ)) return 'non-data';
  if (r.irq.level) return 'pio-in';
  // A PIO data-out drive takes a block on the data port; one waiting for DMA ignores it (QEMU's
  // ide_data_writew after a reset, our model's dataWriteWithoutDrq): no timing is involved.
  await Promise.resolve(dev.writeString!(CMD, 0, 2, pattern(op ^ 0xff)));
  if (!((await notBusy(dev)) & DRQ)) return 'pio-out';
  await wr(dev, BMIDE, 0, BM_START | BM_WR);
  let bm = 0;
  // Bounded only against a wedged device: a DMA command always ends (INTR, or ERR).
  for (const end = Date.now() + 20_000; Date.now() < end; await tick()) {
    bm = await rd(dev, BMIDE, 2);
    if (bm & (BM_INTR | BM_ERR) || !(bm & BM_ACTIVE)) break;
  }
  await wr(dev, BMIDE, 0, 0);
  if (bm & BM_ERR || !(bm & BM_INTR)) return `error bus master 0x${bm.toString(16)}`;
  await notBusy(dev);
  return Buffer.from(mem.at(r.bufAt, 512)).equals(Buffer.from(buf)) ? 'dma-out' : 'dma-in';
}
