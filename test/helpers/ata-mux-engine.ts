// One guest on the real ATA model (memory backend) through the MUX engine with machines/ata,
// driven register by register by name. Waiting for the device peeks at its alternate status
// directly (not through the MUX), so a wait produces no statechart event: only the access a
// test makes does.

import type { Access, Reply } from '../../src/access.ts';
import type { DevSize } from '../../src/device.ts';
import type { GuestLink } from '../../src/guest-link.ts';
import { MemoryBackend } from '../../src/backends/memory.ts';
import { AtaDevice, REGION_BMIDE, REGION_CMD, REGION_CTL } from '../../src/devices/ata/index.ts';
import ata from '../../machines/ata/index.ts';
import roundRobin from '../../policies/round-robin.ts';
import { createMux, type MuxEngine, type MuxStats } from '../../src/mux/engine.ts';
import type { RegisterSpec } from '../../src/mux/define.ts';
import { GuestRam } from './ata-driver.ts';

const REGION_OF: Record<string, number> = { cmd: REGION_CMD, ctl: REGION_CTL, bmide: REGION_BMIDE };
const RAM_BASE = 0x10_0000;
const BUF = RAM_BASE + 0x1000;

export interface AtaMuxRig {
  mux: MuxEngine;
  dev: AtaDevice;
  blk: LatchedBackend;
  ram: GuestRam;
  /** Sector count the next command recipe uses (default 1). */
  count: number;
  sectors: number;
  /** Dotted statechart state of the engine. */
  state(): string;
  stats(): MuxStats;
  write(reg: string, value: number): Promise<void>;
  read(reg: string): Promise<number>;
  /** LBA28 task file for `count` sectors at `lba` (device register first, as libata does). */
  taskfile(lba: number, count: number): Promise<void>;
  /** Wait (peeking at the model) until the alternate status satisfies `pred`, then read STATUS through the MUX. */
  readStatusWhen(pred: (s: number) => boolean): Promise<void>;
  readAltWhen(pred: (s: number) => boolean): Promise<void>;
  readData(words: number): Promise<Uint8Array>;
  writeData(bytes: Uint8Array): Promise<void>;
  /** One-entry PRD table (512 bytes, read to memory), direction and status set as libata does. */
  setupPrd(): Promise<void>;
  /** Wait (peeking at the model) until the bus master stopped or raised its interrupt. */
  waitBmDone(): Promise<void>;
  close(): Promise<void>;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The in-memory disk with a latch: while held, every backend operation waits, so the device
 * stays BSY for as long as the test wants (the only way to see BSY deterministically).
 */
export class LatchedBackend extends MemoryBackend {
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  hold(): void {
    this.gate ??= new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = this.open = null;
  }
  override async read(lba: number, count: number): Promise<Uint8Array> {
    await this.gate;
    return super.read(lba, count);
  }
  override async write(lba: number, data: Uint8Array, fua = false): Promise<void> {
    await this.gate;
    return super.write(lba, data, fua);
  }
  override async flush(): Promise<void> {
    await this.gate;
    return super.flush();
  }
}

export async function openAtaMux(sectors = 2048): Promise<AtaMuxRig> {
  const mux = createMux(ata, { deviceId: 'disk0', policy: roundRobin({ quantumNs: 0 }) });
  const blk = new LatchedBackend(sectors);
  const dev = new AtaDevice(mux.edges, blk);
  mux.bind(dev);
  const ram = new GuestRam(RAM_BASE, 0x10000);
  const link: GuestLink = { id: 'g0', weight: 1, priority: 0, deadlineNs: Infinity, memory: ram, setIrq: () => {} };
  mux.attach(link);

  const regOf = (name: string) => {
    const r = (ata.registers as Record<string, RegisterSpec>)[name];
    if (!r) throw new Error(`ata-mux rig: no register ${name}`);
    return { region: REGION_OF[r.region], offset: r.offset, size: r.width as DevSize };
  };
  const io = (name: string, acc: Omit<Access, 'space' | 'addr' | 'size'>): Promise<Reply> => {
    const r = regOf(name);
    return Promise.resolve(mux.access('g0', r.region, r.offset, { space: 'pio', addr: 0x1f0 + r.offset, size: r.size, ...acc } as Access));
  };
  const expectOk = (rep: Reply, what: string): Reply => {
    if (rep.error) throw new Error(`ata-mux rig: ${what} refused: ${rep.error}`);
    return rep;
  };
  const write = async (name: string, value: number) => void expectOk(await io(name, { dir: 'write', value }), `write ${name}`);
  const read = async (name: string) => Number(expectOk(await io(name, { dir: 'read' }), `read ${name}`).value);
  const peek = async (pred: (s: number) => boolean, what: string) => {
    for (let i = 0; i < 10_000; i++) {
      if (pred(dev.read(REGION_CTL, 0, 1))) return;
      await tick();
    }
    throw new Error(`ata-mux rig: ${what}: device status 0x${dev.read(REGION_CTL, 0, 1).toString(16)} never matched`);
  };

  return {
    mux,
    dev,
    blk,
    ram,
    sectors,
    count: 1,
    state: () => mux.stats().state,
    stats: () => mux.stats(),
    write,
    read,
    async taskfile(lba, count) {
      await write('DEVICE', 0xe0 | ((lba >> 24) & 0x0f));
      await write('FEATURE', 0);
      await write('NSECT', count & 0xff);
      await write('LBAL', lba & 0xff);
      await write('LBAM', (lba >> 8) & 0xff);
      await write('LBAH', (lba >> 16) & 0xff);
    },
    async readStatusWhen(pred) {
      await peek(pred, 'status wait');
      await read('STATUS');
    },
    async readAltWhen(pred) {
      await peek(pred, 'alternate status wait');
      await read('ALTSTATUS');
    },
    async readData(words) {
      const rep = expectOk(await io('DATA', { dir: 'read', count: words }), 'data read');
      return rep.data ?? new Uint8Array(0);
    },
    async writeData(bytes) {
      expectOk(await io('DATA', { dir: 'write', value: 0, count: bytes.length >> 1, data: bytes }), 'data write');
    },
    async setupPrd() {
      ram.putPrd(RAM_BASE, [[BUF, 512, true]]);
      await write('BM_PRD', RAM_BASE);
      await write('BM_CMD', 0x08);
      await write('BM_STATUS', 0x06);
    },
    async waitBmDone() {
      for (let i = 0; i < 10_000; i++) {
        const s = dev.read(REGION_BMIDE, 2, 1);
        if (s & 0x04 || !(s & 0x01)) return;
        await tick();
      }
      throw new Error('ata-mux rig: bus master never finished');
    },
    async close() {
      blk.release();
      await mux.close();
      await blk.close();
    },
  };
}
