// The shared NIC's router (selected for device kinds ne2k and qemu-ne2k in place of the MUX
// engine). Each attached guest gets a virtual card of its own: a whole Ne2kDevice with the
// guest's granted MAC in its PROM, its own registers, remote DMA, buffer memory and receive
// ring, and its own IRQ line. Every guest access goes to its virtual card, so a guest sees
// exactly what a lone card would show it (solo equivalence by construction) and never waits
// for another guest: there is no ownership to hand over, hence no switches.
//
// The physical card belongs to the router (HostCard: promiscuous, all multicast). Frames:
//   guest transmit -> source MAC must be the guest's (else `spoofed`), 14..1514 bytes
//                  -> the other guests it is addressed to (ARP between guests works)
//                  -> the physical card, unless it is unicast to a guest on this card
//   physical card  -> each guest it is addressed to (unicast to its MAC; broadcast and
//                     multicast to all, whose virtual RCR/MAR decide; everything to a
//                     guest granted promiscuous mode)
// A full virtual ring drops for that guest only (its virtual card's rule, counted `dropped`).

import { type Access, type Reply, deniedReply } from '../../access.ts';
import { deviceAccess } from '../../bus.ts';
import type { Device, DeviceEdges } from '../../device.ts';
import { Ne2kDevice } from '../../devices/ne2k/ne2k-device.ts';
import type { FrameReceiver, NicWire, RxResult } from '../../devices/ne2k/wire.ts';
import type { AttachOptions, DetachReason, DeviceRouter, GuestLink, GuestStats, RouterStats } from '../../guest-link.ts';
import { monotonicNs } from '../../metrics.ts';
import { parseMac } from '../../devices/ne2k/memory.ts';
import { type NicGuestCounters, zeroNicCounters } from './counters.ts';
import { addressedTo, checkTransmit, isGroup, macEquals } from './frames.ts';
import { HostCard, type HostCardCounters } from './host-card.ts';
import { NicCapture } from './capture.ts';
import type { NicTap } from './tap.ts';

/** One guest's end of the card: its virtual card, MAC and grant. */
interface GuestPort {
  guest: GuestLink;
  mac: Uint8Array;
  promiscuous: boolean;
  card: Ne2kDevice;
}

/** The virtual card's wire: what it transmits goes to the router; the router calls receive() directly. */
class PortWire implements NicWire {
  constructor(private readonly onSend: (frame: Uint8Array) => void) {}
  send(frame: Uint8Array): void {
    this.onSend(frame);
  }
  attach(_receiver: FrameReceiver | null): void {}
}

export type { NicTap } from './tap.ts';

export interface NicRouterOptions {
  clock?: () => number;
  /** MAC of a guest whose grant names none: the physical card's (properties.mac). */
  defaultMac?: Uint8Array;
  /** Reports a failure of the physical card (a host error, not a guest's). */
  onError?: (e: Error) => void;
  /** Folder for pcap files: wire.pcap and one per guest (src/mux/nic/capture.ts). */
  capture?: string;
}

function emptyStats(guest: string): GuestStats & { nic: NicGuestCounters } {
  return { guest, accesses: 0, stalls: 0, grants: 0, denials: 0, faults: 0, resets: 0, dmaRefused: 0, usedNs: 0, faulted: false, nic: zeroNicCounters() };
}

export class NicShareRouter implements DeviceRouter {
  readonly edges: DeviceEdges;
  private host: HostCard | null = null;
  private line: number | undefined;
  private readonly ports = new Map<string, GuestPort>();
  private readonly perGuest = new Map<string, GuestStats & { nic: NicGuestCounters }>();
  private readonly taps = new Set<NicTap>();
  /** Frames from the wire no guest was given. */
  unclaimed = 0;
  private capture: NicCapture | null = null;

  constructor(
    readonly deviceId: string,
    readonly kind: string,
    private readonly options: NicRouterOptions = {},
  ) {
    const clock = options.clock ?? monotonicNs;
    this.edges = {
      irq: { set: (level) => this.host?.irq(level) },
      // The NE2000 has no bus-master DMA.
      dma: { read: async () => null, write: async () => false },
      clock,
    };
    if (options.capture !== undefined) {
      this.capture = new NicCapture(options.capture);
      this.taps.add(this.capture);
    }
  }

  bind(device: Device): void {
    this.line = device.describe().irq;
    this.host = new HostCard(
      device,
      (frame) => this.fromWire(frame),
      (e) => this.options.onError?.(new Error(`device ${this.deviceId}: physical card: ${e.message}`, { cause: e })),
    );
    void this.host.start();
  }

