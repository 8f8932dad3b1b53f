// Framing of the channel protocol: 4-byte little-endian length, then one msgpack map.
// Decoding uses msgpackr. Encoding writes msgpack directly so that every integer is a
// msgpack uint of the smallest width (msgpackr writes bigints below 2^63 as int64, and
// large numbers as float64; PROTOCOL.md asks for uints).

import { Unpackr } from 'msgpackr';
import { MAX_FRAME, type Message, ProtocolError } from './messages.ts';

export { MAX_FRAME, ProtocolError };

class Writer {
  buf: Buffer;
  pos = 4; // the length prefix is filled in at the end

  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  uint(v: number | bigint): void {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`channel encoder: ${v} is not an unsigned integer`);
      this.ensure(9);
      const b = this.buf;
      if (v < 0x80) b[this.pos++] = v;
      else if (v < 0x100) { b[this.pos++] = 0xcc; b[this.pos++] = v; }
      else if (v < 0x10000) { b[this.pos++] = 0xcd; b.writeUInt16BE(v, this.pos); this.pos += 2; }
      else if (v < 0x1_0000_0000) { b[this.pos++] = 0xce; b.writeUInt32BE(v, this.pos); this.pos += 4; }
      else { b[this.pos++] = 0xcf; b.writeBigUInt64BE(BigInt(v), this.pos); this.pos += 8; }
      return;
    }
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new TypeError(`channel encoder: ${v} is not a uint64`);
    if (v < 0x1_0000_0000n) return this.uint(Number(v));
    this.ensure(9);
    this.buf[this.pos++] = 0xcf;
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
  }

  str(s: string): void {
    const len = Buffer.byteLength(s);
    this.ensure(len + 5);
    const b = this.buf;
    if (len < 32) b[this.pos++] = 0xa0 | len;
    else if (len < 0x100) { b[this.pos++] = 0xd9; b[this.pos++] = len; }
    else if (len < 0x10000) { b[this.pos++] = 0xda; b.writeUInt16BE(len, this.pos); this.pos += 2; }
    else { b[this.pos++] = 0xdb; b.writeUInt32BE(len, this.pos); this.pos += 4; }
    this.pos += b.write(s, this.pos);
  }

  bin(d: Uint8Array): void {
    const len = d.length;
    this.ensure(len + 5);
    const b = this.buf;
    if (len < 0x100) { b[this.pos++] = 0xc4; b[this.pos++] = len; }
    else if (len < 0x10000) { b[this.pos++] = 0xc5; b.writeUInt16BE(len, this.pos); this.pos += 2; }
    else { b[this.pos++] = 0xc6; b.writeUInt32BE(len, this.pos); this.pos += 4; }
    b.set(d, this.pos);
    this.pos += len;
  }

  header(kind: 'map' | 'array', n: number): void {
    this.ensure(5);
    const b = this.buf;
    if (n < 16) b[this.pos++] = (kind === 'map' ? 0x80 : 0x90) | n;
    else if (n < 0x10000) { b[this.pos++] = kind === 'map' ? 0xde : 0xdc; b.writeUInt16BE(n, this.pos); this.pos += 2; }
    else { b[this.pos++] = kind === 'map' ? 0xdf : 0xdd; b.writeUInt32BE(n, this.pos); this.pos += 4; }
  }

  value(v: unknown): void {
    if (typeof v === 'number' || typeof v === 'bigint') return this.uint(v);
    if (typeof v === 'string') return this.str(v);
    if (v instanceof Uint8Array) return this.bin(v);
    if (typeof v === 'boolean') return this.byte(v ? 0xc3 : 0xc2);
    if (v === null) return this.byte(0xc0);
    if (Array.isArray(v)) {
      this.header('array', v.length);
      for (const x of v) this.value(x);
      return;
    }
    if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      this.header('map', entries.length);
      for (const [k, x] of entries) {
        this.str(k);
        this.value(x);
      }
      return;
    }
    throw new TypeError(`channel encoder: cannot encode ${typeof v}`);
  }
}

/** One frame (length prefix + msgpack map). Undefined fields are left out. */
export function encodeFrame(msg: Message | Record<string, unknown>): Buffer {
  const w = new Writer(64 + ((msg as { b?: Uint8Array }).b?.length ?? 0));
  w.value(msg);
  const n = w.pos - 4;
  if (n > MAX_FRAME) throw new ProtocolError('oversized', `frame of ${n} bytes exceeds ${MAX_FRAME}`);
  w.buf.writeUInt32LE(n, 0);
  return w.buf.subarray(0, w.pos);
}

