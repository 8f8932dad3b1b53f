// ATA disk on the primary channel of a PIIX3 IDE function: legacy ports 0x1F0-0x1F7 and
// 0x3F6, IRQ 14, bus-master registers at BAR4. One drive (device 0). Pure model: backend
// I/O and DMA go through the injected BlockBackend and edges; the IRQ level is recomputed
// in DriveCore.updateIrq() only. Facts checked against QEMU hw/ide/core.c, hw/ide/piix.c and
// Linux libata-sff.c; test/ata-vs-qemu.test.ts compares it with QEMU's model register by register.

import { SECTOR, type BlockBackend } from '../../backends/block.ts';
import type { Device, DeviceDescription, DeviceEdges, DevSize } from '../../device.ts';
import { RW_COMMANDS, runSimpleCommand, type RwCommand } from './commands.ts';
import { describeAta } from './describe.ts';
import { runDmaTransfer } from './dma-transfer.ts';
import { DriveCore, IDLE, type PioTransfer } from './drive-core.ts';
import { readElements, writeElements } from './drq-buffer.ts';
import { buildIdentify, defaultGeometry } from './identify.ts';
import { STALE, type Step } from './op-runner.ts';
import * as R from './regs.ts';
import { DSM_COMMAND, DsmSink, MAX_DSM_BLOCKS, parseTrimRanges } from './trim.ts';

export type { AtaState } from './drive-core.ts';

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

/** A string read beyond any DRQ block is a guest mistake; cap what we allocate for it. */
const MAX_STRING_BYTES = 1 << 20;

export class AtaDevice extends DriveCore implements Device {
  private readonly model: string;
  private readonly serial: string;
  private readonly firmware: string;

  constructor(edges: DeviceEdges, blk: BlockBackend, options: AtaOptions = {}) {
    super(edges, blk, defaultGeometry(blk.sectors), options.writeCache ?? true);
    this.model = options.model ?? 'MUXVISOR HARDDISK';
    this.serial = options.serial ?? 'MV0001';
    this.firmware = options.firmware ?? '0.1';
  }

  describe(): DeviceDescription {
    return describeAta({ model: this.model, serial: this.serial, firmware: this.firmware, blk: this.blk, writeCache: this.settings.writeCache });
  }

  // ---- register access ------------------------------------------------------------------

  read(region: number, offset: number, size: DevSize): number {
    let v: number;
    if (region === REGION_CMD && offset === R.ATA_REG_DATA) v = this.readDataPort(size);
    else if (region === REGION_BMIDE && offset >= 0 && offset + size <= 16) v = this.bm[offset >> 3].read(offset & 7, size);
    else if (size !== 1) v = this.mistake('badWidth', 0xffff_ffff >>> (32 - 8 * size));
    else if (region === REGION_CMD && offset > 0 && offset < 8) v = this.readCmdReg(offset);
    else if (region === REGION_CTL && offset === R.ATA_REG_ALTSTATUS) v = this.tf.dev1 ? 0 : this.status;
    else v = this.mistake('unknownRegister', 0xff);
    this.updateIrq();
    return v;
  }

  write(region: number, offset: number, size: DevSize, value: number): void {
    if (region === REGION_CMD && offset === R.ATA_REG_DATA) this.writeDataPort(size, value);
    else if (region === REGION_BMIDE && offset >= 0 && offset + size <= 16) this.writeBmide(offset, size, value);
    else if (size !== 1) this.mistake('badWidth', 0);
    else if (region === REGION_CMD && offset > 0 && offset < 8) this.writeCmdReg(offset, value & 0xff);
    else if (region === REGION_CTL && offset === R.ATA_REG_DEVCTL) this.writeDevctl(value & 0xff);
    else this.mistake('unknownRegister', 0);
    this.updateIrq();
  }

  readString(region: number, offset: number, size: DevSize, count: number): Uint8Array {
    if (count * size > MAX_STRING_BYTES) count = this.mistake('stringTooLong', Math.floor(MAX_STRING_BYTES / size));
    if (region === REGION_CMD && offset === R.ATA_REG_DATA && size !== 1) {
      const out = this.readData(count * size);
      this.updateIrq();
      return out;
    }
    return readElements((s) => this.read(region, offset, s), size, count);
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): void {
    if (region === REGION_CMD && offset === R.ATA_REG_DATA && size !== 1) {
      this.writeData(data);
      this.updateIrq();
      return;
    }
    writeElements((s, v) => this.write(region, offset, s, v), size, data);
  }

