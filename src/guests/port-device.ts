// A guest's view of a device behind the supervisor as a Device: register accesses at an I/O
// base become the guest's port accesses (grant check, router, virtual card). Lets a driver
// written against a Device (src/guests/ne2k-driver.ts) run as a scripted guest.

import type { Device, DeviceDescription, DevSize } from '../device.ts';
import type { GuestPort } from './port.ts';

export class PortDevice implements Device {
  constructor(
    private readonly port: GuestPort,
    readonly base: number,
  ) {}

  describe(): DeviceDescription {
    return { kind: 'guest-port', regions: [{ name: 'regs', space: 'pio', size: 0x20 }], properties: [] };
  }

  async read(_region: number, offset: number, size: DevSize): Promise<number> {
    return Number((await this.port.access({ space: 'pio', addr: this.base + offset, size, dir: 'read' })).value);
  }

  async write(_region: number, offset: number, size: DevSize, value: number): Promise<void> {
    await this.port.access({ space: 'pio', addr: this.base + offset, size, dir: 'write', value: value >>> 0 });
  }

  /** `rep ins{b,w,l}` as one string access. */
  async readString(_region: number, offset: number, size: DevSize, count: number): Promise<Uint8Array> {
    const reply = await this.port.access({ space: 'pio', addr: this.base + offset, size, dir: 'read', count });
    if (reply.data) return reply.data;
    const out = new Uint8Array(size * count);
    const v = Number(reply.value);
    for (let i = 0; i < size; i++) out[i] = (v >>> (8 * i)) & 0xff;
    return out;
  }

  async writeString(_region: number, offset: number, size: DevSize, data: Uint8Array): Promise<void> {
    const count = Math.floor(data.length / size);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + data[i];
    await this.port.access({ space: 'pio', addr: this.base + offset, size, dir: 'write', count, data, value: count === 1 ? value : 0 });
  }

  async reset(): Promise<void> {}

  metrics(): Record<string, number> {
    return {};
  }
}

/** Scan PCI bus 0 through 0xCF8/0xCFC for vendor:device; returns BAR0's I/O base, or null. */
export async function findPciIoBar(port: GuestPort, vendor: number, device: number): Promise<number | null> {
  const cfg = async (dev: number, fn: number, reg: number): Promise<number> => {
    await port.access({ space: 'pio', addr: 0xcf8, size: 4, dir: 'write', value: (0x8000_0000 | (dev << 11) | (fn << 8) | reg) >>> 0 });
    return Number((await port.access({ space: 'pio', addr: 0xcfc, size: 4, dir: 'read' })).value) >>> 0;
  };
  const want = ((device << 16) | vendor) >>> 0;
  for (let dev = 0; dev < 32; dev++) {
    for (let fn = 0; fn < 8; fn++) {
      const id = await cfg(dev, fn, 0);
      if (id === 0xffff_ffff) {
        if (fn === 0) break;
        continue;
      }
      if (id === want) {
        const bar0 = await cfg(dev, fn, 0x10);
        return bar0 & 1 ? bar0 & 0xfffc : null;
      }
    }
  }
  return null;
}
