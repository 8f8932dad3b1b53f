// The drive's register state and the helpers every command path uses: the IRQ derivation
// (one place), completion and error endings, progress in the taskfile, reset and snapshots.
// AtaDevice (ata-device.ts) adds register decoding and the command protocols on top.

import type { BlockBackend } from '../../backends/block.ts';
import type { DeviceEdges, DeviceMetrics } from '../../device.ts';
import { BusMasterRegs, type BusMasterState } from './bmdma.ts';
import type { RwCommand } from './commands.ts';
import { DrqBuffer } from './drq-buffer.ts';
import type { Geometry } from './identify.ts';
import { OpRunner } from './op-runner.ts';
import * as R from './regs.ts';
import { DriveSettings, type SettingsState } from './settings.ts';
import { TaskFile, type TaskFileState } from './taskfile.ts';
import type { DsmSink } from './trim.ts';

export interface PioTransfer {
  dir: 'in' | 'out';
  lba: number; // first sector of the current block
  remaining: number; // sectors left, current block included
  blockSectors: number;
  cmd: RwCommand;
}

export interface DmaCommand {
  /** DATA SET MANAGEMENT: the data goes to this sink, then becomes TRIM ranges. */
  sink?: DsmSink;
  toMemory: boolean;
  lba: number;
  count: number;
  cmd: RwCommand;
  running: boolean;
}

/** Plain-data snapshot, taken between commands. */
export interface AtaState {
  tf: TaskFileState;
  status: number;
  error: number;
  devctl: number;
  pending: boolean;
  settings: SettingsState;
  bm: BusMasterState[];
}

/** Status of an idle, ready drive: DRDY + DSC. */
export const IDLE = R.ATA_DRDY | R.ATA_DSC;

export abstract class DriveCore {
  protected readonly tf = new TaskFile();
  protected status = IDLE;
  protected error = R.ATA_AMNF; // 01h: diagnostic passed
  protected devctl = 0;
  protected pending = false; // INTRQ asserted by the drive (nIEN only masks the line)
  private irqLevel = false;
  protected readonly settings: DriveSettings;
  protected readonly bm = [new BusMasterRegs(), new BusMasterRegs()]; // primary, secondary (no drives)
  protected readonly drq = new DrqBuffer();
  protected pio: PioTransfer | null = null;
  protected dmaCmd: DmaCommand | null = null;
  protected readonly ops: OpRunner;
  private readonly counters: Record<string, number> = {};
  /** The last host-side failure (backend or DMA), for logs; the guest sees ATA error bits. */
  lastHostError: Error | null = null;

  constructor(
    protected readonly edges: DeviceEdges,
    protected readonly blk: BlockBackend,
    geometry: Geometry,
    writeCache: boolean,
  ) {
    this.settings = new DriveSettings(geometry, writeCache);
    this.ops = new OpRunner((e) => this.hostError(e, 'an operation of the model (a bug)'), () => this.updateIrq());
    this.tf.setSignature();
  }

  metrics(): DeviceMetrics {
    return { ...this.counters };
  }

  /** Resolves when no backend or DMA operation is in flight (tests, MUX safe-state checks). */
  whenIdle(): Promise<void> {
    return this.ops.whenIdle();
  }

  /** A command is in progress: BSY or DRQ, or host I/O outstanding. */
  get busy(): boolean {
    return (this.status & (R.ATA_BUSY | R.ATA_DRQ)) !== 0 || this.ops.active;
  }

  /** The one place the IRQ level is derived: INTRQ pending and not masked by nIEN. */
  protected updateIrq(): void {
    const level = this.pending && !(this.devctl & R.ATA_NIEN);
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.edges.irq.set(level);
    }
  }

  protected raiseIrq(): void {
    this.pending = true;
    if (!(this.devctl & R.ATA_NIEN)) this.bm[0].status |= R.ATA_DMA_INTR; // BM status mirrors INTRQ
    this.updateIrq();
  }

  protected mistake<T>(name: string, result: T): T {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
    return result;
  }

  /** A host failure: counted, kept for diagnostics, and reported on the log edge with `what` failed. */
  protected hostError(e: unknown, what: string): void {
    this.lastHostError = e instanceof Error ? e : new Error(String(e));
    this.counters.backendErrors = (this.counters.backendErrors ?? 0) + 1;
    this.edges.log?.hostError(what, e);
  }

  protected complete(): void {
    this.status = IDLE;
    this.raiseIrq();
  }

  protected fail(error: number): void {
    this.drq.clear();
    this.pio = null;
    this.dmaCmd = null;
    this.error = error;
    this.status = R.ATA_DRDY | R.ATA_ERR;
    this.raiseIrq();
  }

  protected abort(): void {
    this.fail(R.ATA_ABORTED);
  }

  /** Puts an address in the LBA (or CHS) registers: a failing sector, or the next one. */
  protected setPosition(cmd: RwCommand, lba: number): void {
    if (cmd.ext) this.tf.setLba48(lba);
    else if (this.tf.lbaMode) this.tf.setLba28(lba);
    else this.tf.setChs(lba, this.settings.current);
  }

  /**
   * Progress as drives (and QEMU) show it: after each block the registers hold the next
   * sector and the sectors still to go, so an error leaves the failing block's address.
   */
  protected advance(cmd: RwCommand, nextLba: number, remaining: number): void {
    this.setPosition(cmd, nextLba);
    this.tf.nsect = remaining & 0xff;
    if (cmd.ext) this.tf.hobNsect = (remaining >>> 8) & 0xff;
  }

  // ---- reset, snapshot --------------------------------------------------------------------

  /** Drops the command in progress (SRST, reset): late completions become stale. */
  protected abandon(): void {
    this.ops.cancelAll();
    this.drq.clear();
    this.pio = null;
    this.dmaCmd = null;
  }

  reset(): void {
    this.abandon();
    this.tf.load(new TaskFile().state());
    this.tf.setSignature();
    this.status = IDLE;
    this.error = R.ATA_AMNF;
    this.devctl = 0;
    this.pending = false;
    this.settings.reset();
    for (const bm of this.bm) bm.load(new BusMasterRegs().state());
    this.updateIrq();
  }

  /** Plain-data snapshot; only between commands (no data phase, nothing in flight). */
  state(): AtaState {
    if (this.busy) throw new Error('ata: snapshot refused while a command is in progress');
    return {
      tf: this.tf.state(),
      status: this.status,
      error: this.error,
      devctl: this.devctl,
      pending: this.pending,
      settings: this.settings.state(),
      bm: this.bm.map((b) => b.state()),
    };
  }

  fromState(s: AtaState): void {
    if (s.status & (R.ATA_BUSY | R.ATA_DRQ)) throw new RangeError('ata: snapshot taken mid-command');
    if (s.bm.length !== 2) throw new RangeError('ata: snapshot needs two bus-master banks');
    this.settings.load(s.settings);
    this.abandon();
    this.tf.load(s.tf);
    this.bm.forEach((b, i) => b.load(s.bm[i]));
    this.status = s.status;
    this.error = s.error;
    this.devctl = s.devctl;
    this.pending = s.pending;
    this.updateIrq();
  }

  async close(): Promise<void> {
    await this.whenIdle();
    await this.blk.close();
  }
}
