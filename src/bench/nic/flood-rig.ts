// One NE2000 shared by the NIC router (our model as the physical card, on a LoopWire) and
// scripted guests that drive their virtual cards as Linux's ne2k-pci does, each access straight
// into the router. For the flood figure (src/bench/nic.ts) and test/nic-flood.test.ts: a flood
// of frames to one guest that never drains its ring, while the others exchange frames in rounds.

import type { Access } from '../../access.ts';
import type { Device, DevSize } from '../../device.ts';
import { LoopWire, Ne2kDevice } from '../../devices/ne2k/index.ts';
import { formatMac, parseMac } from '../../devices/ne2k/memory.ts';
import type { GuestLink } from '../../guest-link.ts';
import { ethFrame, Ne2kDriver } from '../../guests/ne2k-driver.ts';
import { NicShareRouter } from '../../mux/nic/nic-router.ts';

/** A guest's accesses straight into the router, as a Device for the driver. */
class ViaRouter implements Device {
  constructor(
    private readonly router: NicShareRouter,
    private readonly id: string,
  ) {}
  describe() {
    return { kind: 'via-router', regions: [], properties: [] };
  }
  private acc(a: Access): number {
    const r = this.router.access(this.id, 0, a.addr, a) as { value?: number | bigint; error?: string };
    if (r.error) throw new Error(`${this.id}: ${r.error}`);
    return Number(r.value ?? 0);
  }
  read(_r: number, offset: number, size: DevSize): number {
    return this.acc({ space: 'pio', addr: offset, size, dir: 'read' });
  }
  write(_r: number, offset: number, size: DevSize, value: number): void {
    this.acc({ space: 'pio', addr: offset, size, dir: 'write', value });
  }
  reset(): void {}
  metrics() {
    return {};
  }
}

export interface FloodGuest {
  id: string;
  mac: Uint8Array;
  driver: Ne2kDriver;
}

export interface FloodRig {
  router: NicShareRouter;
  wire: LoopWire;
  guests: FloodGuest[];
  /** Per-guest NIC counters of the router. */
  counters(id: string): { rxPackets: number; dropped: number; txPackets: number };
  close(): Promise<void>;
}

export const macOf = (i: number): Uint8Array => Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, i]);

/** `n` guests g1..gn with MACs 52:54:00:12:34:0i, probed and initialised as Linux does. */
export async function openFloodRig(n: number): Promise<FloodRig> {
  const router = new NicShareRouter('nic0', 'ne2k');
  const wire = new LoopWire();
  router.bind(new Ne2kDevice(router.edges, wire));
  await router.idle();
  const guests: FloodGuest[] = [];
  for (let i = 1; i <= n; i++) {
    const id = `g${i}`;
    const link: GuestLink = { id, weight: 1, priority: 0, deadlineNs: Infinity, setIrq: () => undefined, memory: null };
    router.attach(link, { mac: formatMac(macOf(i)) });
    const driver = new Ne2kDriver(new ViaRouter(router, id));
    const mac = await driver.probe();
    await driver.init(mac);
    guests.push({ id, mac, driver });
  }
  return {
    router,
    wire,
    guests,
    counters(id) {
      const g = router.stats().perGuest.find((s) => s.guest === id) as { nic?: { rxPackets: number; dropped: number; txPackets: number } } | undefined;
      if (!g?.nic) throw new Error(`flood rig: no counters for ${id}`);
      return g.nic;
    },
    close: () => router.close(),
  };
}

/** A frame from the wire to `dst` (1514 bytes: the most a flood moves per frame). */
export function floodFrame(dst: Uint8Array, seq: number, len = 1514): Uint8Array {
  return ethFrame(dst, parseMac('02:00:00:00:00:99')!, len - 14, seq);
}

/**
 * One exchange round of the pairs: each side sends one frame to the other, then both drain
 * their rings. Returns the frames each guest received (checked: from its peer, intact).
 */
export async function exchangeRound(pairs: Array<[FloodGuest, FloodGuest]>, seq: number): Promise<Map<string, number>> {
  const got = new Map<string, number>();
  for (const [a, b] of pairs) {
    for (const [from, to] of [[a, b], [b, a]] as const) await from.driver.send(ethFrame(to.mac, from.mac, 200, seq));
    for (const [me, peer] of [[a, b], [b, a]] as const) {
      const frames = await me.driver.receive();
      const want = [...ethFrame(me.mac, peer.mac, 200, seq)];
      for (const f of frames) if (f.frame.length !== want.length || f.frame.some((x, i) => x !== want[i])) throw new Error(`${me.id}: a frame from ${peer.id} arrived altered`);
      got.set(me.id, (got.get(me.id) ?? 0) + frames.length);
    }
  }
  return got;
}
