// The shared NIC's physical card, driven by the MUX alone, register by register, as a host
// driver would: promiscuous with every multicast bit set, a receive ring over the whole
// buffer memory, one transmit slot. Guests never touch it; they each have a virtual card.
// Works with any NE2000 Device: our model (synchronous) or QEMU's over qtest (promises).
// Every operation runs on one chain, so a drain and a transmit never interleave their
// remote DMA.

import type { Device, DevSize } from '../../device.ts';
import * as R from '../../devices/ne2k/regs.ts';

const TX_PAGE = 0x40; // one 6-page transmit slot
const RX_START = 0x46;
const RX_STOP = 0xc0;
const RCR_ALL = R.ENRCR_AB | R.ENRCR_AM | R.ENRCR_PRO;
const IMR_RX = R.ENISR_RX | R.ENISR_RX_ERR | R.ENISR_OVER;
const POLLS = 1000;
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
}

export class HostCard {
  readonly counters: HostCardCounters = { rxFrames: 0, txFrames: 0, txErrors: 0, rxBadHeaders: 0 };
  private chain: Promise<void> = Promise.resolve();
  private drainQueued = false;
  private closed = false;

  constructor(
    private readonly dev: Device,
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly onError: (e: Error) => void = () => undefined,
  ) {}

  /** Program the card (reset, ring, promiscuous, start). Resolves when done. */
  start(): Promise<void> {
    return this.enqueue(() => this.init());
  }

  /** The card's IRQ line went high: drain its ring (once per burst). */
  irq(level: boolean): void {
    if (!level || this.drainQueued || this.closed) return;
    this.drainQueued = true;
    void this.enqueue(async () => {
      this.drainQueued = false;
      await this.drain();
    });
  }

  /** Put a frame on the wire through the card (after any operation in progress). */
  transmit(frame: Uint8Array): Promise<void> {
    const copy = frame.slice();
    return this.enqueue(() => this.send(copy));
  }

  /** Wait for every queued operation. */
  idle(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.closed = true;
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => (this.closed ? undefined : op())).catch((e: Error) => this.onError(e));
    this.chain = next;
    return next;
  }

  private rd(offset: number, size: DevSize = 1): Promise<number> | number {
    return this.dev.read(0, offset, size);
  }

  private wr(offset: number, value: number, size: DevSize = 1): Promise<void> | void {
    return this.dev.write(0, offset, size, value);
  }

  private async init(): Promise<void> {
    await this.rd(R.NE_RESET);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
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
    for (const [o, v] of steps) await this.wr(o, v);
    await this.wr(R.NE_CMD, R.E8390_NODMA | PAGE1 | R.E8390_STOP);
    for (let i = 0; i < 8; i++) await this.wr(R.EN1_MULT + i, 0xff);
    await this.wr(R.EN1_CURPAG, RX_START);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    await this.wr(R.EN0_ISR, 0xff);
    await this.wr(R.EN0_IMR, IMR_RX);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_TXCR, 0);
    await this.wr(R.EN0_RXCR, RCR_ALL);
  }

  private async remoteRead(addr: number, count: number): Promise<Uint8Array> {
    const n = (count + 3) & ~3;
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_RCNTLO, n & 0xff);
    await this.wr(R.EN0_RCNTHI, n >> 8);
    await this.wr(R.EN0_RSARLO, addr & 0xff);
    await this.wr(R.EN0_RSARHI, addr >> 8);
    await this.wr(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
    let data: Uint8Array;
    if (this.dev.readString) data = await this.dev.readString(0, R.NE_DATAPORT, 4, n >> 2);
    else {
      data = new Uint8Array(n);
      const view = new DataView(data.buffer);
      for (let i = 0; i < n; i += 4) view.setUint32(i, await this.rd(R.NE_DATAPORT, 4), true);
    }
    await this.wr(R.EN0_ISR, R.ENISR_RDC);
    return data.subarray(0, count);
  }

  private async remoteWrite(addr: number, data: Uint8Array): Promise<void> {
    const n = (data.length + 3) & ~3;
    const buf = new Uint8Array(n);
    buf.set(data);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_RCNTLO, n & 0xff);
    await this.wr(R.EN0_RCNTHI, n >> 8);
    await this.wr(R.EN0_RSARLO, addr & 0xff);
    await this.wr(R.EN0_RSARHI, addr >> 8);
    await this.wr(R.NE_CMD, R.E8390_RWRITE | R.E8390_START);
    if (this.dev.writeString) await this.dev.writeString(0, R.NE_DATAPORT, 4, buf);
    else {
      const view = new DataView(buf.buffer);
      for (let i = 0; i < n; i += 4) await this.wr(R.NE_DATAPORT, view.getUint32(i, true), 4);
    }
    await this.wr(R.EN0_ISR, R.ENISR_RDC);
  }

  /** Take every frame from BNRY+1 up to CURR; acknowledge first, so a later frame raises the line again. */
  private async drain(): Promise<void> {
    await this.wr(R.EN0_ISR, IMR_RX);
    for (let n = 0; n < RX_STOP - RX_START; n++) {
      await this.wr(R.NE_CMD, R.E8390_NODMA | PAGE1 | R.E8390_START);
      const curr = await this.rd(R.EN1_CURPAG);
      await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
      let page = (await this.rd(R.EN0_BOUNDARY)) + 1;
      if (page >= RX_STOP) page = RX_START;
      if (page === curr) return;
      const h = await this.remoteRead(page << 8, 4);
      const count = h[2] | (h[3] << 8);
      const next = h[1];
      const len = count - 4;
      if (next < RX_START || next >= RX_STOP || len < 1 || len > R.ETH_FRAME_MAX_TAGGED) {
        this.counters.rxBadHeaders++;
        await this.wr(R.EN0_BOUNDARY, curr === RX_START ? RX_STOP - 1 : curr - 1);
        return;
      }
      const frame = await this.remoteRead((page << 8) + 4, len);
      await this.wr(R.EN0_BOUNDARY, next === RX_START ? RX_STOP - 1 : next - 1);
      this.counters.rxFrames++;
      this.onFrame(frame.slice());
    }
  }

  private async send(frame: Uint8Array): Promise<void> {
    const data = frame.length < FRAME_MIN ? Uint8Array.from({ length: FRAME_MIN }, (_, i) => frame[i] ?? 0) : frame;
    await this.remoteWrite(TX_PAGE << 8, data);
    await this.wr(R.EN0_TCNTLO, data.length & 0xff);
    await this.wr(R.EN0_TCNTHI, data.length >> 8);
    await this.wr(R.EN0_TPSR, TX_PAGE);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_START);
    for (let i = 0; i < POLLS; i++) {
      const isr = await this.rd(R.EN0_ISR);
      if (isr & (R.ENISR_TX | R.ENISR_TX_ERR)) {
        await this.wr(R.EN0_ISR, R.ENISR_TX | R.ENISR_TX_ERR);
        if (isr & R.ENISR_TX) this.counters.txFrames++;
        else this.counters.txErrors++;
        return;
      }
    }
    this.counters.txErrors++;
  }
}
