// The shared NIC's physical card, driven by the MUX alone, register by register, as a host
// driver would: promiscuous with every multicast bit set, a receive ring over the whole
// buffer memory, one transmit slot. Guests never touch it; they each have a virtual card.
// Works with any NE2000 Device: our model (synchronous) or QEMU's over qtest (promises).
// Operations are generators that yield each register access's result; the runner (`drive`)
// waits only when an access returned a promise, so on a synchronous card a transmit or a
// drain completes inside the call that started it (like QEMU's transmit inside the CR write)
// and never falls behind the guests. Operations run one at a time, in order, so a drain and
// a transmit never interleave their remote DMA.

import type { Device, DevSize } from '../../device.ts';
import * as R from '../../devices/ne2k/regs.ts';

const TX_PAGE = 0x40; // one 6-page transmit slot
const RX_START = 0x46;
const RX_STOP = 0xc0;
const RCR_ALL = R.ENRCR_AB | R.ENRCR_AM | R.ENRCR_PRO;
const IMR_RX = R.ENISR_RX | R.ENISR_RX_ERR | R.ENISR_OVER;
const POLLS = 1000;
/** Transmits that may wait for a slow (remote) card; more are dropped, as a congested switch port does. */
export const TX_QUEUE_MAX = 256;
const PAGE1 = 1 << R.E8390_PAGE_SHIFT;
const FRAME_MIN = 60;

export interface HostCardCounters {
  /** Frames taken from the physical ring. */
  rxFrames: number;
  /** Frames sent through the physical card (PTX). */
  txFrames: number;
  /** Transmits the card ended with TXE or did not finish. */
  txErrors: number;
  /** Ring headers that made no sense (the ring was resynchronised at CURR). */
  rxBadHeaders: number;
  /** Frames not sent because TX_QUEUE_MAX transmits were already waiting for the card. */
  txDropped: number;
}

/** A register access's result, or a promise of it (a remote card). */
type Io<T> = T | Promise<T>;
/** An operation on the card: yields each access's result, gets it back resolved. */
type Op = Generator<Io<unknown>, void, unknown>;

export class HostCard {
  readonly counters: HostCardCounters = { rxFrames: 0, txFrames: 0, txErrors: 0, rxBadHeaders: 0, txDropped: 0 };
  private readonly queue: Array<() => Op> = [];
  private running = false;
  private idleWaiters: Array<() => void> = [];
  private drainQueued = false;
  private txQueued = 0;
  private closed = false;

  constructor(
    private readonly dev: Device,
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly onError: (e: Error) => void = () => undefined,
  ) {}

  /** Program the card (reset, ring, promiscuous, start). */
  start(): void {
    this.enqueue(() => this.init());
  }

  /** The card's IRQ line went high: drain its ring (once per burst). */
  irq(level: boolean): void {
    if (!level || this.drainQueued || this.closed) return;
    this.drainQueued = true;
    this.enqueue(() => {
      this.drainQueued = false;
      return this.drain();
    });
  }

  /**
   * Put a frame on the wire through the card (at once on a synchronous card, else after what
   * is queued). False when TX_QUEUE_MAX transmits are waiting already: the frame is dropped.
   */
  transmit(frame: Uint8Array): boolean {
    if (this.txQueued >= TX_QUEUE_MAX) {
      this.counters.txDropped++;
      return false;
    }
    this.txQueued++;
    const copy = frame.slice(); // a remote card may read it after the caller's buffer changed
    this.enqueue(() => {
      this.txQueued--;
      return this.send(copy);
    });
    return true;
  }

