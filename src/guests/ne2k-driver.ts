// A scripted NE2000 driver that does, register for register, what Linux's ne2k-pci does
// (drivers/net/ethernet/8390/ne2k-pci.c and lib8390.c): the probe (reset, the 8390 check,
// the PROM read in word mode), NS8390_init, ei_start_xmit with ne2k_pci_block_output and
// NS8390_trigger_send, ei_receive with ne2k_pci_get_8390_hdr and ne2k_pci_block_input.
// It drives any Device (our model or QEMU's over qtest), so tests can compare the two.

import type { Device, DevSize } from '../device.ts';
import * as R from '../devices/ne2k/regs.ts';

export const TX_START_PAGE = 0x40; // NESM_START_PG: two 6-page transmit slots
export const TX_PAGES = 12;
export const RX_START_PAGE = TX_START_PAGE + TX_PAGES; // 0x4C
export const STOP_PAGE = 0x80; // NESM_STOP_PG
export const E8390_RXCONFIG = 0x04; // accept broadcast
export const E8390_RXOFF = 0x20; // monitor
export const E8390_TXCONFIG = 0x00;
export const E8390_TXOFF = 0x02; // loopback
export const DCR_WORD = 0x49; // 0x48 | WTS

export interface Received {
  status: number;
  next: number;
  count: number;
  frame: Uint8Array;
  page: number;
}

export class Ne2kDriver {
  rxStart = RX_START_PAGE;
  stopPage = STOP_PAGE;
  currentPage = RX_START_PAGE;
  /** Transmit slot to use next (Linux alternates 0x40 and 0x46 when both are free). */
  txSlot = 0;
  /** Frames ei_receive counted as errors (bad header, bad size, bad status) instead of reading. */
  rxErrors = 0;
  /** Polls of ISR.RDC / ISR.RST before giving up (Linux waits 2 jiffies). */
  pollLimit = 1000;

  constructor(
    readonly dev: Device,
    readonly region = 0,
  ) {}

  rd(offset: number, size: DevSize = 1): Promise<number> {
    return Promise.resolve(this.dev.read(this.region, offset, size));
  }

  wr(offset: number, value: number, size: DevSize = 1): Promise<void> {
    return Promise.resolve(this.dev.write(this.region, offset, size, value));
  }

  async insl(count: number): Promise<Uint8Array> {
    if (this.dev.readString) return Promise.resolve(this.dev.readString(this.region, R.NE_DATAPORT, 4, count));
    const out = new Uint8Array(count * 4);
    const view = new DataView(out.buffer);
    for (let i = 0; i < count; i++) view.setUint32(i * 4, await this.rd(R.NE_DATAPORT, 4), true);
    return out;
  }