  /** Resolves when the physical card has finished what is queued (tests, bench). */
  idle(): Promise<void> {
    return this.host?.idle() ?? Promise.resolve();
  }

  addTap(tap: NicTap): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  hostCounters(): HostCardCounters | null {
    return this.host ? { ...this.host.counters } : null;
  }

  attach(guest: GuestLink, options: AttachOptions = {}): void {
    this.ports.get(guest.id)?.card.close();
    const mac = (options.mac !== undefined ? parseMac(options.mac) : null) ?? this.options.defaultMac ?? Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const line = this.line;
    const edges: DeviceEdges = {
      irq: { set: (level) => line !== undefined && guest.setIrq(line, level) },
      dma: { read: async () => null, write: async () => false },
      clock: this.edges.clock,
    };
    const port: GuestPort = { guest, mac, promiscuous: options.promiscuous === true, card: null as unknown as Ne2kDevice };
    port.card = new Ne2kDevice(edges, new PortWire((frame) => this.fromGuest(port, frame)), { mac, irq: line });
    this.ports.set(guest.id, port);
    if (!this.perGuest.has(guest.id)) this.perGuest.set(guest.id, emptyStats(guest.id));
  }

  detach(guestId: string, _reason: DetachReason): void {
    const port = this.ports.get(guestId);
    if (!port) return;
    this.ports.delete(guestId);
    void port.card.close();
    if (this.line !== undefined) port.guest.setIrq(this.line, false);
  }

  access(guestId: string, region: number, offset: number, acc: Access): Reply | Promise<Reply> {
    const port = this.ports.get(guestId);
    const stats = this.perGuest.get(guestId);
    if (!port || !stats) {
      if (stats) stats.denials++;
      return deniedReply(acc, `guest ${guestId} is not attached to ${this.deviceId}`);
    }
    stats.accesses++;
    return deviceAccess(port.card, region, offset, acc);
  }

  stats(): RouterStats {
    return {
      device: this.deviceId,
      kind: this.kind,
      switches: 0,
      unsafeSwitches: 0,
      resets: 0,
      faults: 0,
      perGuest: [...this.perGuest.values()].map((s) => ({ ...s, nic: { ...s.nic } })),
    };
  }

  /** A guest's virtual card (tests: its registers and state). */
  virtualCard(guestId: string): Ne2kDevice | undefined {
    return this.ports.get(guestId)?.card;
  }

  async close(): Promise<void> {
    this.host?.close();
    for (const p of this.ports.values()) await p.card.close();
    this.ports.clear();
    this.capture?.close();
    this.capture = null;
  }

  // ---- frames ----

  private fromGuest(from: GuestPort, frame: Uint8Array): void {
    const c = this.perGuest.get(from.guest.id)!.nic; // a port exists only with its stats
    const verdict = checkTransmit(frame, from.mac);
    if (verdict === 'spoofed') return void c.spoofed++;
    if (verdict === 'badLength') return void c.txInvalid++;
    c.txPackets++;
    c.txBytes += frame.length;
    for (const t of this.taps) t.guest?.(from.guest.id, frame, 'tx');
    let local = false;
    for (const p of this.ports.values()) {
      if (p === from) continue;
      if (!isGroup(frame) && macEquals(frame, 0, p.mac)) local = true;
      this.offer(p, frame);
    }
    if (local) return;
    if (this.host && !this.host.transmit(frame)) return void c.txDropped++;
    for (const t of this.taps) t.wire?.(frame, 'out');
  }

  private fromWire(frame: Uint8Array): void {
    for (const t of this.taps) t.wire?.(frame, 'in');
    let given = false;
    for (const p of this.ports.values()) given = this.offer(p, frame) || given;
    if (!given) this.unclaimed++;
  }

  /** Give a frame to a guest's virtual card if it is addressed to it; true when offered. */
  private offer(p: GuestPort, frame: Uint8Array): boolean {
    if (!addressedTo(frame, p.mac, p.promiscuous)) return false;
    const c = this.perGuest.get(p.guest.id)!.nic;
    const r: RxResult = p.card.receive(frame);
    if (r === 'stored') {
      c.rxPackets++;
      c.rxBytes += frame.length;
      for (const t of this.taps) t.guest?.(p.guest.id, frame, 'rx');
    } else if (r === 'filtered') c.filtered++;
    else c.dropped++;
    return true;
  }
}
