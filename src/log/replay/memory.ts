// A replayed guest's DMA memory, answered from its log: what the device read from guest memory
// in the recorded run (DMA `read` events, bytes in full) is handed out again in the order it
// was recorded. Devices read in their own pieces (one PRD entry at a time, the whole table, a
// buffer before a transfer into it), so recorded reads are applied lazily, within a window of
// the log: everything recorded before the access being replayed is applied (catchUp); a read
// of [a, a+len) also applies the recorded reads up to the first one that overlaps it, but only
// those recorded before the guest's next write (the end of the transfer its accesses started).
// Reads answer from the memory image. What the replayed device writes lands in the image too,
// so it can be compared with the recorded DMA writes (length and CRC).

import type { GuestMemory } from '../../guest-link.ts';
import { crcHex } from '../digest.ts';

export interface RecordedDma {
  addr: number;
  bytes: Uint8Array;
  /** The event's line (record number) in the log. */
  line: number;
}

const PAGE = 4096;

export class ReplayMemory implements GuestMemory {
  readonly base = 0;
  readonly size = 2 ** 32;
  private readonly pages = new Map<number, Uint8Array>();
  private cursor = 0;
  /** Lazy reads apply recorded reads from before this line only. */
  limit = Infinity;

  constructor(private readonly reads: RecordedDma[]) {}

  /** Apply every recorded read from before `line`. */
  catchUp(line: number): void {
    for (; this.cursor < this.reads.length && this.reads[this.cursor].line < line; this.cursor++) this.put(this.reads[this.cursor].addr, this.reads[this.cursor].bytes);
  }

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
    for (let k = this.cursor; k < this.reads.length && this.reads[k].line < this.limit; k++) {
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
