// The pass-through router: no multiplexing. Every attached guest reaches the device
// directly; the IRQ level goes to every attached guest; DMA goes to the memory of the
// guest that accessed the device last. Right for a device that one guest owns alone.
// A disk window (AttachOptions.window) needs the MUX's translation: it is not applied here.

import { type Access, type Reply, deniedReply } from './access.ts';
import { deviceAccess } from './bus.ts';
import type { Device, DeviceEdges } from './device.ts';
import type { AttachOptions, DetachReason, DeviceRouter, GuestLink, GuestStats, RouterStats } from './guest-link.ts';
import { monotonicNs } from './metrics.ts';

function emptyStats(guest: string): GuestStats {
  return { guest, accesses: 0, stalls: 0, grants: 0, denials: 0, faults: 0, resets: 0, dmaRefused: 0, usedNs: 0, faulted: false };
}

export class PassthroughRouter implements DeviceRouter {
  readonly edges: DeviceEdges;
  private device: Device | null = null;
  private line: number | undefined;
  private level = false;
  private readonly guests = new Map<string, GuestLink>();
  private readonly perGuest = new Map<string, GuestStats>();
  /** The guest whose memory DMA reaches: the last one that accessed the device. */
  private current: string | null = null;

  constructor(
    readonly deviceId: string,
    readonly kind: string,
    clock: () => number = monotonicNs,
  ) {
    this.edges = {
      irq: { set: (level) => this.setIrq(level) },
      dma: {
        read: async (addr, len) => {
          const mem = this.dmaMemory();
          const data = mem ? await mem.read(addr, len) : null;
          if (!data) this.countDmaRefused();
          return data;
        },
        write: async (addr, data) => {
          const mem = this.dmaMemory();
          const ok = mem ? await mem.write(addr, data) : false;
          if (!ok) this.countDmaRefused();
          return ok;
        },
      },
      clock,
    };
  }

  bind(device: Device): void {
    this.device = device;
    this.line = device.describe().irq;
  }

  attach(guest: GuestLink, _options?: AttachOptions): void {
    this.guests.set(guest.id, guest);
    if (!this.perGuest.has(guest.id)) this.perGuest.set(guest.id, emptyStats(guest.id));
    // A guest attaching while the line is high sees it high.
    if (this.level && this.line !== undefined) guest.setIrq(this.line, true);
  }

  detach(guestId: string, _reason: DetachReason): void {
    this.guests.delete(guestId);
    if (this.current === guestId) this.current = null;
  }

  access(guestId: string, region: number, offset: number, acc: Access): Reply | Promise<Reply> {
    if (!this.device) throw new Error(`router ${this.deviceId}: access before bind`);
    const stats = this.perGuest.get(guestId);
    if (!stats || !this.guests.has(guestId)) {
      // The supervisor attaches every granted guest first; count rather than throw.
      if (stats) stats.denials++;
      return deniedReply(acc, `guest ${guestId} is not attached to ${this.deviceId}`);
    }
    stats.accesses++;
    this.current = guestId;
    return deviceAccess(this.device, region, offset, acc);
  }

  stats(): RouterStats {
    return { device: this.deviceId, kind: this.kind, switches: 0, unsafeSwitches: 0, resets: 0, faults: 0, perGuest: [...this.perGuest.values()].map((s) => ({ ...s })) };
  }

  async close(): Promise<void> {
    // The supervisor built the device and closes it; the router only lets go of guests.
    this.guests.clear();
  }

  private setIrq(level: boolean): void {
    // Only edges of the level travel: devices may recompute and set the same level often.
    if (level === this.level) return;
    this.level = level;
    if (this.line === undefined) return;
    for (const g of this.guests.values()) g.setIrq(this.line, level);
  }

  private dmaMemory() {
    return this.current ? (this.guests.get(this.current)?.memory ?? null) : null;
  }

  private countDmaRefused(): void {
    const s = this.current ? this.perGuest.get(this.current) : undefined;
    if (s) s.dmaRefused++;
  }
}

