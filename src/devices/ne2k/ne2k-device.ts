// The RTL8029 (PCI NE2000) as a pure device model: one I/O BAR of 32 bytes (registers 0x00-0x0F
// paged by CR, data port 0x10, reset port 0x1F), 32 KiB of buffer memory with the receive ring,
// the MAC PROM, and a wire edge for frames. The IRQ level is recomputed in one place (syncIrq)
// after every access and every arriving frame.

import type { DevSize, Device, DeviceDescription, DeviceEdges, DeviceMetrics } from '../../device.ts';
import { bumpTally, CNTR_MISSED, zeroCounters, type Ne2kCounters } from './counters.ts';
import { describeNe2k, NE2K_DEFAULT_IRQ } from './describe.ts';
import { acceptFrame } from './filter.ts';
import { formatMac, NicMemory } from './memory.ts';
import { readRegister, writeRegister } from './pages.ts';
import * as R from './regs.ts';
import { dataPortRead, dataPortWrite, remoteDmaBusy } from './remote-dma.ts';
import { storeFrame } from './ring.ts';
import { checkRegs, copyRegs, powerOnRegs, type Ne2kRegs } from './state.ts';
import { transmit } from './transmit.ts';
import { NullWire, type NicWire, type RxResult } from './wire.ts';

export const REGION_REGS = 0;

export interface Ne2kOptions {
  /** Station address in the PROM (default 52:54:00:12:34:56, QEMU's). */
  mac?: Uint8Array;
  /** ISA-numbered IRQ the description proposes (INTx is routed by the platform); default 11. */
  irq?: number;
}

/** A snapshot: plain data (msgpackr-friendly). */
export interface Ne2kState {
  regs: Ne2kRegs;
  /** The 32 KiB buffer memory. */
  buffer: Uint8Array;
  mac: string;
  irqLevel: boolean;
}

const allOnes = (size: number): number => (size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff);

export class Ne2kDevice implements Device {
  private regs: Ne2kRegs = powerOnRegs();
  private readonly mem: NicMemory;
  private readonly counters: Ne2kCounters = zeroCounters();
  private irqLevel = false;
  private readonly context: { regs: Ne2kRegs; mem: NicMemory; counters: Ne2kCounters };
  readonly mac: Uint8Array;

  constructor(
    private readonly edges: DeviceEdges,
    private readonly wire: NicWire = new NullWire(),
    private readonly options: Ne2kOptions = {},
  ) {
    this.mac = options.mac ?? Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    this.mem = new NicMemory(this.mac);
    this.context = { regs: this.regs, mem: this.mem, counters: this.counters };
    wire.attach((frame) => this.receive(frame));
  }

  describe(): DeviceDescription {
    return describeNe2k({ mac: formatMac(this.mac), irq: this.options.irq ?? NE2K_DEFAULT_IRQ });
  }

  read(region: number, offset: number, size: DevSize): number {
    const v = this.readInner(region, offset, size);
    this.syncIrq();
    return v;
  }

  write(region: number, offset: number, size: DevSize, value: number): void {
    this.writeInner(region, offset, size, value >>> 0);
    this.syncIrq();
  }

  /** `rep insl/insw/insb` on the data port (one element at a time, same rules). */
  readString(region: number, offset: number, size: DevSize, count: number): Uint8Array {
    const out = new Uint8Array(count * size);
    const view = new DataView(out.buffer);
    for (let i = 0; i < count; i++) {
      const v = this.readInner(region, offset, size);
      if (size === 1) view.setUint8(i, v);
      else if (size === 2) view.setUint16(i * 2, v, true);
      else view.setUint32(i * 4, v, true);
    }
    this.syncIrq();
    return out;
  }

