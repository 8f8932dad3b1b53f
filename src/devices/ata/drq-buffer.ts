// The data block of a PIO data phase (DRQ set): what the data port reads or fills; and the
// element-by-element form of string I/O for registers other than the data port.

import type { DevSize } from '../../device.ts';

export class DrqBuffer {
  phase: 'in' | 'out' | null = null;
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;

  /** Device-to-host block (read, IDENTIFY). */
  startIn(data: Uint8Array): void {
    this.buf = data;
    this.pos = 0;
    this.phase = 'in';
  }

  /** Host-to-device block of `bytes`. */
  startOut(bytes: number): void {
    this.buf = new Uint8Array(bytes);
    this.pos = 0;
    this.phase = 'out';
  }

  clear(): void {
    this.phase = null;
    this.buf = new Uint8Array(0);
    this.pos = 0;
  }

  /** The block (the filled data once an 'out' block is full). */
  get data(): Uint8Array {
    return this.buf;
  }

  /** Fast path of a single 16-bit `in`: the word, or -1 when not in an 'in' phase with 2 bytes left. */
  readWord(): number {
    if (this.phase !== 'in' || this.pos + 2 > this.buf.length) return -1;
    const v = this.buf[this.pos] | (this.buf[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }

  /** Fast path of a single 16-bit `out` (`rep outsw` traps once per word): false when it does not fit. */
  writeWord(v: number): boolean {
    if (this.phase !== 'out' || this.pos + 2 > this.buf.length) return false;
    this.buf[this.pos] = v & 0xff;
    this.buf[this.pos + 1] = (v >>> 8) & 0xff;
    this.pos += 2;
    return true;
  }

  /** Copies up to `len` bytes out into `out` at `at`; returns the count. */
  readInto(out: Uint8Array, at: number, len: number): number {
    if (this.phase !== 'in') return 0;
    const n = Math.min(len, this.buf.length - this.pos);
    out.set(this.buf.subarray(this.pos, this.pos + n), at);
    this.pos += n;
    return n;
  }

  /** Copies up to the rest of the block from `src`; returns the count. */
  writeFrom(src: Uint8Array): number {
    if (this.phase !== 'out') return 0;
    const n = Math.min(src.length, this.buf.length - this.pos);
    this.buf.set(src.subarray(0, n), this.pos);
    this.pos += n;
    return n;
  }

  /** The whole block went through the data port. */
  get full(): boolean {
    return this.phase !== null && this.pos === this.buf.length;
  }
}

/** `rep ins` on an ordinary register: `count` single reads, little-endian elements. */
export function readElements(read: (size: DevSize) => number, size: DevSize, count: number): Uint8Array {
  const out = new Uint8Array(count * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const v = read(size);
    if (size === 1) out[i] = v;
    else if (size === 2) view.setUint16(i * 2, v, true);
    else view.setUint32(i * 4, v, true);
  }
  return out;
}

/** `rep outs` on an ordinary register: one write per element. */
export function writeElements(write: (size: DevSize, value: number) => void, size: DevSize, data: Uint8Array): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + size <= data.length; i += size) {
    write(size, size === 1 ? data[i] : size === 2 ? view.getUint16(i, true) : view.getUint32(i, true));
  }
}
