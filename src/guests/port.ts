// What a scripted (in-process) guest driver talks to: the supervisor's local guest
// attachment. Accesses go through the same grant check and MUX as trapped ones.

import type { Access, Reply } from '../access.ts';

export interface GuestPort {
  access(acc: Access): Promise<Reply>;
  /** Subscribe to virtual IRQ level changes of this guest. */
  onIrq(cb: (line: number, level: boolean) => void): void;
}

/** Helpers over a GuestPort with the register widths a port-I/O driver uses. */
export class PortIo {
  constructor(readonly port: GuestPort) {}

  async inb(addr: number): Promise<number> {
    return Number((await this.port.access({ space: 'pio', addr, size: 1, dir: 'read' })).value);
  }
  async inw(addr: number): Promise<number> {
    return Number((await this.port.access({ space: 'pio', addr, size: 2, dir: 'read' })).value);
  }
  async inl(addr: number): Promise<number> {
    return Number((await this.port.access({ space: 'pio', addr, size: 4, dir: 'read' })).value);
  }
  async outb(addr: number, value: number): Promise<void> {
    await this.port.access({ space: 'pio', addr, size: 1, dir: 'write', value: value & 0xff });
  }
  async outw(addr: number, value: number): Promise<void> {
    await this.port.access({ space: 'pio', addr, size: 2, dir: 'write', value: value & 0xffff });
  }
  async outl(addr: number, value: number): Promise<void> {
    await this.port.access({ space: 'pio', addr, size: 4, dir: 'write', value: value >>> 0 });
  }
  /** `rep insw`: count words from one port, as one string access. */
  async insw(addr: number, count: number): Promise<Uint8Array> {
    const reply = await this.port.access({ space: 'pio', addr, size: 2, dir: 'read', count });
    if (reply.data) return reply.data;
    // A single-element read carries its value only.
    const out = new Uint8Array(2 * count);
    new DataView(out.buffer).setUint16(0, Number(reply.value) & 0xffff, true);
    return out;
  }
  /** `rep outsw`: the data's words to one port, as one string access. */
  async outsw(addr: number, data: Uint8Array): Promise<void> {
    const count = data.length >> 1;
    const value = count === 1 ? data[0] | (data[1] << 8) : 0;
    await this.port.access({ space: 'pio', addr, size: 2, dir: 'write', count, data, value });
  }
}

/** Yield to the event loop: a polling driver must let backend I/O completions run. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
