import { describe, expect, it } from 'vitest';
import { Bus, BusError, deviceAccess } from '../src/bus.ts';
import type { Access } from '../src/access.ts';
import type { DeviceEdges } from '../src/device.ts';
import { SCRATCH_MAGIC, SCR_DATA0, SCR_DATA1, SCR_ID, ScratchDevice } from '../src/devices/scratch.ts';

const edges = (): DeviceEdges & { levels: boolean[] } => {
  const levels: boolean[] = [];
  return {
    levels,
    irq: { set: (l) => void levels.push(l) },
    dma: { read: async () => null, write: async () => false },
    clock: () => 0,
  };
};

const range = (start: number, end: number, deviceId = 'd', region = 0, regionName = 'regs') => ({ start, end, deviceId, region, regionName });

describe('Bus', () => {
  it('rejects overlapping ranges naming both', () => {
    const bus = new Bus('pio');
    bus.insert(range(0x1f0, 0x1f7, 'ide0', 0, 'cmd'));
    expect(() => bus.insert(range(0x1f7, 0x1f8, 'uart0', 0, 'regs'))).toThrow(BusError);
    expect(() => bus.insert(range(0x1e0, 0x1f0, 'uart0', 0, 'regs'))).toThrow(/0x1e0.*uart0\.regs.*overlaps.*0x1f0, 0x1f7.*ide0\.cmd/);
    expect(() => bus.insert(range(0x1f2, 0x1f3, 'x'))).toThrow(/overlaps/);
    expect(() => bus.insert(range(0x100, 0x300, 'x'))).toThrow(/overlaps/);
    // Adjacent ranges are fine.
    bus.insert(range(0x1e8, 0x1ef, 'a'));
    bus.insert(range(0x1f8, 0x1ff, 'b'));
    expect(bus.list().map((r) => r.deviceId)).toEqual(['a', 'ide0', 'b']);
  });

  it('rejects empty ranges and ports beyond 64 KiB', () => {
    const bus = new Bus('pio');
    expect(() => bus.insert(range(0x1f7, 0x1f0, 'ide0', 0, 'cmd'))).toThrow(/empty pio range for ide0\.cmd: end 0x1f0 is before start 0x1f7/);
    expect(() => bus.insert(range(0xfff0, 0x1000f))).toThrow(/64 KiB/);
    new Bus('mmio').insert(range(0xfeb0_0000, 0xfeb0_0fff));
  });

  it('looks up offsets, counts unmapped and straddling accesses, reads all-ones for them', () => {
    const bus = new Bus('mmio');
    bus.insert(range(0x1000, 0x1fff, 'm', 1, 'mem'));
    bus.insert(range(0x4000, 0x4003, 'n', 0, 'regs'));
    expect(bus.lookup(0x1000)).toEqual({ range: expect.objectContaining({ deviceId: 'm', region: 1 }), offset: 0 });
    expect(bus.lookup(0x1ffc, 4)?.offset).toBe(0xffc);
    expect(bus.lookup(0x1ffe, 4)).toBeUndefined();
    expect(bus.lookup(0x3fff)).toBeUndefined();
    expect(bus.lookup(0x4004)).toBeUndefined();
    const seen: number[] = [];
    const dispatch = (hit: { offset: number }) => {
      seen.push(hit.offset);
      return { value: 7 };
    };
    expect(bus.access({ space: 'mmio', addr: 0x2000, size: 4, dir: 'read' }, dispatch)).toEqual({ value: 0xffff_ffff });
    expect(bus.access({ space: 'mmio', addr: 0x2000, size: 8, dir: 'read' }, dispatch)).toEqual({ value: 0xffff_ffff_ffff_ffffn });
    expect(bus.access({ space: 'mmio', addr: 0x1ffe, size: 4, dir: 'read' }, dispatch)).toEqual({ value: 0xffff_ffff });
    expect(bus.access({ space: 'mmio', addr: 0x2000, size: 1, dir: 'write', value: 1 }, dispatch)).toEqual({ value: 0 });
    expect(bus.access({ space: 'mmio', addr: 0x1010, size: 2, dir: 'read' }, dispatch)).toEqual({ value: 7 });
    expect(seen).toEqual([0x10]);
    expect(bus.unmappedCount).toBe(4);
    bus.removeDevice('m');
    expect(bus.lookup(0x1000)).toBeUndefined();
  });
});

