// The bus owns addresses; devices see offsets (Firecracker `Bus::insert`, vm-device).
// One Bus per address space (pio, mmio) maps inclusive [start, end] ranges to a device
// region. `deviceAccess` performs an access on a device model: it splits 8-byte accesses
// into two 4-byte ones (low first) and runs string I/O through readString/writeString or
// a loop, so routers (pass-through, MUX) share one implementation.

import { type Access, type Reply, deniedReply, hex } from './access.ts';
import type { DevSize, Device } from './device.ts';

export type BusSpace = 'pio' | 'mmio';

export interface BusRange {
  /** First address of the range. */
  start: number;
  /** Last address of the range (inclusive). */
  end: number;
  deviceId: string;
  /** Index into the device's describe().regions. */
  region: number;
  regionName: string;
}

export interface BusHit {
  range: BusRange;
  /** Address minus range start: what the device sees. */
  offset: number;
}

/** A host-side mistake in the machine layout (overlap, empty range): thrown at registration. */
export class BusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BusError';
  }
}

function describeRange(space: BusSpace, r: BusRange): string {
  return `${space} [${hex(r.start)}, ${hex(r.end)}] (${r.deviceId}.${r.regionName})`;
}

export class Bus {
  /** Sorted by start; never overlapping. */
  private readonly ranges: BusRange[] = [];
  private missed = 0;

  constructor(readonly space: BusSpace) {}

  /** Map a range. Rejects empty, negative and overlapping ranges with an error naming both sides. */
  insert(range: BusRange): void {
    const { start, end } = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0) {
      throw new BusError(`bad ${this.space} range for ${range.deviceId}.${range.regionName}: start ${start}, end ${end}`);
    }
    if (end < start) {
      throw new BusError(`empty ${this.space} range for ${range.deviceId}.${range.regionName}: end ${hex(end)} is before start ${hex(start)}`);
    }
    if (this.space === 'pio' && end > 0xffff) {
      throw new BusError(`${describeRange(this.space, range)} is beyond the 64 KiB port space`);
    }
    const i = this.firstEndingAtOrAfter(start);
    const next = this.ranges[i];
    if (next && next.start <= end) {
      throw new BusError(`${describeRange(this.space, range)} overlaps ${describeRange(this.space, next)}`);
    }
    this.ranges.splice(i, 0, { ...range });
  }

  /** Unmap every range of a device. */
  removeDevice(deviceId: string): void {
    for (let i = this.ranges.length - 1; i >= 0; i--) if (this.ranges[i].deviceId === deviceId) this.ranges.splice(i, 1);
  }

  /** The range holding [addr, addr+size), or undefined. Does not count misses. */
  lookup(addr: number, size = 1): BusHit | undefined {
    const r = this.ranges[this.firstEndingAtOrAfter(addr)];
    if (!r || r.start > addr || addr + size - 1 > r.end) return undefined;
    return { range: r, offset: addr - r.start };
  }

  /** Like lookup, for a guest access: a miss (nothing mapped, or straddling a range end) is counted. */
  resolve(acc: Access): BusHit | undefined {
    const hit = this.lookup(acc.addr, acc.size);
    if (!hit) this.missed++;
    return hit;
  }

  /** Resolve and dispatch; an access hitting nothing reads all-ones (writes are dropped). */
  access(acc: Access, dispatch: (hit: BusHit, acc: Access) => Reply | Promise<Reply>): Reply | Promise<Reply> {
    const hit = this.resolve(acc);
    return hit ? dispatch(hit, acc) : deniedReply(acc);
  }

  /** Accesses that hit nothing. */
  get unmappedCount(): number {
    return this.missed;
  }

  list(): readonly BusRange[] {
    return this.ranges;
  }

  /** Binary search: index of the first range whose end >= addr. */
  private firstEndingAtOrAfter(addr: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ranges[mid].end < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const MASKS = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff } as const;

function maskValue(v: number, size: DevSize): number {
  return size === 4 ? v >>> 0 : v & MASKS[size];
}

/** Continue with f on x, synchronously when x is not a promise (keeps the model path sync). */
function then<T, U>(x: T | Promise<T>, f: (t: T) => U | Promise<U>): U | Promise<U> {
  return x instanceof Promise ? x.then(f) : f(x);
}

function readOne(dev: Device, region: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint | Promise<number | bigint> {
  if (size !== 8) return then(dev.read(region, offset, size), (v) => maskValue(v, size));
  return then(dev.read(region, offset, 4), (lo) =>
    then(dev.read(region, offset + 4, 4), (hi) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)),
  );
}

function writeOne(dev: Device, region: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void | Promise<void> {
  if (size !== 8) return dev.write(region, offset, size, maskValue(Number(BigInt.asUintN(size * 8, BigInt(value))), size));
  const v = BigInt.asUintN(64, BigInt(value));
  return then(dev.write(region, offset, 4, Number(v & 0xffff_ffffn)), () => dev.write(region, offset + 4, 4, Number(v >> 32n)));
}

function putElement(buf: Uint8Array, i: number, size: number, v: number | bigint): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (size === 8) view.setBigUint64(i * 8, BigInt(v), true);
  else if (size === 4) view.setUint32(i * 4, Number(v), true);
  else if (size === 2) view.setUint16(i * 2, Number(v), true);
  else view.setUint8(i, Number(v));
}

function getElement(buf: Uint8Array, i: number, size: number): number | bigint {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (size === 8) return view.getBigUint64(i * 8, true);
  if (size === 4) return view.getUint32(i * 4, true);
  if (size === 2) return view.getUint16(i * 2, true);
  return view.getUint8(i);
}

/**
 * Perform one guest access on a device region at `offset`. Returns synchronously when the
 * device model does. String I/O repeats at the same offset (a port), as `rep insw` does.
 * A string write without `count*size` bytes of data is the guest's mistake: it is refused
 * with an error in the reply, not thrown.
 */
export function deviceAccess(dev: Device, region: number, offset: number, acc: Access): Reply | Promise<Reply> {
  const count = acc.count ?? 1;
  const size = acc.size;
  if (count <= 1) {
    if (acc.dir === 'read') return then(readOne(dev, region, offset, size), (value) => ({ value }));
    return then(writeOne(dev, region, offset, size, acc.value ?? 0), () => ({ value: 0 }));
  }
  const bytes = count * size;
  if (acc.dir === 'read') {
    if (dev.readString && size !== 8) return then(dev.readString(region, offset, size, count), (data) => ({ value: 0, data }));
    const data = new Uint8Array(bytes);
    const loop = (i: number): Reply | Promise<Reply> => {
      for (; i < count; i++) {
        const v = readOne(dev, region, offset, size);
        if (v instanceof Promise) {
          const at = i;
          return v.then((x) => {
            putElement(data, at, size, x);
            return loop(at + 1);
          });
        }
        putElement(data, i, size, v);
      }
      return { value: 0, data };
    };
    return loop(0);
  }
  const data = acc.data;
  if (!data || data.length !== bytes) {
    return deniedReply(acc, `string write of ${count}x${size} needs ${bytes} data bytes, got ${data?.length ?? 0}`);
  }
  if (dev.writeString && size !== 8) return then(dev.writeString(region, offset, size, data), () => ({ value: 0 }));
  const loop = (i: number): Reply | Promise<Reply> => {
    for (; i < count; i++) {
      const r = writeOne(dev, region, offset, size, getElement(data, i, size));
      if (r instanceof Promise) {
        const at = i;
        return r.then(() => loop(at + 1));
      }
    }
    return { value: 0 };
  };
  return loop(0);
}
