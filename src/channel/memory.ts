// A guest's DMA memory (GuestMemory) in its three forms: a buffer in this process
// (scripted guests), the peer's memfd the supervisor holds (hello's dma.fd: dma-memory.ts),
// or the peer's memory reached through dmar/dmaw messages. Every form is bounded by its window.

import type { GuestMemory } from '../guest-link.ts';

function inside(base: number, size: number, addr: number, len: number): boolean {
  return Number.isSafeInteger(addr) && len >= 0 && addr >= base && addr + len <= base + size;
}

/** Memory backed by a buffer: bus address base+x is bytes[x]. */
export function bufferMemory(base: number, bytes: Uint8Array): GuestMemory {
  return {
    base,
    size: bytes.length,
    async read(addr, len) {
      if (!inside(base, bytes.length, addr, len)) return null;
      return bytes.slice(addr - base, addr - base + len);
    },
    async write(addr, data) {
      if (!inside(base, bytes.length, addr, data.length)) return false;
      bytes.set(data, addr - base);
      return true;
    },
  };
}

export interface ClosableMemory extends GuestMemory {
  close(): Promise<void>;
}

/** Memory reached through the peer's dmar/dmaw answers, bounded by the hello's window. */
export function messageMemory(
  base: number,
  size: number,
  peer: { dmaRead(addr: number, len: number): Promise<Uint8Array | null>; dmaWrite(addr: number, data: Uint8Array): Promise<boolean> },
): GuestMemory {
  return {
    base,
    size,
    read: (addr, len) => (inside(base, size, addr, len) ? peer.dmaRead(addr, len) : Promise.resolve(null)),
    write: (addr, data) => (inside(base, size, addr, data.length) ? peer.dmaWrite(addr, data) : Promise.resolve(false)),
  };
}