  private readCmdReg(reg: number): number {
    if (reg === R.ATA_REG_STATUS) {
      this.pending = false; // reading status acknowledges the interrupt
      return this.tf.dev1 ? 0 : this.status; // no device 1: its status floats to 0
    }
    const hob = (this.devctl & R.ATA_HOB) !== 0;
    if (reg === R.ATA_REG_ERR) return hob ? this.tf.hobFeature : this.error;
    return this.tf.read(reg, hob);
  }

  private writeCmdReg(reg: number, v: number): void {
    if (reg === R.ATA_REG_CMD) return this.command(v);
    // ATA leaves command block writes while BSY or DRQ undefined (the host shall not make
    // them); QEMU's ide_ioport_write drops them, and so do we: a command in progress, its
    // data phase included, keeps the registers it was issued with.
    if (this.status & (R.ATA_BUSY | R.ATA_DRQ)) return this.mistake('taskfileWriteWhileBusy', undefined);
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
      this.status = IDLE;
      this.pending = false;
    }
  }

  private writeBmide(offset: number, size: DevSize, v: number): void {
    const channel = offset >> 3;
    const edge = this.bm[channel].write(offset & 7, size, v);
    // No drives on the secondary channel; a stop while running is seen between chunks.
    if (channel === 0 && edge === 'start' && this.dmaCmd && !this.dmaCmd.running) this.startDma();
  }

  // ---- commands ---------------------------------------------------------------------------

  private command(op: number): void {
    if (this.status & (R.ATA_BUSY | R.ATA_DRQ)) return this.mistake('commandWhileBusy', undefined); // ATA: ignored
    if (this.tf.dev1) return this.mistake('commandToAbsentDevice', undefined); // nobody answers (as QEMU)
    this.devctl &= ~R.ATA_HOB;
    this.pending = false; // writing the command register clears INTRQ
    this.error = 0;
    const rw = RW_COMMANDS.get(op);
    if (rw) return this.startRw(rw);
    if (op === R.ATA_CMD_ID_ATA) return this.startPioIn(this.identify());
    if (op === R.ATA_CMD_DSM) return this.startDsm();
    if (op === R.ATA_CMD_FLUSH || op === R.ATA_CMD_FLUSH_EXT) return this.flush();
    const r = runSimpleCommand(op, this.tf, this.settings, this.blk.sectors);
    if (r?.outcome === 'unknown') this.mistake('unknownCommand', 0);
    if (r?.error !== undefined) this.error = r.error;
    return r?.outcome === 'complete' ? this.complete() : this.abort();
  }

  private identify(): Uint8Array {
    const s = this.settings;
    return buildIdentify({
      sectors: this.blk.sectors,
      model: this.model,
      serial: this.serial,
      firmware: this.firmware,
      geometry: s.geometry,
      current: s.current,
      multSectors: s.multSectors,
      writeCache: s.writeCache,
      lookAhead: s.lookAhead,
      xferMode: s.xferMode,
      trimBlocks: this.canTrim ? MAX_DSM_BLOCKS : 0,
    });
  }

  private get canTrim(): boolean {
    return this.blk.canTrim && !this.blk.readOnly;
  }

  /** DATA SET MANAGEMENT: DMA data-out of range blocks (16-bit count), then TRIM. */
  private startDsm(): void {
    const blocks = this.tf.count48();
    if (!(this.tf.feature & R.ATA_DSM_TRIM) || !this.canTrim || blocks > MAX_DSM_BLOCKS) return this.abort();
    this.dmaCmd = { sink: new DsmSink(blocks), toMemory: false, lba: 0, count: blocks, cmd: DSM_COMMAND, running: false };
    this.status = IDLE | R.ATA_DRQ;
    if (this.bm[0].started) this.startDma();
  }

  private startRw(cmd: RwCommand): void {
    const count = cmd.ext ? this.tf.count48() : this.tf.count28();
    const lba = cmd.ext ? this.tf.lba48() : this.tf.lbaMode ? this.tf.lba28() : this.tf.chs(this.settings.current);
    if (cmd.multiple && this.settings.multSectors === 0) return this.abort();
    // Out-of-range addresses fail here, before the backend sees them.
    if (lba === null || lba + count > this.blk.sectors) return this.fail(R.ATA_IDNF | R.ATA_ABORTED);
    if ((cmd.proto === 'pio-out' || cmd.proto === 'dma-out') && this.blk.readOnly) return this.abort();
    switch (cmd.proto) {
      case 'verify':
        return this.complete(); // nothing to verify against; registers untouched, as QEMU
      case 'dma-in':
      case 'dma-out':
        this.dmaCmd = { toMemory: cmd.proto === 'dma-in', lba, count, cmd, running: false };
        this.status = IDLE | R.ATA_DRQ; // waiting for the bus master (QEMU shows the same)
        if (this.bm[0].started) this.startDma();
        return;
      default: {
        const blockSectors = cmd.multiple ? this.settings.multSectors : 1;
        this.pio = { dir: cmd.proto === 'pio-in' ? 'in' : 'out', lba, remaining: count, blockSectors, cmd };
        if (this.pio.dir === 'in') this.fetchBlock(this.pio);
        else this.openWriteBlock(this.pio, false);
      }
    }
  }

  private startPioIn(data: Uint8Array): void {
    this.drq.startIn(data);
    this.status = IDLE | R.ATA_DRQ;
    this.raiseIrq();
  }

  private fetchBlock(pio: PioTransfer): void {
    const n = Math.min(pio.blockSectors, pio.remaining);
    this.status = R.ATA_BUSY | R.ATA_DRDY;
    this.ops.run(async (step) => {
      let data: Uint8Array;
      try {
        data = await step(this.blk.read(pio.lba, n));
      } catch (e) {
        if (e === STALE) throw e;
        this.hostError(e, `${pio.cmd.name}: read of ${n} sectors at LBA ${pio.lba}`);
        this.setPosition(pio.cmd, pio.lba);
        return this.fail(R.ATA_UNC);
      }
      this.advance(pio.cmd, pio.lba + n, pio.remaining - n);
      this.startPioIn(data);
    });
  }

  private openWriteBlock(pio: PioTransfer, irq: boolean): void {
    this.drq.startOut(Math.min(pio.blockSectors, pio.remaining) * SECTOR);
    this.status = IDLE | R.ATA_DRQ;
    if (irq) this.raiseIrq(); // the first block of a PIO write has no interrupt
  }

  /** The data port drained (read) or filled (write) the current DRQ block. */
  private blockDone(): void {
    const pio = this.pio;
    const data = this.drq.data;
    this.drq.clear();
    const n = data.length / SECTOR;
    if (!pio) {
      this.status = IDLE; // IDENTIFY: done, no interrupt after the last read
    } else if (pio.dir === 'in') {
      pio.lba += n;
      pio.remaining -= n;
      if (pio.remaining > 0) this.fetchBlock(pio);
      else {
        this.pio = null;
        this.status = IDLE;
      }
    } else {
      this.status = R.ATA_BUSY | R.ATA_DRDY;
      this.ops.run(async (step) => {
        try {
          await step(this.blk.write(pio.lba, data, !this.settings.writeCache));
        } catch (e) {
          if (e === STALE) throw e;
          this.hostError(e, `${pio.cmd.name}: write of ${n} sectors at LBA ${pio.lba}`);
          this.setPosition(pio.cmd, pio.lba);
          return this.fail(R.ATA_ABORTED);
        }
        this.advance(pio.cmd, pio.lba + n, pio.remaining - n);
        pio.lba += n;
        pio.remaining -= n;
        if (pio.remaining > 0) return this.openWriteBlock(pio, true);
        this.pio = null;
        this.complete();
      });
    }
  }

  private flush(): void {
    this.status = R.ATA_BUSY | R.ATA_DRDY;
    this.ops.run(async (step) => {
      try {
        await step(this.blk.flush());
      } catch (e) {
        if (e === STALE) throw e;
        this.hostError(e, 'FLUSH CACHE');
        return this.fail(R.ATA_ABORTED);
      }
      this.complete();
    });
  }

  // ---- data port --------------------------------------------------------------------------

  private readDataPort(size: DevSize): number {
    if (size === 1) return this.mistake('badWidth', 0xff);
    if (size === 2) {
      const w = this.drq.readWord();
      if (w >= 0) {
        if (this.drq.full) this.blockDone();
        return w;
      }
    }
    const b = this.readData(size);
    return (b[0] | (b[1] << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
  }

  private writeDataPort(size: DevSize, value: number): void {
    if (size === 1) return this.mistake('badWidth', undefined);
    if (size === 2 && this.drq.writeWord(value)) {
      if (this.drq.full) this.blockDone();
      return;
    }
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
    this.writeData(b);
  }

  /** Reads `len` bytes; past the end of the DRQ data the port floats (zeros, counted). */
  private readData(len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len && this.drq.phase === 'in') {
      done += this.drq.readInto(out, done, len - done);
      if (this.drq.full) this.blockDone();
    }
    if (done < len) this.mistake('dataReadWithoutDrq', 0);
    return out;
  }

  private writeData(data: Uint8Array): void {
    let done = 0;
    while (done < data.length && this.drq.phase === 'out') {
      done += this.drq.writeFrom(data.subarray(done));
      if (this.drq.full) this.blockDone();
    }
    if (done < data.length) this.mistake('dataWriteWithoutDrq', 0);
  }

  // ---- bus-master DMA ---------------------------------------------------------------------

  private startDma(): void {
    const cmd = this.dmaCmd!; // only called with a DMA command waiting
    const bm = this.bm[0];
    cmd.running = true;
    if (cmd.toMemory !== bm.toMemory) this.mistake('dmaDirectionMismatch', 0);
    this.ops.run(async (step) => {
      const outcome = await runDmaTransfer({
        dma: this.edges.dma,
        blk: cmd.sink ?? this.blk,
        bm,
        step,
        toMemory: cmd.toMemory,
        lba: cmd.lba,
        count: cmd.count,
        fua: () => !this.settings.writeCache,
        progress: (done) => {
          if (!cmd.sink) this.advance(cmd.cmd, cmd.lba + done, cmd.count - done);
        },
      });
      switch (outcome.kind) {
        case 'done':
          // A PRD table longer than the transfer leaves the engine active (SFF-8038i).
          if (outcome.longer) this.mistake('prdLongerThanTransfer', 0);
          else bm.status &= ~R.ATA_DMA_ACTIVE;
          this.dmaCmd = null;
          if (cmd.sink) return this.trim(cmd.sink, step);
          return this.complete();
        case 'bus-error':
          this.lastHostError = new Error(`ata bmdma: ${outcome.reason}`);
          this.mistake('dmaErrors', 0);
          bm.status = (bm.status | R.ATA_DMA_ERR) & ~R.ATA_DMA_ACTIVE;
          return this.abort();
        case 'backend-error':
          this.hostError(outcome.error, `${cmd.cmd.name}: ${cmd.toMemory ? 'read' : 'write'} at LBA ${outcome.lba}`);
          this.setPosition(cmd.cmd, outcome.lba);
          bm.status &= ~R.ATA_DMA_ACTIVE;
          return this.fail(cmd.toMemory ? R.ATA_UNC : R.ATA_ABORTED);
        case 'stopped':
          this.mistake('dmaStoppedMidTransfer', 0);
          return this.abort();
      }
    });
  }

  private async trim(sink: DsmSink, step: Step): Promise<void> {
    const ranges = parseTrimRanges(sink.data, this.blk.sectors);
    if (!ranges) return this.fail(R.ATA_IDNF | R.ATA_ABORTED);
    try {
      for (const r of ranges) await step(this.blk.trim(r.lba, r.count));
    } catch (e) {
      if (e === STALE) throw e;
      this.hostError(e, 'DATA SET MANAGEMENT: trim');
      return this.abort();
    }
    this.complete();
  }
}
