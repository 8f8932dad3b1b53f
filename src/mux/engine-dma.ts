// DMA gating: the device's DMA port reaches the owner's GuestMemory only, inside its bounds.
// Anything else (no owner, outside the window, a memory that refuses) gets null/false,
// counted (the owner's dmaRefused, or dmaRefusedNoOwner), logged at debug and traced.

import type { DmaPort } from '../device.ts';
import type { EngineCore, GuestRec } from './engine-core.ts';

export class DmaGate implements DmaPort {
  constructor(private readonly c: EngineCore) {}

  async read(addr: number, len: number): Promise<Uint8Array | null> {
    const g = this.target(addr, len, 'DMA read');
    if (!g) return null;
    const r = await g.link.memory!.read(addr, len); // target() checked the memory exists
    if (r === null) g.stats.dmaRefused++;
    return r;
  }

  async write(addr: number, data: Uint8Array): Promise<boolean> {
    const g = this.target(addr, data.length, 'DMA write');
    if (!g) return false;
    const ok = await g.link.memory!.write(addr, data); // target() checked the memory exists
    if (!ok) g.stats.dmaRefused++;
    return ok;
  }

  /** The owner when [addr, addr+len) lies in its memory; else null, counted and traced. */
  private target(addr: number, len: number, what: string): GuestRec | null {
    const c = this.c;
    const g = c.owner;
    const mem = g?.link.memory;
    if (g && mem && Number.isInteger(addr) && len >= 0 && addr >= mem.base && addr + len <= mem.base + mem.size) return g;
    if (g) g.stats.dmaRefused++;
    else c.counters.dmaRefusedNoOwner++;
    const detail = `${what} 0x${addr.toString(16)}+${len} outside ${g ? `${g.link.id}'s DMA window` : 'any owner'}`;
    c.log.debug({ guest: g?.link.id ?? null }, detail);
    c.trace('dma-refused', g, detail);
    return null;
  }
}