/** Encode a raw payload (any bytes) as a frame: for tests and fuzzing. */
export function framePayload(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

/**
 * Streaming decoder: feed chunks as they arrive; it yields each complete, validated
 * message. The first broken frame throws a ProtocolError (after the messages before it
 * were yielded) and the decoder then stays failed: the connection must be closed.
 */
export class FrameDecoder<M> {
  private readonly header = Buffer.alloc(4);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private failed: ProtocolError | null = null;
  /** While held, `feed` stops after the message it yielded and keeps the rest here. */
  private held = false;
  private rest: Buffer | null = null;
  // Per decoder: msgpackr keeps record structures per instance, so one peer cannot affect another.
  private readonly unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

  constructor(
    private readonly validate: (raw: unknown) => M,
    private maxFrame = MAX_FRAME,
  ) {}

  /** The largest frame accepted from now on (a connection's first frame, the hello, is held to less). */
  limit(maxFrame: number): void {
    this.maxFrame = maxFrame;
  }

  /**
   * Stop decoding: `feed` returns after the message it is yielding and keeps the bytes not
   * decoded yet (at most the rest of that one chunk: the caller stops reading its source).
   * The reader of a connection holds it while it must not take more from the peer.
   */
  hold(): void {
    this.held = true;
  }

  /** Decode again; the bytes kept while held come first at the next `feed` (an empty chunk will do). */
  release(): void {
    this.held = false;
  }

  /** Bytes received and kept, not decoded: a partial frame and the rest of a held chunk. */
  get buffered(): number {
    return (this.body ? this.bodyFill : 0) + this.headerFill + (this.rest?.length ?? 0);
  }

  *feed(chunk: Uint8Array): Generator<M, void, undefined> {
    if (this.failed) throw this.failed;
    if (this.rest) {
      chunk = chunk.length === 0 ? this.rest : Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let pos = 0;
    while (pos < chunk.length) {
      if (this.held) {
        // A copy: the chunk may be a slice of a larger buffer that should not stay alive.
        this.rest = Buffer.from(chunk.subarray(pos));
        return;
      }
      if (this.body === null) {
        // Fast path: a whole frame inside this chunk is decoded without copying.
        if (this.headerFill === 0 && chunk.length - pos >= 4) {
          const n = chunk[pos] | (chunk[pos + 1] << 8) | (chunk[pos + 2] << 16) | (chunk[pos + 3] * 0x100_0000);
          this.checkLength(n);
          if (chunk.length - pos - 4 >= n) {
            yield this.decode(chunk.subarray(pos + 4, pos + 4 + n));
            pos += 4 + n;
            continue;
          }
          this.body = Buffer.allocUnsafe(n);
          this.bodyFill = 0;
          pos += 4;
          continue;
        }
        const take = Math.min(4 - this.headerFill, chunk.length - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < 4) return;
        this.headerFill = 0;
        const n = this.header.readUInt32LE(0);
        this.checkLength(n);
        this.body = Buffer.allocUnsafe(n);
        this.bodyFill = 0;
        continue;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - pos);
      this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill === this.body.length) {
        const body = this.body;
        this.body = null;
        yield this.decode(body);
      }
    }
  }

  /** Feed a chunk and collect the messages (convenience over `feed`). */
  push(chunk: Uint8Array): M[] {
    return [...this.feed(chunk)];
  }

  /** True when a frame is partly received. */
  get pending(): boolean {
    return this.body !== null || this.headerFill > 0;
  }

  private checkLength(n: number): void {
    if (n === 0) this.fail(new ProtocolError('malformed', 'frame length 0'));
    if (n > this.maxFrame) this.fail(new ProtocolError('oversized', `frame length ${n} exceeds ${this.maxFrame}`));
  }

  private decode(payload: Uint8Array): M {
    let raw: unknown;
    try {
      raw = this.unpackr.unpack(payload);
    } catch (e) {
      this.fail(new ProtocolError('malformed', `bad msgpack: ${(e as Error)?.message ?? String(e)}`));
    }
    try {
      return this.validate(raw);
    } catch (e) {
      if (e instanceof ProtocolError) this.fail(e);
      // A validator bug must still surface as a protocol error of this connection only.
      this.fail(new ProtocolError('malformed', `invalid message: ${(e as Error)?.message ?? String(e)}`));
    }
  }

  private fail(e: ProtocolError): never {
    this.failed = e;
    throw e;
  }
}
