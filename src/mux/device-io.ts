// Device access for the engine: one MuxAccess to the device, sync when the device is sync
// (the hot path), through promises when it is remote. String I/O uses the device's
// readString/writeString when it has them, else one access per element.

import type { Device } from '../device.ts';
import type { MuxAccess } from './define.ts';

export type MaybePromise<T> = T | Promise<T>;

export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T>)?.then === 'function';
}

/** What the device answered: the value for the classifier (read, or written), and string data. */
export interface DeviceAnswer {
  value: number;
  data?: Uint8Array;
}

/** Perform `m` on the device. */
export function deviceAccess(dev: Device, m: MuxAccess): MaybePromise<DeviceAnswer> {
  if (m.dir === 'write') {
    let w: MaybePromise<void>;
    if (m.count > 1 && m.data) w = dev.writeString ? dev.writeString(m.region, m.offset, m.size, m.data) : writeLoop(dev, m);
    else w = dev.write(m.region, m.offset, m.size, m.value);
    const done: DeviceAnswer = { value: m.value };
    return isPromise(w) ? w.then(() => done) : done;
  }
  if (m.count > 1) {
    const d = dev.readString ? dev.readString(m.region, m.offset, m.size, m.count) : readLoop(dev, m);
    // The classifier sees the last element (a status read in a loop ends on the final value).
    const done = (data: Uint8Array): DeviceAnswer => ({ value: lastElement(data, m.size), data });
    return isPromise(d) ? d.then(done) : done(d);
  }
  const v = dev.read(m.region, m.offset, m.size);
  return isPromise(v) ? v.then((x) => ({ value: x })) : { value: v };
}

function writeLoop(dev: Device, m: MuxAccess): MaybePromise<void> {
  const data = m.data!;
  let chain: MaybePromise<void> = undefined;
  for (let i = 0; i < m.count; i++) {
    const v = readLE(data, i * m.size, m.size);
    chain = isPromise(chain) ? chain.then(() => dev.write(m.region, m.offset, m.size, v)) : dev.write(m.region, m.offset, m.size, v);
  }
  return chain;
}

function readLoop(dev: Device, m: MuxAccess): MaybePromise<Uint8Array> {
  const out = new Uint8Array(m.count * m.size);
  const one = (i: number): MaybePromise<void> => {
    const v = dev.read(m.region, m.offset, m.size);
    return isPromise(v) ? v.then((x) => writeLE(out, i * m.size, m.size, x)) : writeLE(out, i * m.size, m.size, v);
  };
  let chain: MaybePromise<void> = undefined;
  for (let i = 0; i < m.count; i++) chain = isPromise(chain) ? chain.then(() => one(i)) : one(i);
  return isPromise(chain) ? chain.then(() => out) : out;
}

export function readLE(b: Uint8Array, at: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + b[at + i];
  return v;
}

export function writeLE(b: Uint8Array, at: number, size: number, v: number): void {
  for (let i = 0; i < size; i++) {
    b[at + i] = v & 0xff;
    v = Math.floor(v / 256);
  }
}

function lastElement(data: Uint8Array, size: number): number {
  return data.length >= size ? readLE(data, data.length - size, size) : 0;
}
