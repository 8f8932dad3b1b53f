// A small simulated block device for the property suite (check-policy) and the engine's tests:
// the smallest protocol that has everything a MUX must get right — context registers
// (ADDR, KEY, IEN, DMA_ADDR), a multi-access transfer through a data port (unsafe to switch
// mid-way), an IRQ, bus-master DMA and an error path. Pure class with injected edges.
//
// Protocol: write ADDR (block), KEY (xor applied to data), then CMD. READ: STATUS shows BUSY
// for two polls, then DRQ; read 8 DATA bytes; STATUS then shows neither BUSY nor DRQ.
// WRITE: one BUSY poll, DRQ, write 8 DATA bytes, one BUSY poll (commit), done. DMA_READ /
// DMA_WRITE move a block to/from bus address DMA_ADDR; BUSY until the DMA ends. A block
// number >= capacity fails at once (ERR, no busy phase, no IRQ); a refused DMA ends with ERR. The IRQ (if IEN bit 0)
// rises when a command finishes its busy phase; reading STATUS lowers it.

import type { DevSize, Device, DeviceDescription, DeviceEdges, DeviceMetrics } from '../device.ts';

export const SIM_BLOCK = 8; // bytes per block

export const SIM_DATA = 0; // data port: 8 bytes per block transfer
export const SIM_ADDR = 1; // block number of the next command
export const SIM_KEY = 2; // xor key applied to data between block and host
export const SIM_CMD = 3; // command (write)
export const SIM_STATUS = 4; // status (read); reading it lowers the IRQ
export const SIM_IEN = 5; // interrupt enable, bit 0
export const SIM_DMA_ADDR = 8; // 32-bit bus address for DMA commands

export const SIM_CMD_READ = 1;
export const SIM_CMD_WRITE = 2;
export const SIM_CMD_RESET = 3; // abort whatever runs; registers keep their values
export const SIM_CMD_DMA_READ = 4; // block -> memory
export const SIM_CMD_DMA_WRITE = 5; // memory -> block

export const SIM_SR_BUSY = 0x80;
export const SIM_SR_DRQ = 0x08;
export const SIM_SR_ERR = 0x01;

type Phase = 'idle' | 'busy-read' | 'reading' | 'busy-write' | 'writing' | 'committing' | 'dma';

export interface SimState {
  blocks: number[][];
  addr: number;
  key: number;
  ien: number;
  dmaAddr: number;
  phase: Phase;
  polls: number;
  pos: number;
  err: boolean;
  irq: boolean;
  buffer: number[];
}

export class SimDevice implements Device {
  private s: SimState;
  private readonly m: DeviceMetrics = { badRegister: 0, badWidth: 0, cmdWhileBusy: 0, dataOutsideDrq: 0, dmaRefused: 0 };
  /** Bumped by reset so a DMA that completes after a reset is ignored. */
  private generation = 0;
  private irqLevel = false;

  constructor(
    private readonly edges: DeviceEdges,
    readonly capacity: number,
  ) {
    this.s = SimDevice.powerOn(capacity);
  }

  private static powerOn(capacity: number): SimState {
    return {
      blocks: Array.from({ length: capacity }, () => new Array(SIM_BLOCK).fill(0)),
      addr: 0,
      key: 0,
      ien: 0,
      dmaAddr: 0,
      phase: 'idle',
      polls: 0,
      pos: 0,
      err: false,
      irq: false,
      buffer: new Array(SIM_BLOCK).fill(0),
    };
  }

  describe(): DeviceDescription {
    return {
      kind: 'sim',
      regions: [{ name: 'regs', space: 'pio', size: 16, legacyBase: 0x340 }],
      irq: 5,
      properties: [{ name: 'capacity', value: this.capacity, help: 'number of 8-byte blocks' }],
    };
  }

  /** True when no command runs: what safety means for this device (the independent oracle of the property suite). */
  idle(): boolean {
    return this.s.phase === 'idle';
  }

  read(region: number, offset: number, size: DevSize): number {
    if (region !== 0) return this.bad('badRegister', size);
    if (offset === SIM_DMA_ADDR) return size === 4 ? this.s.dmaAddr : this.bad('badWidth', size);
    if (size !== 1) return this.bad('badWidth', size);
    const s = this.s;
    switch (offset) {
      case SIM_DATA:
        if (s.phase !== 'reading') {
          this.m.dataOutsideDrq++;
          return 0xff;
        }
        return this.readData();
      case SIM_ADDR:
        return s.addr;
      case SIM_KEY:
        return s.key;
      case SIM_IEN:
        return s.ien;
      case SIM_STATUS:
        return this.readStatus();
      default:
        return this.bad('badRegister', size);
    }
  }

