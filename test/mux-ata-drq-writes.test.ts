// Task-file writes a driver makes while the drive is BSY or DRQ are dropped by the drive
// (QEMU's ide_ioport_write; our model too). Through the MUX a guest must see exactly that:
// the register reads back what the drive holds, not what was written, and the next command
// (which a windowed guest's MUX re-sends from its shadow) uses the values the drive kept.
// Compared with the same register sequence on a lone drive of its own.

import { describe, expect, it } from 'vitest';
import type { Access, Reply } from '../src/access.ts';
import type { DevSize } from '../src/device.ts';
import { MemoryBackend } from '../src/backends/memory.ts';
import { AtaDevice, REGION_BMIDE, REGION_CMD, REGION_CTL } from '../src/devices/ata/index.ts';
import ata from '../machines/ata/index.ts';
import roundRobin from '../policies/round-robin.ts';
import { createMux } from '../src/mux/engine.ts';
import type { RegisterSpec } from '../src/mux/define.ts';

const REGION_OF: Record<string, number> = { cmd: REGION_CMD, ctl: REGION_CTL, bmide: REGION_BMIDE };
const SECTORS = 64;
type Io = { write(reg: string, v: number): Promise<void>; read(reg: string): Promise<number>; data(words: number): Promise<Uint8Array> };

const reg = (name: string) => (ata.registers as Record<string, RegisterSpec>)[name];
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** READ SECTORS of LBA 3; in its data phase, writes to LBAL and NSECT and reads them back; the data; the task file after the command. */
async function sequence(io: Io): Promise<{ during: number[]; first: Uint8Array; after: number[] }> {
  const waitDrq = async () => {
    for (let i = 0; i < 1000; i++) {
      if ((await io.read('ALTSTATUS')) & 0x08) return;
      await tick();
    }
    throw new Error('no DRQ');
  };
  await io.write('DEVICE', 0xe0);
  await io.write('NSECT', 1);
  await io.write('LBAL', 3);
  await io.write('LBAM', 0);
  await io.write('LBAH', 0);
  await io.write('CMD', 0x20);
  await waitDrq();
  await io.write('LBAL', 0x77); // dropped: DRQ
  await io.write('NSECT', 0x05); // dropped
  const during = [await io.read('LBAL'), await io.read('NSECT')];
  const first = await io.data(256);
  await io.read('STATUS');
  return { during, first, after: [await io.read('LBAL'), await io.read('NSECT')] };
}

function disk(): MemoryBackend {
  const blk = new MemoryBackend(SECTORS);
  for (let lba = 0; lba < SECTORS; lba++) blk.data.fill(lba, lba * 512, lba * 512 + 512);
  return blk;
}

function lone(): Io {
  const dev = new AtaDevice({ irq: { set() {} }, dma: { read: async () => null, write: async () => false } } as never, disk());
  const r = (name: string) => REGION_OF[reg(name).region];
  return {
    write: async (name, v) => void dev.write(r(name), reg(name).offset, reg(name).width as DevSize, v),
    read: async (name) => Number(dev.read(r(name), reg(name).offset, reg(name).width as DevSize)),
    data: async (words) => dev.readString!(REGION_CMD, 0, 2, words) as Uint8Array,
  };
}

function throughMux(window?: { startLba: number; sectors: number }): { io: Io; unsafe: () => number } {
  const mux = createMux(ata, { deviceId: 'disk0', policy: roundRobin({ quantumNs: 0 }) });
  const blk = disk();
  // A windowed guest at startLba sees sector n of its window at physical startLba + n: fill
  // the physical disk so that the window's sector n holds n, as the lone disk does.
  if (window) for (let n = 0; n < window.sectors; n++) blk.data.fill(n, (window.startLba + n) * 512, (window.startLba + n) * 512 + 512);
  mux.bind(new AtaDevice(mux.edges, blk));
  mux.attach({ id: 'g', weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} }, window ? { window } : {});
  const io = (name: string, acc: Omit<Access, 'space' | 'addr' | 'size'>): Promise<Reply> =>
    Promise.resolve(mux.access('g', REGION_OF[reg(name).region], reg(name).offset, { space: 'pio', addr: 0x1f0 + reg(name).offset, size: reg(name).width as DevSize, ...acc } as Access));
  return {
    io: {
      write: async (name, value) => void (await io(name, { dir: 'write', value })),
      read: async (name) => Number((await io(name, { dir: 'read' })).value),
      data: async (words) => (await io('DATA', { dir: 'read', count: words })).data!,
    },
    unsafe: () => mux.stats().unsafeSwitches,
  };
}

describe('ATA MUX: task-file writes while the drive is BSY or DRQ', () => {
  it('a lone drive drops them (the reference)', async () => {
    const r = await sequence(lone());
    // Neither write took: the drive shows its own progress (the sector is in its buffer: next
    // LBA 4, count run down to 0), as QEMU's ide_sector_read leaves them.
    expect(r.during).toEqual([4, 0]);
    expect(r.first.every((b) => b === 3)).toBe(true);
  });

  for (const [mode, window] of [
    ['shared mode', undefined],
    ['a partition window', { startLba: 20, sectors: 30 }],
  ] as const)
    it(`through the MUX in ${mode} the guest sees what a lone drive shows`, async () => {
      const ref = await sequence(lone());
      const m = throughMux(window);
      const got = await sequence(m.io);
      expect(got.first.every((b) => b === 3)).toBe(true);
      if (!window) {
        expect(got.during).toEqual(ref.during);
        expect(got.after).toEqual(ref.after);
      } else {
        // A windowed guest reads its task file from the MUX's shadow (the drive holds physical
        // LBAs): what it wrote before the command, never the writes the drive dropped.
        expect(got.during).toEqual([3, 1]);
      }
      expect(m.unsafe()).toBe(0);
    });
});