  async outsl(data: Uint8Array): Promise<void> {
    if (this.dev.writeString) return Promise.resolve(this.dev.writeString(this.region, R.NE_DATAPORT, 4, data));
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i + 4 <= data.length; i += 4) await this.wr(R.NE_DATAPORT, view.getUint32(i, true), 4);
  }

  /** ne2k_pci_reset_8390: read-and-write the reset port, wait for ISR.RST, acknowledge it. */
  async reset(): Promise<boolean> {
    await this.wr(R.NE_RESET, await this.rd(R.NE_RESET));
    for (let i = 0; i < this.pollLimit; i++) {
      if ((await this.rd(R.EN0_ISR)) & R.ENISR_RESET) {
        await this.wr(R.EN0_ISR, R.ENISR_RESET);
        return true;
      }
    }
    return false;
  }

  /** ne2k_pci_init_one's probe: the 8390 check, reset, and the PROM read. Returns the MAC. */
  async probe(): Promise<Uint8Array> {
    if ((await this.rd(R.NE_CMD)) === 0xff) throw new Error('ne2k probe: CR reads 0xFF');
    await this.wr(R.NE_CMD, R.E8390_NODMA | 0x40 | R.E8390_STOP);
    const regd = await this.rd(0x0d);
    await this.wr(0x0d, 0xff);
    await this.wr(R.NE_CMD, R.E8390_NODMA);
    await this.rd(R.EN0_COUNTER0);
    if ((await this.rd(R.EN0_COUNTER0)) !== 0) throw new Error(`ne2k probe: CNTR0 not cleared by a read (MAR5 was ${regd})`);
    await this.wr(R.NE_RESET, await this.rd(R.NE_RESET));
    let reset = false;
    for (let i = 0; i < this.pollLimit && !reset; i++) reset = ((await this.rd(R.EN0_ISR)) & R.ENISR_RESET) !== 0;
    if (!reset) throw new Error('ne2k probe: no reset ack');
    await this.wr(R.EN0_ISR, 0xff);
    const seq: Array<[number, number]> = [
      [R.E8390_NODMA | R.E8390_STOP, R.NE_CMD],
      [DCR_WORD, R.EN0_DCFG],
      [0x00, R.EN0_RCNTLO],
      [0x00, R.EN0_RCNTHI],
      [0x00, R.EN0_IMR],
      [0xff, R.EN0_ISR],
      [E8390_RXOFF, R.EN0_RXCR],
      [E8390_TXOFF, R.EN0_TXCR],
      [32, R.EN0_RCNTLO],
      [0x00, R.EN0_RCNTHI],
      [0x00, R.EN0_RSARLO],
      [0x00, R.EN0_RSARHI],
      [R.E8390_RREAD | R.E8390_START, R.NE_CMD],
    ];
    for (const [v, o] of seq) await this.wr(o, v);
    const prom = new Uint8Array(32);
    for (let i = 0; i < 32; i++) prom[i] = await this.rd(R.NE_DATAPORT);
    return prom.slice(0, 6);
  }

  /** NS8390_init(dev, startp) with ne2k-pci's ring; `rcr` as do_set_multicast_list would set it. */
  async init(mac: Uint8Array, opts: { start?: boolean; rcr?: number; mar?: number[] } = {}): Promise<void> {
    const start = opts.start ?? true;
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    await this.wr(R.EN0_DCFG, DCR_WORD);
    await this.wr(R.EN0_RCNTLO, 0);
    await this.wr(R.EN0_RCNTHI, 0);
    await this.wr(R.EN0_RXCR, E8390_RXOFF);
    await this.wr(R.EN0_TXCR, E8390_TXOFF);
    await this.wr(R.EN0_TPSR, TX_START_PAGE);
    await this.wr(R.EN0_STARTPG, this.rxStart);
    await this.wr(R.EN0_BOUNDARY, this.stopPage - 1);
    this.currentPage = this.rxStart;
    await this.wr(R.EN0_STOPPG, this.stopPage);
    await this.wr(R.EN0_ISR, 0xff);
    await this.wr(R.EN0_IMR, 0x00);
    await this.wr(R.NE_CMD, R.E8390_NODMA | 0x40 | R.E8390_STOP);
    for (let i = 0; i < 6; i++) {
      await this.wr(R.EN1_PHYS + i, mac[i]);
      if ((await this.rd(R.EN1_PHYS + i)) !== mac[i]) throw new Error(`ne2k init: PAR${i} mismap`);
    }
    await this.wr(R.EN1_CURPAG, this.rxStart);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
    this.txSlot = 0;
    if (!start) return;
    await this.wr(R.EN0_ISR, 0xff);
    await this.wr(R.EN0_IMR, 0x3f); // ENISR_ALL
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_TXCR, E8390_TXCONFIG);
    await this.wr(R.EN0_RXCR, E8390_RXCONFIG);
    await this.setMulticast(opts.rcr ?? E8390_RXCONFIG, opts.mar ?? new Array<number>(8).fill(0));
  }

  /** do_set_multicast_list: MAR on page 1 (read back), then RCR on page 0. */
  async setMulticast(rcr: number, mar: number[]): Promise<void> {
    await this.wr(R.NE_CMD, R.E8390_NODMA | 0x40);
    for (let i = 0; i < 8; i++) {
      await this.wr(R.EN1_MULT + i, mar[i]);
      if ((await this.rd(R.EN1_MULT + i)) !== mar[i]) throw new Error(`ne2k: multicast filter read/write mismap ${i}`);
    }
    await this.wr(R.NE_CMD, R.E8390_NODMA);
    await this.wr(R.EN0_RXCR, rcr);
  }

  /** ne2k_pci_block_output: remote-write `data` at page `startPage`, wait for RDC, acknowledge. */
  async blockOutput(data: Uint8Array, startPage: number): Promise<boolean> {
    let count = data.length;
    if (count & 1) count++;
    const buf = new Uint8Array(count + 4);
    buf.set(data);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_RCNTLO, count & 0xff);
    await this.wr(R.EN0_RCNTHI, count >> 8);
    await this.wr(R.EN0_RSARLO, 0);
    await this.wr(R.EN0_RSARHI, startPage);
    await this.wr(R.NE_CMD, R.E8390_RWRITE | R.E8390_START);
    await this.outsl(buf.subarray(0, count & ~3));
    if (count & 2) await this.wr(R.NE_DATAPORT, buf[count & ~3] | (buf[(count & ~3) + 1] << 8), 2);
    let done = false;
    for (let i = 0; i < this.pollLimit && !done; i++) done = ((await this.rd(R.EN0_ISR)) & R.ENISR_RDC) !== 0;
    await this.wr(R.EN0_ISR, R.ENISR_RDC);
    return done;
  }

  /** ei_start_xmit: pad to 60, upload to a transmit slot, trigger the send. Returns TSR after PTX/TXE. */
  async send(frame: Uint8Array): Promise<{ isr: number; tsr: number }> {
    const data = frame.length < R.ETH_ZLEN ? Uint8Array.from({ length: R.ETH_ZLEN }, (_, i) => frame[i] ?? 0) : frame;
    await this.wr(R.EN0_IMR, 0);
    const page = TX_START_PAGE + (this.txSlot ? TX_PAGES / 2 : 0);
    this.txSlot ^= 1;
    if (!(await this.blockOutput(data, page))) throw new Error('ne2k send: timeout waiting for Tx RDC');
    await this.wr(R.NE_CMD, R.E8390_NODMA);
    if ((await this.rd(R.NE_CMD)) & R.E8390_TRANS) throw new Error('ne2k send: transmitter busy');
    await this.wr(R.EN0_TCNTLO, data.length & 0xff);
    await this.wr(R.EN0_TCNTHI, data.length >> 8);
    await this.wr(R.EN0_TPSR, page);
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_TRANS | R.E8390_START);
    await this.wr(R.EN0_IMR, 0x3f);
    const isr = await this.rd(R.EN0_ISR);
    const tsr = await this.rd(R.EN0_TSR);
    await this.wr(R.EN0_ISR, isr & (R.ENISR_TX | R.ENISR_TX_ERR));
    return { isr, tsr };
  }

  /** ne2k_pci_get_8390_hdr: 4 bytes at the page through one inl. */
  async getHeader(page: number): Promise<{ status: number; next: number; count: number }> {
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_RCNTLO, 4);
    await this.wr(R.EN0_RCNTHI, 0);
    await this.wr(R.EN0_RSARLO, 0);
    await this.wr(R.EN0_RSARHI, page);
    await this.wr(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
    const h = await this.rd(R.NE_DATAPORT, 4);
    await this.wr(R.EN0_ISR, R.ENISR_RDC);
    return { status: h & 0xff, next: (h >>> 8) & 0xff, count: h >>> 16 };
  }

  /** ne2k_pci_block_input: `count` bytes from ring offset, insl plus a 16-bit and an 8-bit tail. */
  async blockInput(count: number, ringOffset: number): Promise<Uint8Array> {
    await this.wr(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
    await this.wr(R.EN0_RCNTLO, count & 0xff);
    await this.wr(R.EN0_RCNTHI, count >> 8);
    await this.wr(R.EN0_RSARLO, ringOffset & 0xff);
    await this.wr(R.EN0_RSARHI, ringOffset >> 8);
    await this.wr(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
    const out = new Uint8Array(count);
    out.set(await this.insl(count >> 2));
    let at = count & ~3;
    if (count & 2) {
      const w = await this.rd(R.NE_DATAPORT, 2);
      out[at++] = w & 0xff;
      out[at++] = w >> 8;
    }
    if (count & 1) out[at] = await this.rd(R.NE_DATAPORT, 1);
    await this.wr(R.EN0_ISR, R.ENISR_RDC);
    return out;
  }

  /** ei_receive: take every frame from BNRY+1 up to CURR (at most 9 per call, as Linux). */
  async receive(): Promise<Received[]> {
    const got: Received[] = [];
    const numPages = this.stopPage - this.rxStart;
    for (let n = 1; n < 10; n++) {
      await this.wr(R.NE_CMD, R.E8390_NODMA | 0x40);
      const rxing = await this.rd(R.EN1_CURPAG);
      await this.wr(R.NE_CMD, R.E8390_NODMA);
      let thisFrame = (await this.rd(R.EN0_BOUNDARY)) + 1;
      if (thisFrame >= this.stopPage) thisFrame = this.rxStart;
      if (thisFrame === rxing) break;
      const hdr = await this.getHeader(thisFrame);
      const pktLen = hdr.count - 4;
      let next = thisFrame + 1 + ((pktLen + 4) >> 8);
      if (hdr.next !== next && hdr.next !== next + 1 && hdr.next !== next - numPages && hdr.next !== next + 1 - numPages) {
        // Linux: "mismatched read page pointers": resynchronise at CURR, count an error, go on.
        this.rxErrors++;
        this.currentPage = rxing;
        await this.wr(R.EN0_BOUNDARY, this.currentPage - 1);
        continue;
      }
      if (pktLen < 60 || pktLen > 1518) this.rxErrors++; // bogus packet size
      else if ((hdr.status & 0x0f) === R.ENRSR_RXOK) {
        const frame = await this.blockInput(pktLen, (thisFrame << 8) + 4);
        got.push({ ...hdr, frame, page: thisFrame });
      } else this.rxErrors++;
      next = hdr.next;
      if (next >= this.stopPage) next = this.rxStart;
      this.currentPage = next;
      await this.wr(R.EN0_BOUNDARY, next - 1);
    }
    await this.wr(R.EN0_ISR, R.ENISR_RX | R.ENISR_RX_ERR);
    return got;
  }
}

/** An Ethernet frame: dst, src, ethertype 0x88B5 (local experimental), payload bytes. */
export function ethFrame(dst: Uint8Array | number[], src: Uint8Array | number[], payloadLen: number, seed = 1): Uint8Array {
  const f = new Uint8Array(14 + payloadLen);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  for (let i = 0; i < payloadLen; i++) f[14 + i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return f;
}

export const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
