// ATA disk on the primary channel of a PIIX3 IDE function: legacy ports 0x1F0-0x1F7 and
// 0x3F6, IRQ 14, bus-master registers at BAR4. One drive (device 0). Pure model: backend
// I/O and DMA go through the injected BlockBackend and edges; the IRQ level is recomputed
// in updateIrq() only. Facts checked against QEMU hw/ide/core.c, hw/ide/piix.c and Linux
// libata-sff.c.

import { SECTOR, type BlockBackend } from '../../backends/block.ts';
import type { Device, DeviceDescription, DeviceEdges, DeviceMetrics, DevSize } from '../../device.ts';
import { BusMasterRegs, walkPrdTable, type BusMasterState, type PrdSegment } from './bmdma.ts';
import { RW_COMMANDS, validXferMode, type RwCommand } from './commands.ts';
import { buildIdentify, defaultGeometry, LBA28_LIMIT, MAX_MULT_SECTORS, type Geometry } from './identify.ts';
import * as R from './regs.ts';
import { TaskFile, type TaskFileState } from './taskfile.ts';

export const REGION_CMD = 0;
export const REGION_CTL = 1;
export const REGION_BMIDE = 2;

export interface AtaOptions {
  model?: string;
  serial?: string;
  firmware?: string;
  /** Volatile write cache at power-on (SET FEATURES 02h/82h changes it). Default true. */
  writeCache?: boolean;
}

/** Sectors moved per backend call during DMA (64 KiB). */
const DMA_CHUNK_SECTORS = 128;

/** Thrown inside an async step when a reset made the step stale. */
const STALE = Symbol('stale');

interface PioTransfer {
  dir: 'in' | 'out';
  lba: number; // first sector of the current block
  remaining: number; // sectors left, current block included
  blockSectors: number;
  cmd: RwCommand;
}

interface DmaCommand {
  toMemory: boolean;
  lba: number;
  count: number;
  cmd: RwCommand;
  running: boolean;
}

export interface AtaState {
  tf: TaskFileState;
  status: number;
  error: number;
  devctl: number;
  pending: boolean;
  multSectors: number;
  writeCache: boolean;
  lookAhead: boolean;
  xferMode: number | null;
  current: Geometry;
  bm: BusMasterState[];
}

export class AtaDevice implements Device {
  private readonly tf = new TaskFile();
  private status = R.ATA_DRDY | R.ATA_DSC;
  private error = R.ATA_AMNF; // 01h: diagnostic passed
  private devctl = 0;
  private pending = false; // INTRQ asserted by the drive
  private irqLevel = false;
  private multSectors = 0;
  private writeCache: boolean;
  private lookAhead = true;
  private xferMode: number | null = null;
  private readonly geometry: Geometry;
  private current: Geometry;
  private readonly bm = [new BusMasterRegs(), new BusMasterRegs()]; // primary, secondary (empty)
  // Data phase (DRQ): the buffer the data port reads or fills.
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private phase: 'in' | 'out' | null = null;
  private pio: PioTransfer | null = null;
  private dmaCmd: DmaCommand | null = null;
  // Async bookkeeping: a reset bumps `gen` so late completions are dropped.
  private gen = 0;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly counters: Record<string, number> = {};
  /** The last host-side failure (backend or DMA), for logs; the guest sees ATA error bits. */
  lastHostError: Error | null = null;
  private readonly model: string;
  private readonly serial: string;
  private readonly firmware: string;
  private readonly initialWriteCache: boolean;

  constructor(
    private readonly edges: DeviceEdges,
    private readonly blk: BlockBackend,
    options: AtaOptions = {},
  ) {
    this.model = options.model ?? 'MUXVISOR HARDDISK';
    this.serial = options.serial ?? 'MV0001';
    this.firmware = options.firmware ?? '0.1';
    this.initialWriteCache = options.writeCache ?? true;
    this.writeCache = this.initialWriteCache;
    this.geometry = defaultGeometry(blk.sectors);
    this.current = { ...this.geometry };
    this.tf.setSignature();
  }