  writeString(region: number, offset: number, size: DevSize, data: Uint8Array): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i + size <= data.length; i += size) {
      const v = size === 1 ? view.getUint8(i) : size === 2 ? view.getUint16(i, true) : view.getUint32(i, true);
      this.writeInner(region, offset, size, v);
    }
    if (data.length % size !== 0) this.counters.badWidth++;
    this.syncIrq();
  }

  /** Power-on reset: registers to their power-on values, buffer memory cleared, PROM kept. */
  reset(): void {
    this.regs = powerOnRegs();
    this.mem.clear();
    this.syncIrq();
  }

  metrics(): DeviceMetrics {
    return { ...this.counters };
  }

  /** Detach from the wire (the backend stops delivering to this card). */
  async close(): Promise<void> {
    this.wire.attach(null);
  }

  /**
   * A frame from the wire (no FCS). Runs the filters and the ring; the answer says what
   * happened. Never throws for any frame or register state.
   */
  receive(frame: Uint8Array): RxResult {
    const result = this.receiveInner(frame);
    this.syncIrq();
    return result;
  }

  // ---- for the MUX and tests ----

  /** A copy of the register file. */
  registers(): Ne2kRegs {
    return copyRegs(this.regs);
  }

  /** A remote DMA is selected and has bytes left (not a safe state for a switch). */
  remoteDmaBusy(): boolean {
    return remoteDmaBusy(this.regs);
  }

  /** Buffer memory [addr, addr + len) as the card sees it (PROM, 0xFF holes, buffer). */
  peek(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.mem.readByte((addr + i) & 0xffff);
    return out;
  }

  state(): Ne2kState {
    return { regs: copyRegs(this.regs), buffer: this.mem.buffer.slice(), mac: formatMac(this.mac), irqLevel: this.irqLevel };
  }

  /** Load a snapshot; throws RangeError naming the bad field. The MAC stays this card's own. */
  fromState(s: Ne2kState): void {
    const regs = checkRegs(s?.regs);
    if (!(s.buffer instanceof Uint8Array) || s.buffer.length !== R.NE_PMEM_SIZE) throw new RangeError(`ne2k state: buffer must be ${R.NE_PMEM_SIZE} bytes`);
    this.regs = regs;
    this.mem.buffer.set(s.buffer);
    this.syncIrq();
  }

  // ---- internals ----

  private readInner(region: number, offset: number, size: DevSize): number {
    if (region !== REGION_REGS || !Number.isInteger(offset) || offset < 0 || offset >= R.NE_BAR_SIZE) {
      this.counters.badRegister++;
      return allOnes(size);
    }
    if (offset === R.NE_DATAPORT) return dataPortRead(this.ctx(), size);
    if (offset === R.NE_RESET && size === 1) {
      this.softReset();
      return 0;
    }
    if (offset > R.NE_DATAPORT && offset !== R.NE_RESET) {
      this.counters.badRegister++;
      return allOnes(size);
    }
    if (size !== 1) {
      this.counters.badWidth++;
      return allOnes(size);
    }
    if (offset === R.NE_CMD) return this.regs.cr;
    return readRegister(this.ctx(), offset);
  }

  private writeInner(region: number, offset: number, size: DevSize, value: number): void {
    if (region !== REGION_REGS || !Number.isInteger(offset) || offset < 0 || offset >= R.NE_BAR_SIZE) {
      this.counters.badRegister++;
      return;
    }
    if (offset === R.NE_DATAPORT) return dataPortWrite(this.ctx(), size, value & allOnes(size));
    if (offset > R.NE_DATAPORT && offset !== R.NE_RESET) {
      this.counters.badRegister++;
      return;
    }
    if (size !== 1) {
      this.counters.badWidth++;
      return;
    }
    if (offset === R.NE_RESET) return; // the end of the reset pulse: nothing to do
    if (offset === R.NE_CMD) return this.writeCommand(value & 0xff);
    writeRegister(this.ctx(), offset, value);
  }

  private writeCommand(v: number): void {
    const r = this.regs;
    r.cr = v;
    if (v & R.E8390_STOP) {
      // The DP8390 sets RST once it has stopped (QEMU leaves ISR alone).
      r.isr |= R.ENISR_RESET;
      r.cr &= ~R.E8390_TRANS; // no transmit while stopped
      return;
    }
    r.isr &= ~R.ENISR_RESET;
    const dir = v & (R.E8390_RREAD | R.E8390_RWRITE);
    // A remote DMA of zero bytes completes at once (QEMU: "zero length transfer").
    if (dir && r.rbcr === 0) r.isr |= R.ENISR_RDC;
    if (v & R.E8390_TRANS) {
      transmit(this.ctx(), (frame) => this.wire.send(frame));
      r.cr &= ~R.E8390_TRANS;
    }
  }

  /** The reset port: the chip stops (CR 0x21), RST set, interrupts masked, loopback, no remote DMA. */
  private softReset(): void {
    const r = this.regs;
    r.cr = R.E8390_NODMA | R.E8390_STOP;
    r.isr |= R.ENISR_RESET;
    r.imr = 0;
    r.tcr = (r.tcr & ~R.ENTCR_LOOPBACK) | 0x02;
    r.rbcr = 0;
  }

  private receiveInner(frame: Uint8Array): RxResult {
    if (!(frame instanceof Uint8Array) || frame.length < R.ETH_ALEN || frame.length > R.ETH_FRAME_MAX_TAGGED) {
      this.counters.rxOversize++;
      return 'oversize';
    }
    if (this.regs.cr & R.E8390_STOP) {
      this.counters.rxDroppedStopped++;
      return 'stopped';
    }
    if (acceptFrame(this.regs, frame) === null) {
      this.counters.rxFiltered++;
      return 'filtered';
    }
    if (this.regs.rcr & R.ENRCR_MON) {
      this.counters.rxMonitor++;
      this.regs.rsr = R.ENRSR_MPA | R.ENRSR_DIS;
      bumpTally(this.regs, CNTR_MISSED);
      return 'monitor';
    }
    return storeFrame(this.ctx(), frame);
  }

  /** The context the register, DMA, ring and transmit functions work on (regs replaced on reset). */
  private ctx(): { regs: Ne2kRegs; mem: NicMemory; counters: Ne2kCounters } {
    const c = this.context;
    c.regs = this.regs;
    return c;
  }

  /** The interrupt line as a function of the registers: any unmasked ISR bit but RST. */
  private syncIrq(): void {
    const level = (this.regs.isr & this.regs.imr & R.ENISR_IRQ_MASK) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.edges.irq.set(level);
    }
  }
}