  write(region: number, offset: number, size: DevSize, value: number): void {
    if (region !== 0) return void this.bad('badRegister', size);
    if (offset === SIM_DMA_ADDR) {
      if (size === 4) this.s.dmaAddr = value >>> 0;
      else this.m.badWidth++;
      return;
    }
    if (size !== 1) return void this.m.badWidth++;
    const s = this.s;
    switch (offset) {
      case SIM_DATA:
        if (s.phase !== 'writing') return void this.m.dataOutsideDrq++;
        s.buffer[s.pos++] = value & 0xff;
        if (s.pos === SIM_BLOCK) {
          s.phase = 'committing';
          s.polls = 1;
        }
        return;
      case SIM_ADDR:
        s.addr = value & 0xff;
        return;
      case SIM_KEY:
        s.key = value & 0xff;
        return;
      case SIM_IEN:
        s.ien = value & 0x01;
        this.updateIrq();
        return;
      case SIM_CMD:
        return this.command(value & 0xff);
      default:
        this.m.badRegister++;
    }
  }

  readString(region: number, offset: number, size: DevSize, count: number): Uint8Array {
    const out = new Uint8Array(count * size);
    for (let i = 0; i < count; i++) {
      const v = this.read(region, offset, size);
      for (let b = 0; b < size; b++) out[i * size + b] = (v >>> (8 * b)) & 0xff;
    }
    return out;
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): void {
    for (let i = 0; i + size <= data.length; i += size) {
      let v = 0;
      for (let b = size - 1; b >= 0; b--) v = v * 256 + data[i + b];
      this.write(region, offset, size, v);
    }
  }

  reset(): void {
    const blocks = this.s.blocks;
    this.generation++;
    this.s = { ...SimDevice.powerOn(0), blocks };
    this.updateIrq();
  }

  metrics(): DeviceMetrics {
    return { ...this.m };
  }

  /** Block contents (for tests). */
  block(n: number): number[] {
    return [...this.s.blocks[n]];
  }

  private command(cmd: number): void {
    const s = this.s;
    if (cmd === SIM_CMD_RESET) {
      this.generation++;
      s.phase = 'idle';
      s.pos = 0;
      s.polls = 0;
      s.err = false;
      s.irq = false;
      this.updateIrq();
      return;
    }
    if (s.phase !== 'idle') return void this.m.cmdWhileBusy++;
    s.err = false;
    s.irq = false;
    s.pos = 0;
    if (s.addr >= this.capacity && cmd !== SIM_CMD_RESET) {
      // A block outside the device fails at once: ERR, no busy phase, no IRQ.
      s.err = true;
      this.updateIrq();
      return;
    }
    switch (cmd) {
      case SIM_CMD_READ:
        s.phase = 'busy-read';
        s.polls = 2;
        s.buffer = s.blocks[s.addr].map((b) => b ^ s.key);
        break;
      case SIM_CMD_WRITE:
        s.phase = 'busy-write';
        s.polls = 1;
        break;
      case SIM_CMD_DMA_READ:
      case SIM_CMD_DMA_WRITE:
        s.phase = 'dma';
        this.startDma(cmd);
        break;
      default:
        this.m.badRegister++;
    }
    this.updateIrq();
  }

  private startDma(cmd: number): void {
    const s = this.s;
    const gen = this.generation;
    const addr = s.addr;
    const key = s.key;
    const done = (ok: boolean) => {
      if (gen !== this.generation || this.s.phase !== 'dma') return; // reset meanwhile
      if (!ok) {
        this.m.dmaRefused++;
        this.s.err = true;
      }
      this.s.phase = 'idle';
      this.s.irq = true;
      this.updateIrq();
    };
    if (cmd === SIM_CMD_DMA_READ) {
      const data = Uint8Array.from(s.blocks[addr], (b) => b ^ key);
      this.edges.dma.write(s.dmaAddr, data).then(done, () => done(false));
    } else {
      this.edges.dma.read(s.dmaAddr, SIM_BLOCK).then(
        (data) => {
          if (data && gen === this.generation) this.s.blocks[addr] = Array.from(data, (b) => b ^ key);
          done(data !== null);
        },
        () => done(false),
      );
    }
  }

  private readStatus(): number {
    const s = this.s;
    const busy = s.phase === 'busy-read' || s.phase === 'busy-write' || s.phase === 'committing' || s.phase === 'dma';
    const drq = s.phase === 'reading' || s.phase === 'writing';
    const value = (busy ? SIM_SR_BUSY : 0) | (drq ? SIM_SR_DRQ : 0) | (s.err ? SIM_SR_ERR : 0);
    s.irq = false;
    if (s.phase !== 'dma' && busy && --s.polls <= 0) {
      // The busy phase ends after this poll: data is ready, or the command is over.
      if (s.phase === 'busy-read') s.phase = 'reading';
      else if (s.phase === 'busy-write') s.phase = 'writing';
      else {
        s.blocks[s.addr] = s.buffer.map((b) => b ^ s.key);
        s.phase = 'idle';
      }
      s.irq = true;
    }
    this.updateIrq();
    return value;
  }

  private readData(): number {
    const s = this.s;
    const v = s.buffer[s.pos++];
    if (s.pos === SIM_BLOCK) s.phase = 'idle';
    return v;
  }

  /** The IRQ level is a function of the registers, recomputed in one place. */
  private updateIrq(): void {
    const level = this.s.irq && (this.s.ien & 1) === 1;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.edges.irq.set(level);
  }

  private bad(metric: string, size: DevSize): number {
    this.m[metric]++;
    return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
  }
}
