// A pending ATA interrupt belongs to the guest whose command raised it. A PIO data-in command
// ends (safe, DATA_END) with its last block's INTRQ still pending until the driver reads
// STATUS; if it loses the device before that read, the next owner gets the device with the
// line up. That owner must never get this interrupt, not even when it is switched out and
// back in before its own command (the engine re-raises a pending IRQ on a regrant): a driver
// sleeping in HLT for its DMA completion would wake early, stop the bus master and abort its
// transfer (kvm-mux: "RESULT fail phase=read status=0x58"). Scripted guests on the real ATA
// model, register by register, the interleaving forced by a quantum of 0.

import { describe, expect, it } from 'vitest';
import type { Access, Reply } from '../src/access.ts';
import type { DevSize } from '../src/device.ts';
import { MemoryBackend } from '../src/backends/memory.ts';
import { AtaDevice, REGION_BMIDE, REGION_CMD, REGION_CTL } from '../src/devices/ata/index.ts';
import { ATA_DMA_INTR, ATA_DRQ } from '../src/devices/ata/regs.ts';
import ata from '../machines/ata/index.ts';
import roundRobin from '../policies/round-robin.ts';
import { createMux } from '../src/mux/engine.ts';
import type { RegisterSpec } from '../src/mux/define.ts';
import { GuestRam } from './helpers/ata-driver.ts';

const REGION_OF: Record<string, number> = { cmd: REGION_CMD, ctl: REGION_CTL, bmide: REGION_BMIDE };
const RAM = 0x10_0000;
const PRD = RAM;
const BUF = RAM + 0x1000;

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function rig() {
  const mux = createMux(ata, { deviceId: 'disk0', policy: roundRobin({ quantumNs: 0 }) });
  const blk = new MemoryBackend(64);
  const dev = new AtaDevice(mux.edges, blk);
  mux.bind(dev);
  const irqs: Record<string, boolean[]> = { P: [], D: [] };
  const ram: Record<string, GuestRam> = {};
  for (const id of ['P', 'D']) {
    ram[id] = new GuestRam(RAM, 0x10000);
    mux.attach({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: ram[id], setIrq: (_n, level) => irqs[id].push(level) });
  }
  const io = (id: string, reg: string, acc: Omit<Access, 'space' | 'addr' | 'size'>): Promise<Reply> => {
    const r = (ata.registers as Record<string, RegisterSpec>)[reg];
    return Promise.resolve(mux.access(id, REGION_OF[r.region], r.offset, { space: 'pio', addr: 0x1f0 + r.offset, size: r.width as DevSize, ...acc } as Access));
  };
  const write = async (id: string, reg: string, value: number) => expect((await io(id, reg, { dir: 'write', value })).error).toBeUndefined();
  const read = async (id: string, reg: string) => Number((await io(id, reg, { dir: 'read' })).value);
  /** Waits until the model's own alternate status (peeked, not through the MUX) satisfies pred. */
  const until = async (pred: () => boolean, what: string) => {
    for (let i = 0; i < 10_000 && !pred(); i++) await tick();
    expect(pred(), what).toBe(true);
  };
  const taskfile = async (id: string, lba: number) => {
    await write(id, 'DEVICE', 0xe0);
    await write(id, 'NSECT', 1);
    await write(id, 'LBAL', lba);
    await write(id, 'LBAM', 0);
    await write(id, 'LBAH', 0);
  };
  return { mux, blk, dev, irqs, ram, io, write, read, until, taskfile };
}

describe('ATA MUX: a pending interrupt reaches only the guest whose command raised it', () => {
  it('a DMA guest switched out and back in before its command never sees the PIO guest\'s pending IRQ', async () => {
    const x = rig();
    const sector = new Uint8Array(512).map((_, i) => (i * 7 + 3) & 0xff);
    await x.blk.write(5, sector);

    // P: READ SECTORS of one sector, data read through, STATUS never read: INTRQ stays up.
    await x.taskfile('P', 0);
    await x.write('P', 'CMD', 0x20);
    await x.until(() => (x.dev.read(REGION_CTL, 0, 1) & ATA_DRQ) !== 0, 'P: DRQ');
    await x.read('P', 'ALTSTATUS');
    expect((await x.io('P', 'DATA', { dir: 'read', count: 256 })).error).toBeUndefined();
    expect(x.mux.stats().state).toBe('idle');
    expect(x.irqs.P.at(-1)).toBe(true); // P's own interrupt, pending

    // D takes the device in the safe state and prepares a DMA read (bus master, status cleared).
    await x.read('D', 'ALTSTATUS');
    expect(x.mux.ownerId()).toBe('D');
    x.ram.D.putPrd(PRD, [[BUF, 512, true]]);
    await x.write('D', 'BM_PRD', PRD);
    await x.write('D', 'BM_CMD', 0x08);
    await x.write('D', 'BM_STATUS', 0x06);

    // P gets the device back (its pending IRQ re-raised to it) and is switched out again before
    // reading STATUS; then D gets it back, the device line still up with P's interrupt.
    await x.read('P', 'ALTSTATUS');
    expect(x.mux.ownerId()).toBe('P');
    await x.taskfile('D', 5);
    expect(x.mux.ownerId()).toBe('D');
    expect(x.irqs.D, 'D saw an interrupt before it issued any command').toEqual([]);

    // D's READ DMA: its completion is the first interrupt D sees, and the data arrived.
    await x.write('D', 'CMD', 0xc8);
    await x.write('D', 'BM_CMD', 0x09);
    await x.until(() => (x.dev.read(REGION_BMIDE, 2, 1) & ATA_DMA_INTR) !== 0, 'D: bus-master interrupt');
    expect(x.irqs.D).toEqual([true]);
    await x.write('D', 'BM_CMD', 0x08);
    expect(await x.read('D', 'STATUS')).toBe(0x50);
    expect(x.ram.D.mem.slice(BUF - RAM, BUF - RAM + 512)).toEqual(sector);
    expect(x.mux.stats().unsafeSwitches).toBe(0);
  });
});
