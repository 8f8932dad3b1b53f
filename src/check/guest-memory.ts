// A guest's DMA memory as a plain byte array at a bus address (scripted guests, tests).

import type { GuestMemory } from '../guest-link.ts';

export class ArrayGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    this.bytes = new Uint8Array(size);
  }

  private inside(addr: number, len: number): boolean {
    return Number.isInteger(addr) && len >= 0 && addr >= this.base && addr + len <= this.base + this.size;
  }

  async read(addr: number, len: number): Promise<Uint8Array | null> {
    if (!this.inside(addr, len)) return null;
    return this.bytes.slice(addr - this.base, addr - this.base + len);
  }

  async write(addr: number, data: Uint8Array): Promise<boolean> {
    if (!this.inside(addr, data.length)) return false;
    this.bytes.set(data, addr - this.base);
    return true;
  }
}
