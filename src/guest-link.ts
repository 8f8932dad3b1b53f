// What the supervisor hands to a MUX for each attached guest: its identity, scheduling
// parameters, its virtual IRQ line and its DMA memory (the guest's window).

import type { Access, Reply } from './access.ts';
import type { Device, DeviceEdges } from './device.ts';

export interface GuestMemory {
  /** Bus address of the first byte of the window. */
  readonly base: number;
  readonly size: number;
  /** Returns null when [addr, addr+len) is not inside the window. */
  read(addr: number, len: number): Promise<Uint8Array | null>;
  write(addr: number, data: Uint8Array): Promise<boolean>;
}

export interface GuestLink {
  readonly id: string;
  readonly weight: number;
  readonly priority: number;
  /** Relative deadline (ns) the EDF policy uses; Infinity when none. */
  readonly deadlineNs: number;
  /** Raise or lower the guest's virtual IRQ `line`. */
  setIrq(line: number, level: boolean): void;
  /** The guest's DMA memory, or null when it has none (DMA is then refused). */
  readonly memory: GuestMemory | null;
  /** Tell the guest that a device it used was reset (best effort). */
  notifyReset?(deviceId: string, reason: string): void;
}

export type DetachReason = 'bye' | 'disconnect' | 'crash' | 'fault';

/** Per-guest options of a device attachment (from the config's device grant). */
export interface AttachOptions {
  /** Partition window for disks: the guest sees sectors [startLba, startLba+sectors). */
  window?: { startLba: number; sectors: number };
  /** Shared NIC: the guest's own station address ("52:54:00:12:34:01"), in its virtual card's PROM. */
  mac?: string;
  /** Shared NIC: the guest is given every frame on the wire, not only those addressed to it. */
  promiscuous?: boolean;
}

/**
 * The supervisor routes each granted access for a device to the device's router: a plain
 * pass-through, or the MUX engine. Offsets are relative to the region.
 */
export interface DeviceRouter {
  readonly deviceId: string;
  /**
   * The edges the device is built with: its IRQ line and DMA port go through the router,
   * which delivers the IRQ to the owner only and bounds DMA to the owner's memory.
   * Order: create the router, build the device with `router.edges`, then `router.bind(device)`.
   */
  readonly edges: DeviceEdges;
  bind(device: Device): void;
  attach(guest: GuestLink, options?: AttachOptions): void;
  detach(guestId: string, reason: DetachReason): void;
  access(guestId: string, region: number, offset: number, acc: Access): Reply | Promise<Reply>;
  stats(): RouterStats;
  close(): Promise<void>;
}

export interface GuestStats {
  guest: string;
  accesses: number;
  stalls: number;
  grants: number;
  denials: number;
  faults: number;
  /** Device resets this guest's fault caused (watchdog, crash or detach mid-command). */
  resets: number;
  dmaRefused: number;
  usedNs: number;
  faulted: boolean;
  /** Shared NIC routers: the guest's traffic counters (src/mux/nic/counters.ts). */
  nic?: Record<string, number>;
}

export interface RouterStats {
  device: string;
  kind: string;
  switches: number;
  unsafeSwitches: number;
  resets: number;
  faults: number;
  perGuest: GuestStats[];
}