describe('deviceAccess', () => {
  it('reads and writes a scratch device at offsets, sub-dword too', () => {
    const dev = new ScratchDevice(edges());
    expect(deviceAccess(dev, 0, SCR_ID, { space: 'pio', addr: 0, size: 4, dir: 'read' })).toEqual({ value: SCRATCH_MAGIC });
    deviceAccess(dev, 0, SCR_DATA0, { space: 'pio', addr: 0, size: 4, dir: 'write', value: 0x11223344 });
    expect(deviceAccess(dev, 0, SCR_DATA0 + 1, { space: 'pio', addr: 0, size: 2, dir: 'read' })).toEqual({ value: 0x2233 });
    deviceAccess(dev, 0, SCR_DATA0 + 3, { space: 'pio', addr: 0, size: 1, dir: 'write', value: 0xaa });
    expect(deviceAccess(dev, 0, SCR_DATA0, { space: 'pio', addr: 0, size: 4, dir: 'read' })).toEqual({ value: 0xaa223344 });
  });

  it('splits 8-byte accesses low dword first', () => {
    const dev = new ScratchDevice(edges());
    const order: number[] = [];
    const origWrite = dev.write.bind(dev);
    dev.write = (r, o, s, v) => {
      order.push(o);
      origWrite(r, o, s, v);
    };
    deviceAccess(dev, 0, SCR_DATA0, { space: 'mmio', addr: 0, size: 8, dir: 'write', value: 0x0102030405060708n });
    expect(order).toEqual([SCR_DATA0, SCR_DATA1]);
    expect(deviceAccess(dev, 0, SCR_DATA0, { space: 'pio', addr: 0, size: 4, dir: 'read' })).toEqual({ value: 0x05060708 });
    expect(deviceAccess(dev, 0, SCR_DATA1, { space: 'pio', addr: 0, size: 4, dir: 'read' })).toEqual({ value: 0x01020304 });
    expect(deviceAccess(dev, 0, SCR_DATA0, { space: 'mmio', addr: 0, size: 8, dir: 'read' })).toEqual({ value: 0x0102030405060708n });
  });

  it('loops string I/O over a port when the device has no readString, and uses readString when it has', async () => {
    const dev = new ScratchDevice(edges());
    const mem = (acc: Partial<Access>) => deviceAccess(dev, 1, 0x10, { space: 'mmio', addr: 0, size: 2, dir: 'read', ...acc } as Access);
    mem({ dir: 'write', value: 0xbeef });
    const r = mem({ count: 3 });
    expect(r).toEqual({ value: 0, data: new Uint8Array([0xef, 0xbe, 0xef, 0xbe, 0xef, 0xbe]) });
    // A string write loops too: the last element stays.
    mem({ dir: 'write', count: 2, data: new Uint8Array([1, 2, 3, 4]) });
    expect(mem({})).toEqual({ value: 0x0403 });
    // Missing data is the guest's mistake: refused, not thrown.
    expect(mem({ dir: 'write', count: 2 })).toEqual({ value: 0, error: expect.stringMatching(/needs 4 data bytes/) });
    // Fast path and async device reads.
    const calls: number[] = [];
    const asyncDev = {
      ...dev,
      describe: () => dev.describe(),
      read: async (_r: number, _o: number, _s: number) => 0x4142,
      write: () => undefined,
      readString: (_r: number, _o: number, s: number, n: number) => {
        calls.push(n);
        return new Uint8Array(n * s).fill(9);
      },
      reset: () => undefined,
      metrics: () => ({}),
    };
    expect(await deviceAccess(asyncDev, 0, 0, { space: 'pio', addr: 0, size: 2, dir: 'read' })).toEqual({ value: 0x4142 });
    expect(deviceAccess(asyncDev, 0, 0, { space: 'pio', addr: 0, size: 2, dir: 'read', count: 4 })).toEqual({ value: 0, data: new Uint8Array(8).fill(9) });
    expect(calls).toEqual([4]);
    const { readString: _, ...noString } = asyncDev;
    expect(await deviceAccess(noString, 0, 0, { space: 'pio', addr: 0, size: 2, dir: 'read', count: 2 })).toEqual({ value: 0, data: new Uint8Array([0x42, 0x41, 0x42, 0x41]) });
  });
});