  /** Resolves when every queued operation has finished. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
  }

  private enqueue(op: () => Op): void {
    this.queue.push(op);
    if (!this.running) this.pump();
  }

  /** Run queued operations; synchronously as long as the card answers synchronously. */
  private pump(): void {
    this.running = true;
    while (this.queue.length > 0) {
      const next = this.queue.shift()!; // length checked
      if (this.closed) continue;
      const pending = this.drive(next());
      if (pending) {
        void pending.then(() => this.pump());
        return;
      }
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Step an operation; null when it finished synchronously, else a promise of its end. */
  private drive(gen: Op, input?: unknown): Promise<void> | null {
    try {
      let r = gen.next(input);
      while (!r.done) {
        if (r.value instanceof Promise) {
          return r.value.then(
            (v) => this.drive(gen, v) ?? undefined,
            (e: Error) => {
              this.onError(e);
            },
          );
        }
        r = gen.next(r.value);
      }
    } catch (e) {
      this.onError(e as Error);
    }
    return null;
  }

  private rd(offset: number, size: DevSize = 1): Io<number> {
    return this.dev.read(0, offset, size);
  }

  private wr(offset: number, value: number, size: DevSize = 1): Io<void> {
    return this.dev.write(0, offset, size, value);
  }

  private *init(): Op {
    yield this.rd(R.NE_RESET);
    yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    const steps: Array<[number, number]> = [
      [R.EN0_DCFG, 0x49],
      [R.EN0_RCNTLO, 0],
      [R.EN0_RCNTHI, 0],
      [R.EN0_RXCR, R.ENRCR_MON],
      [R.EN0_TXCR, 0x02],
      [R.EN0_TPSR, TX_PAGE],
      [R.EN0_STARTPG, RX_START],
      [R.EN0_BOUNDARY, RX_STOP - 1],
      [R.EN0_STOPPG, RX_STOP],
      [R.EN0_ISR, 0xff],
      [R.EN0_IMR, 0],
    ];
    for (const [o, v] of steps) yield this.wr(o, v);
    yield this.wr(R.NE_CMD, R.E8390_NODMA | PAGE1 | R.E8390_STOP);
    for (let i = 0; i < 8; i++) yield this.wr(R.EN1_MULT + i, 0xff);
    yield this.wr(R.EN1_CURPAG, RX_START);
    yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    yield this.wr(R.EN0_ISR, 0xff);
    yield this.wr(R.EN0_IMR, IMR_RX);
    yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    yield this.wr(R.EN0_TXCR, 0);
    yield this.wr(R.EN0_RXCR, RCR_ALL);
  }

  private *remoteRead(addr: number, count: number): Generator<Io<unknown>, Uint8Array, unknown> {
    const n = (count + 3) & ~3;
    yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    yield this.wr(R.EN0_RCNTLO, n & 0xff);
    yield this.wr(R.EN0_RCNTHI, n >> 8);
    yield this.wr(R.EN0_RSARLO, addr & 0xff);
    yield this.wr(R.EN0_RSARHI, addr >> 8);
    yield this.wr(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
    let data: Uint8Array;
    if (this.dev.readString) data = (yield this.dev.readString(0, R.NE_DATAPORT, 4, n >> 2)) as Uint8Array;
    else {
      data = new Uint8Array(n);
      const view = new DataView(data.buffer);
      for (let i = 0; i < n; i += 4) view.setUint32(i, (yield this.rd(R.NE_DATAPORT, 4)) as number, true);
    }
    yield this.wr(R.EN0_ISR, R.ENISR_RDC);
    return data.subarray(0, count);
  }

  private *remoteWrite(addr: number, data: Uint8Array): Op {
    const n = (data.length + 3) & ~3;
    const buf = new Uint8Array(n);
    buf.set(data);
    yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    yield this.wr(R.EN0_RCNTLO, n & 0xff);
    yield this.wr(R.EN0_RCNTHI, n >> 8);
    yield this.wr(R.EN0_RSARLO, addr & 0xff);
    yield this.wr(R.EN0_RSARHI, addr >> 8);
    yield this.wr(R.NE_CMD, R.E8390_RWRITE | R.E8390_START);
    if (this.dev.writeString) yield this.dev.writeString(0, R.NE_DATAPORT, 4, buf);
    else {
      const view = new DataView(buf.buffer);
      for (let i = 0; i < n; i += 4) yield this.wr(R.NE_DATAPORT, view.getUint32(i, true), 4);
    }
    yield this.wr(R.EN0_ISR, R.ENISR_RDC);
  }

  /** Take every frame from BNRY+1 up to CURR; acknowledge first, so a later frame raises the line again. */
  private *drain(): Op {
    yield this.wr(R.EN0_ISR, IMR_RX);
    for (let n = 0; n < RX_STOP - RX_START; n++) {
      yield this.wr(R.NE_CMD, R.E8390_NODMA | PAGE1 | R.E8390_START);
      const curr = (yield this.rd(R.EN1_CURPAG)) as number;
      yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
      let page = ((yield this.rd(R.EN0_BOUNDARY)) as number) + 1;
      if (page >= RX_STOP) page = RX_START;
      if (page === curr) return;
      const h = yield* this.remoteRead(page << 8, 4);
      const count = h[2] | (h[3] << 8);
      const next = h[1];
      const len = count - 4;
      if (next < RX_START || next >= RX_STOP || len < 1 || len > R.ETH_FRAME_MAX_TAGGED) {
        this.counters.rxBadHeaders++;
        yield this.wr(R.EN0_BOUNDARY, curr === RX_START ? RX_STOP - 1 : curr - 1);
        return;
      }
      const frame = yield* this.remoteRead((page << 8) + 4, len);
      yield this.wr(R.EN0_BOUNDARY, next === RX_START ? RX_STOP - 1 : next - 1);
      this.counters.rxFrames++;
      this.onFrame(frame.slice());
    }
  }

  private *send(frame: Uint8Array): Op {
    const data = frame.length < FRAME_MIN ? Uint8Array.from({ length: FRAME_MIN }, (_, i) => frame[i] ?? 0) : frame;
    yield* this.remoteWrite(TX_PAGE << 8, data);
    yield this.wr(R.EN0_TCNTLO, data.length & 0xff);
    yield this.wr(R.EN0_TCNTHI, data.length >> 8);
    yield this.wr(R.EN0_TPSR, TX_PAGE);
    yield this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_START);
    for (let i = 0; i < POLLS; i++) {
      const isr = (yield this.rd(R.EN0_ISR)) as number;
      if (isr & (R.ENISR_TX | R.ENISR_TX_ERR)) {
        yield this.wr(R.EN0_ISR, R.ENISR_TX | R.ENISR_TX_ERR);
        if (isr & R.ENISR_TX) this.counters.txFrames++;
        else this.counters.txErrors++;
        return;
      }
    }
    this.counters.txErrors++;
  }
}
