// A replayed guest's DMA memory, answered from its log: what the device read from guest memory
// in the recorded run (DMA `read` events, bytes in full) is handed out again in the order it
// was recorded. Devices read in their own pieces (one PRD entry at a time, or the whole table),
// so recorded reads are applied lazily: a read of [a, a+len) applies the recorded reads from
// the cursor up to the first one that overlaps it, then answers from the memory image. What
// the replayed device writes lands in the image too, so it can be compared with the recorded
// DMA writes (length and CRC).

import type { GuestMemory } from '../../guest-link.ts';
import { crcHex } from '../digest.ts';

export interface RecordedDma {
  addr: number;
  bytes: Uint8Array;
}

const PAGE = 4096;

export class ReplayMemory implements GuestMemory {
  readonly base = 0;
  readonly size = 2 ** 32;
  private readonly pages = new Map<number, Uint8Array>();
  private cursor = 0;

  constructor(private readonly reads: RecordedDma[]) {}

  private page(n: number): Uint8Array {
    let p = this.pages.get(n);
    if (!p) this.pages.set(n, (p = new Uint8Array(PAGE)));
    return p;
  }

  private put(addr: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; ) {
      const a = addr + i;
      const off = a % PAGE;
      const n = Math.min(PAGE - off, data.length - i);
      this.page(Math.floor(a / PAGE)).set(data.subarray(i, i + n), off);
      i += n;
    }
  }

  get(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; ) {
      const a = addr + i;
      const off = a % PAGE;
      const n = Math.min(PAGE - off, len - i);
      const p = this.pages.get(Math.floor(a / PAGE));
      if (p) out.set(p.subarray(off, off + n), i);
      i += n;
    }
    return out;
  }

  async read(addr: number, len: number): Promise<Uint8Array | null> {
    for (let k = this.cursor; k < this.reads.length; k++) {
      const r = this.reads[k];
      if (r.addr < addr + len && addr < r.addr + r.bytes.length) {
        for (let j = this.cursor; j <= k; j++) this.put(this.reads[j].addr, this.reads[j].bytes);
        this.cursor = k + 1;
        break;
      }
    }
    return this.get(addr, len);
  }

  async write(addr: number, data: Uint8Array): Promise<boolean> {
    this.put(addr, data);
    return true;
  }

  crc(addr: number, len: number): string {
    return crcHex(this.get(addr, len));
  }
}