  describe(): DeviceDescription {
    return {
      kind: 'ata',
      regions: [
        { name: 'cmd', space: 'pio', size: 8, legacyBase: 0x1f0 },
        { name: 'ctl', space: 'pio', size: 1, legacyBase: 0x3f6 },
        { name: 'bmide', space: 'pio', size: 16, bar: 4 },
      ],
      irq: 14,
      // PIIX3 IDE: prog-if 80h = bus master, both channels in legacy mode; QEMU's piix.c
      // sets no interrupt pin (legacy IDE uses ISA IRQ 14/15).
      pci: { vendor: 0x8086, device: 0x7010, revision: 0, classCode: 0x010180, interruptPin: 0 },
      properties: [
        { name: 'model', value: this.model, help: 'IDENTIFY model string (words 27-46)' },
        { name: 'serial', value: this.serial, help: 'IDENTIFY serial number (words 10-19)' },
        { name: 'firmware', value: this.firmware, help: 'IDENTIFY firmware revision (words 23-26)' },
        { name: 'sectors', value: this.blk.sectors, help: 'capacity in 512-byte sectors' },
        { name: 'backend', value: this.blk.name, help: 'host resource behind the disk' },
        { name: 'readOnly', value: this.blk.readOnly, help: 'writes abort with ABRT' },
        { name: 'writeCache', value: this.writeCache, help: 'volatile write cache; off = every write is FUA' },
      ],
    };
  }

  metrics(): DeviceMetrics {
    return { ...this.counters };
  }

  /** Resolves when no backend or DMA operation is in flight (tests, MUX safe-state checks). */
  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get busy(): boolean {
    return (this.status & (R.ATA_BUSY | R.ATA_DRQ)) !== 0 || this.inflight > 0;
  }

  // ---- register access ------------------------------------------------------------------

  read(region: number, offset: number, size: DevSize): number {
    let v: number;
    if (region === REGION_CMD && offset === R.ATA_REG_DATA) v = this.readDataPort(size);
    else if (region === REGION_BMIDE && offset >= 0 && offset + size <= 16) v = this.bm[offset >> 3].read(offset & 7, size);
    else if (size !== 1) v = this.mistake('badWidth', 0xffff_ffff >>> (32 - 8 * size));
    else if (region === REGION_CMD) v = this.readCmdReg(offset);
    else if (region === REGION_CTL && offset === R.ATA_REG_ALTSTATUS) v = this.tf.dev1 ? 0 : this.status;
    else v = this.mistake('unknownRegister', 0xff);
    this.updateIrq();
    return v;
  }

  write(region: number, offset: number, size: DevSize, value: number): void {
    if (region === REGION_CMD && offset === R.ATA_REG_DATA) this.writeDataPort(size, value);
    else if (region === REGION_BMIDE && offset >= 0 && offset + size <= 16) this.writeBmide(offset, size, value);
    else if (size !== 1) this.mistake('badWidth', 0);
    else if (region === REGION_CMD) this.writeCmdReg(offset, value & 0xff);
    else if (region === REGION_CTL && offset === R.ATA_REG_DEVCTL) this.writeDevctl(value & 0xff);
    else this.mistake('unknownRegister', 0);
    this.updateIrq();
  }

  readString(region: number, offset: number, size: DevSize, count: number): Uint8Array {
    if (region !== REGION_CMD || offset !== R.ATA_REG_DATA || size === 1) {
      const out = new Uint8Array(count * size);
      const view = new DataView(out.buffer);
      for (let i = 0; i < count; i++) {
        const v = this.read(region, offset, size);
        if (size === 1) out[i] = v;
        else if (size === 2) view.setUint16(i * 2, v, true);
        else view.setUint32(i * 4, v, true);
      }
      return out;
    }
    const out = this.readData(count * size);
    this.updateIrq();
    return out;
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): void {
    if (region !== REGION_CMD || offset !== R.ATA_REG_DATA || size === 1) {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i + size <= data.length; i += size) {
        const v = size === 1 ? data[i] : size === 2 ? view.getUint16(i, true) : view.getUint32(i, true);
        this.write(region, offset, size, v);
      }
      return;
    }
    this.writeData(data);
    this.updateIrq();
  }

  private readCmdReg(reg: number): number {
    const hob = (this.devctl & R.ATA_HOB) !== 0;
    if (reg === R.ATA_REG_STATUS) {
      this.pending = false; // reading status acknowledges the interrupt
      return this.tf.dev1 ? 0 : this.status; // no device 1: its status floats to 0
    }
    if (reg === R.ATA_REG_ERR) return hob ? this.tf.hobFeature : this.error;
    return this.tf.read(reg, hob);
  }

  private writeCmdReg(reg: number, v: number): void {
    if (reg === R.ATA_REG_CMD) {
      this.command(v);
      return;
    }
    if (this.status & R.ATA_BUSY) {
      this.mistake('taskfileWriteWhileBusy', 0);
      return;
    }
    this.tf.write(reg, v);
    this.devctl &= ~R.ATA_HOB; // a taskfile write clears HOB (ATA-8 7.1)
  }

  private writeDevctl(v: number): void {
    const prev = this.devctl;
    this.devctl = v;
    if (!(prev & R.ATA_SRST) && v & R.ATA_SRST) {
      this.abandon();
      this.status = R.ATA_BUSY | R.ATA_DSC;
      this.pending = false;
    } else if (prev & R.ATA_SRST && !(v & R.ATA_SRST)) {
      // Reset done: signature in the registers, diagnostic code 01h, no interrupt.
      this.tf.setSignature();
      this.error = R.ATA_AMNF;
      this.status = R.ATA_DRDY | R.ATA_DSC;
      this.pending = false;
    }
  }

  private writeBmide(offset: number, size: DevSize, v: number): void {
    const channel = offset >> 3;
    const edge = this.bm[channel].write(offset & 7, size, v);
    if (channel !== 0) return; // no drives on the secondary channel
    if (edge === 'start' && this.dmaCmd && !this.dmaCmd.running) this.startDma();
    // A stop while running is noticed by the transfer loop between chunks.
  }

  /** The one place the IRQ level is derived: INTRQ pending and not masked by nIEN. */
  private updateIrq(): void {
    const level = this.pending && !(this.devctl & R.ATA_NIEN);
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.edges.irq.set(level);
    }
  }

  private raiseIrq(): void {
    this.pending = true;
    if (!(this.devctl & R.ATA_NIEN)) this.bm[0].status |= R.ATA_DMA_INTR; // BM status mirrors INTRQ
    this.updateIrq();
  }

  private mistake<T>(name: string, result: T): T {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
    return result;
  }

  // ---- commands ---------------------------------------------------------------------------

  private command(op: number): void {
    if (this.status & (R.ATA_BUSY | R.ATA_DRQ)) {
      this.mistake('commandWhileBusy', 0); // ATA: only DEVICE RESET (ATAPI) is allowed now
      return;
    }
    if (this.tf.dev1) {
      this.mistake('commandToAbsentDevice', 0); // no device 1 answers (QEMU ignores it too)
      return;
    }
    this.devctl &= ~R.ATA_HOB;
    this.pending = false;
    this.error = 0;
    const rw = RW_COMMANDS.get(op);
    if (rw) {
      this.startRw(rw);
      return;
    }
    switch (op) {
      case R.ATA_CMD_ID_ATA:
        this.startPioIn(this.identify());
        return;
      case R.ATA_CMD_SET_MULTI: {
        const n = this.tf.nsect;
        if (n > MAX_MULT_SECTORS || (n & (n - 1)) !== 0) return this.abort();
        this.multSectors = n; // 0 turns multiple mode off
        return this.complete();
      }
      case R.ATA_CMD_SET_FEATURES:
        return this.setFeatures();
      case R.ATA_CMD_FLUSH:
      case R.ATA_CMD_FLUSH_EXT:
        return this.flush();
      case R.ATA_CMD_READ_NATIVE_MAX:
        if (!this.tf.lbaMode) return this.abort();
        this.tf.setLba28(Math.min(this.blk.sectors - 1, LBA28_LIMIT));
        return this.complete();
      case R.ATA_CMD_READ_NATIVE_MAX_EXT:
        this.tf.setLba48(this.blk.sectors - 1);
        return this.complete();
      case R.ATA_CMD_EDD:
        this.tf.setSignature();
        this.error = R.ATA_AMNF; // 01h: device 0 passed, device 1 absent
        return this.complete();
      case R.ATA_CMD_INIT_DEV_PARAMS: {
        const sectorsPerTrack = this.tf.nsect;
        if (sectorsPerTrack === 0) return this.abort();
        const heads = (this.tf.device & 0x0f) + 1;
        const cylinders = Math.max(1, Math.min(65535, Math.floor(Math.min(this.blk.sectors, LBA28_LIMIT) / (heads * sectorsPerTrack))));
        this.current = { cylinders, heads, sectorsPerTrack };
        return this.complete();
      }
      case R.ATA_CMD_CHK_POWER:
        this.tf.nsect = 0xff; // active or idle
        return this.complete();
      case R.ATA_CMD_STANDBYNOW1:
      case R.ATA_CMD_IDLEIMMEDIATE:
      case R.ATA_CMD_STANDBY:
      case R.ATA_CMD_IDLE:
        return this.complete(); // no spindle to stop
      case R.ATA_CMD_ID_ATAPI:
      case R.ATA_CMD_PACKET:
      case R.ATA_CMD_DEV_RESET:
        return this.abort(); // ATAPI-only commands: an ATA disk aborts them
      default:
        if (op >= R.ATA_CMD_RECALIBRATE && op <= 0x1f) return this.complete();
        this.mistake('unknownCommand', 0);
        return this.abort();
    }
  }

  private identify(): Uint8Array {
    return buildIdentify({
      sectors: this.blk.sectors,
      model: this.model,
      serial: this.serial,
      firmware: this.firmware,
      geometry: this.geometry,
      current: this.current,
      multSectors: this.multSectors,
      writeCache: this.writeCache,
      lookAhead: this.lookAhead,
      xferMode: this.xferMode,
    });
  }

  private setFeatures(): void {
    switch (this.tf.feature) {
      case R.SETFEATURES_WC_ON: this.writeCache = true; break;
      case R.SETFEATURES_WC_OFF: this.writeCache = false; break;
      case R.SETFEATURES_RA_ON: this.lookAhead = true; break;
      case R.SETFEATURES_RA_OFF: this.lookAhead = false; break;
      case R.SETFEATURES_DEFAULTS_ON:
      case R.SETFEATURES_DEFAULTS_OFF: break;
      case R.SETFEATURES_XFER:
        if (!validXferMode(this.tf.nsect)) return this.abort();
        this.xferMode = this.tf.nsect;
        break;
      default:
        return this.abort();
    }
    this.complete();
  }

  private complete(): void {
    this.status = R.ATA_DRDY | R.ATA_DSC;
    this.raiseIrq();
  }

  private fail(error: number, status = R.ATA_DRDY | R.ATA_ERR): void {
    this.phase = null;
    this.pio = null;
    this.dmaCmd = null;
    this.error = error;
    this.status = status;
    this.raiseIrq();
  }

  private abort(): void {
    this.fail(R.ATA_ABORTED);
  }

  private hostError(e: unknown): void {
    this.lastHostError = e instanceof Error ? e : new Error(String(e));
    this.counters.backendErrors = (this.counters.backendErrors ?? 0) + 1;
  }

  private startRw(cmd: RwCommand): void {
    let lba: number | null;
    const count = cmd.ext ? this.tf.count48() : this.tf.count28();
    if (cmd.ext) lba = this.tf.lba48();
    else if (this.tf.lbaMode) lba = this.tf.lba28();
    else lba = this.tf.chs(this.current);
    if (cmd.multiple && this.multSectors === 0) return this.abort();
    // Out-of-range addresses fail here, before the backend sees them.
    if (lba === null || lba + count > this.blk.sectors) return this.fail(R.ATA_IDNF | R.ATA_ABORTED);
    const writes = cmd.proto === 'pio-out' || cmd.proto === 'dma-out';
    if (writes && this.blk.readOnly) return this.abort();
    switch (cmd.proto) {
      case 'verify':
        this.setPosition(cmd, lba + count - 1);
        return this.complete();
      case 'dma-in':
      case 'dma-out':
        this.dmaCmd = { toMemory: cmd.proto === 'dma-in', lba, count, cmd, running: false };
        this.status = R.ATA_DRDY | R.ATA_DSC | R.ATA_DRQ; // waiting for the bus master
        if (this.bm[0].started) this.startDma();
        return;
      default: {
        const blockSectors = cmd.multiple ? this.multSectors : 1;
        this.pio = { dir: cmd.proto === 'pio-in' ? 'in' : 'out', lba, remaining: count, blockSectors, cmd };
        if (this.pio.dir === 'in') this.fetchBlock();
        else this.openWriteBlock(false);
      }
    }
  }

  /** Leaves the address of the last sector handled in the registers, as the command's output. */
  private setPosition(cmd: RwCommand, lba: number): void {
    if (cmd.ext) this.tf.setLba48(lba);
    else if (this.tf.lbaMode) this.tf.setLba28(lba);
    else this.tf.setChs(lba, this.current);
  }

  private startPioIn(data: Uint8Array): void {
    this.buf = data;
    this.pos = 0;
    this.phase = 'in';
    this.status = R.ATA_DRDY | R.ATA_DSC | R.ATA_DRQ;
    this.raiseIrq();
  }

  private fetchBlock(): void {
    const pio = this.pio!; // only called with a PIO transfer in progress
    const n = Math.min(pio.blockSectors, pio.remaining);
    this.status = R.ATA_BUSY | R.ATA_DRDY;
    this.run(async (step) => {
      try {
        const data = await step(this.blk.read(pio.lba, n));
        this.startPioIn(data);
      } catch (e) {
        if (e === STALE) throw e;
        this.hostError(e);
        this.setPosition(pio.cmd, pio.lba);
        this.fail(R.ATA_UNC);
      }
    });
  }

  private openWriteBlock(irq: boolean): void {
    const pio = this.pio!; // only called with a PIO transfer in progress
    this.buf = new Uint8Array(Math.min(pio.blockSectors, pio.remaining) * SECTOR);
    this.pos = 0;
    this.phase = 'out';
    this.status = R.ATA_DRDY | R.ATA_DSC | R.ATA_DRQ;
    if (irq) this.raiseIrq(); // the first block of a PIO write has no interrupt
  }

  /** The data port drained (read) or filled (write) the current DRQ block. */
  private blockDone(): void {
    const pio = this.pio;
    this.phase = null;
    if (!pio) {
      this.status = R.ATA_DRDY | R.ATA_DSC; // IDENTIFY: done, no interrupt after the last read
      return;
    }
    const n = this.buf.length / SECTOR;
    if (pio.dir === 'in') {
      this.setPosition(pio.cmd, pio.lba + n - 1);
      pio.lba += n;
      pio.remaining -= n;
      if (pio.remaining > 0) this.fetchBlock();
      else {
        this.pio = null;
        this.status = R.ATA_DRDY | R.ATA_DSC;
      }
      return;
    }
    const data = this.buf;
    this.status = R.ATA_BUSY | R.ATA_DRDY;
    this.run(async (step) => {
      try {
        await step(this.blk.write(pio.lba, data, !this.writeCache));
      } catch (e) {
        if (e === STALE) throw e;
        this.hostError(e);
        this.setPosition(pio.cmd, pio.lba);
        return this.fail(R.ATA_ABORTED);
      }
      this.setPosition(pio.cmd, pio.lba + n - 1);
      pio.lba += n;
      pio.remaining -= n;
      if (pio.remaining > 0) return this.openWriteBlock(true);
      this.pio = null;
      this.complete();
    });
  }

  private flush(): void {
    this.status = R.ATA_BUSY | R.ATA_DRDY;
    this.run(async (step) => {
      try {
        await step(this.blk.flush());
      } catch (e) {
        if (e === STALE) throw e;
        this.hostError(e);
        return this.fail(R.ATA_ABORTED);
      }
      this.complete();
    });
  }

  // ---- data port --------------------------------------------------------------------------

  private readDataPort(size: DevSize): number {
    if (size === 1) return this.mistake('badWidth', 0xff);
    if (this.phase === 'in' && size === 2 && this.pos + 2 <= this.buf.length) {
      const v = this.buf[this.pos] | (this.buf[this.pos + 1] << 8);
      this.pos += 2;
      if (this.pos === this.buf.length) this.blockDone();
      return v;
    }
    const b = this.readData(size);
    return (b[0] | (b[1] << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
  }

  private writeDataPort(size: DevSize, value: number): void {
    if (size === 1) return this.mistake('badWidth', undefined);
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
    this.writeData(b);
  }

  /** Reads `len` bytes; past the end of the DRQ data the port floats (zeros, counted). */
  private readData(len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len && this.phase === 'in') {
      const n = Math.min(len - done, this.buf.length - this.pos);
      out.set(this.buf.subarray(this.pos, this.pos + n), done);
      done += n;
      this.pos += n;
      if (this.pos === this.buf.length) this.blockDone();
    }
    if (done < len) this.mistake('dataReadWithoutDrq', 0);
    return out;
  }

  private writeData(data: Uint8Array): void {
    let done = 0;
    while (done < data.length && this.phase === 'out') {
      const n = Math.min(data.length - done, this.buf.length - this.pos);
      this.buf.set(data.subarray(done, done + n), this.pos);
      done += n;
      this.pos += n;
      if (this.pos === this.buf.length) this.blockDone();
    }
    if (done < data.length) this.mistake('dataWriteWithoutDrq', 0);
  }

  // ---- bus-master DMA ---------------------------------------------------------------------

  private startDma(): void {
    const cmd = this.dmaCmd!; // only called with a DMA command waiting
    cmd.running = true;
    if (cmd.toMemory !== this.bm[0].toMemory) this.mistake('dmaDirectionMismatch', 0);
    this.run(async (step) => {
      const bm = this.bm[0];
      const total = cmd.count * SECTOR;
      const walk = await step(walkPrdTable(this.edges.dma, bm.prd, total));
      if (!walk.ok) return this.dmaFail(walk.reason);
      let seg = 0;
      let segOff = 0;
      // Moves `len` bytes between `chunk` and the PRD segments, continuing where the last call stopped.
      const scatter = async (chunk: Uint8Array): Promise<boolean> => {
        let off = 0;
        while (off < chunk.length) {
          const s: PrdSegment = walk.segments[seg];
          const n = Math.min(s.len - segOff, chunk.length - off);
          const addr = s.addr + segOff;
          if (cmd.toMemory) {
            if (!(await step(this.edges.dma.write(addr, chunk.subarray(off, off + n))))) return false;
          } else {
            const got = await step(this.edges.dma.read(addr, n));
            if (!got || got.length !== n) return false;
            chunk.set(got, off);
          }
          off += n;
          segOff += n;
          if (segOff === s.len) {
            seg++;
            segOff = 0;
          }
        }
        return true;
      };
      for (let done = 0; done < cmd.count; ) {
        if (!bm.started) return this.fail(R.ATA_ABORTED); // driver stopped the engine mid-transfer
        const n = Math.min(DMA_CHUNK_SECTORS, cmd.count - done);
        const lba = cmd.lba + done;
        try {
          if (cmd.toMemory) {
            const data = await step(this.blk.read(lba, n));
            if (!(await scatter(data))) return this.dmaFail(`DMA write to guest memory refused`);
          } else {
            const data = new Uint8Array(n * SECTOR);
            if (!(await scatter(data))) return this.dmaFail(`DMA read of guest memory refused`);
            await step(this.blk.write(lba, data, !this.writeCache));
          }
        } catch (e) {
          if (e === STALE) throw e;
          this.hostError(e);
          this.setPosition(cmd.cmd, lba);
          bm.status &= ~R.ATA_DMA_ACTIVE;
          return this.fail(cmd.toMemory ? R.ATA_UNC : R.ATA_ABORTED);
        }
        done += n;
      }
      this.setPosition(cmd.cmd, cmd.lba + cmd.count - 1);
      this.dmaCmd = null;
      // A PRD table longer than the transfer leaves the engine active (SFF-8038i table 3).
      if (!walk.longer) bm.status &= ~R.ATA_DMA_ACTIVE;
      else this.mistake('prdLongerThanTransfer', 0);
      this.complete();
    });
  }

  private dmaFail(reason: string): void {
    this.lastHostError = new Error(`ata bmdma: ${reason}`);
    this.mistake('dmaErrors', 0);
    const bm = this.bm[0];
    bm.status = (bm.status | R.ATA_DMA_ERR) & ~R.ATA_DMA_ACTIVE;
    this.fail(R.ATA_ABORTED);
  }

  // ---- async plumbing, reset, snapshot ----------------------------------------------------

  /**
   * Runs one async operation. `step` wraps every await: after a reset the operation is stale
   * and stops at its next step without touching registers.
   */
  private run(op: (step: <T>(p: Promise<T>) => Promise<T>) => Promise<void>): void {
    const gen = this.gen;
    const step = async <T>(p: Promise<T>): Promise<T> => {
      const v = await p.catch((e: unknown) => {
        if (this.gen !== gen) throw STALE;
        throw e;
      });
      if (this.gen !== gen) throw STALE;
      return v;
    };
    this.inflight++;
    op(step)
      .catch((e: unknown) => {
        if (e !== STALE) this.hostError(e); // a bug in the model; the guest sees BSY stuck until reset
      })
      .finally(() => {
        this.updateIrq();
        if (--this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** Drops the command in progress (SRST, reset): late completions become stale. */
  private abandon(): void {
    this.gen++;
    this.phase = null;
    this.pio = null;
    this.dmaCmd = null;
    this.buf = new Uint8Array(0);
    this.pos = 0;
  }

  reset(): void {
    this.abandon();
    this.tf.load(new TaskFile().state());
    this.tf.setSignature();
    this.status = R.ATA_DRDY | R.ATA_DSC;
    this.error = R.ATA_AMNF;
    this.devctl = 0;
    this.pending = false;
    this.multSectors = 0;
    this.writeCache = this.initialWriteCache;
    this.lookAhead = true;
    this.xferMode = null;
    this.current = { ...this.geometry };
    for (const bm of this.bm) bm.load(new BusMasterRegs().state());
    this.updateIrq();
  }

  /** Plain-data snapshot; only taken between commands (no data phase, nothing in flight). */
  state(): AtaState {
    if (this.busy) throw new Error('ata: snapshot refused while a command is in progress');
    return {
      tf: this.tf.state(),
      status: this.status,
      error: this.error,
      devctl: this.devctl,
      pending: this.pending,
      multSectors: this.multSectors,
      writeCache: this.writeCache,
      lookAhead: this.lookAhead,
      xferMode: this.xferMode,
      current: { ...this.current },
      bm: this.bm.map((b) => b.state()),
    };
  }

  fromState(s: AtaState): void {
    if (s.status & (R.ATA_BUSY | R.ATA_DRQ)) throw new RangeError('ata: snapshot taken mid-command');
    if (s.multSectors > MAX_MULT_SECTORS || (s.multSectors & (s.multSectors - 1)) !== 0) {
      throw new RangeError(`ata: multiple count ${s.multSectors} invalid`);
    }
    if (s.bm.length !== 2) throw new RangeError('ata: snapshot needs two bus-master banks');
    this.abandon();
    this.tf.load(s.tf);
    this.bm.forEach((b, i) => b.load(s.bm[i]));
    Object.assign(this, {
      status: s.status,
      error: s.error,
      devctl: s.devctl,
      pending: s.pending,
      multSectors: s.multSectors,
      writeCache: s.writeCache,
      lookAhead: s.lookAhead,
      xferMode: s.xferMode,
      current: { ...s.current },
    });
    this.updateIrq();
  }

  async close(): Promise<void> {
    await this.whenIdle();
    await this.blk.close();
  }
}
