// Properties of the shared NE2000 (src/mux/nic), on random traffic (fast-check): frames from
// the wire with random destinations (guests, broadcast, multicast, strangers), frames sent by
// guests (some with a spoofed source), guests with random receive filters and promiscuous
// grants, and drains at random points.
//  - isolation: no guest reads a frame not addressed to it unless granted promiscuous mode;
//    no spoofed frame reaches the wire or another guest;
//  - nothing lost: a guest that drains after every frame reads every frame addressed to it
//    that its filters accept;
//  - solo equivalence: each guest reads exactly what a lone card (same MAC, same driver
//    steps) reads when fed the frames addressed to it, ring-full drops included.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import type { Device, DeviceEdges, DevSize } from '../src/device.ts';
import { LoopWire, Ne2kDevice, multicastIndex } from '../src/devices/ne2k/index.ts';
import type { GuestLink } from '../src/guest-link.ts';
import { NicShareRouter } from '../src/mux/nic/nic-router.ts';
import { Ne2kDriver, type Received } from '../src/guests/ne2k-driver.ts';
import { formatMac } from '../src/devices/ne2k/memory.ts';

const edges = (): DeviceEdges => ({ irq: { set: () => undefined }, dma: { read: async () => null, write: async () => false }, clock: () => 0 });
const macOf = (i: number) => Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, i + 1]);
const STRANGER = Uint8Array.from([0x52, 0x54, 0x00, 0x77, 0x77, 0x77]);
const BCAST = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const MCASTS = [Uint8Array.from([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), Uint8Array.from([0x33, 0x33, 0x00, 0x00, 0x00, 0x01]), Uint8Array.from([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e])];

/** A guest's accesses through the router, as a Device for the driver. */
class ViaRouter implements Device {
  constructor(
    private readonly router: NicShareRouter,
    private readonly guest: string,
  ) {}
  describe() {
    return { kind: 'via-router', regions: [], properties: [] };
  }
  private acc(a: Access) {
    const r = this.router.access(this.guest, 0, a.addr, a);
    if (r instanceof Promise) throw new Error('the NIC router answers at once');
    return r;
  }
  read(_r: number, offset: number, size: DevSize): number {
    return Number(this.acc({ space: 'pio', addr: offset, size, dir: 'read' }).value);
  }
  write(_r: number, offset: number, size: DevSize, value: number): void {
    this.acc({ space: 'pio', addr: offset, size, dir: 'write', value });
  }
  reset(): void {}
  metrics() {
    return {};
  }
}

interface GuestSpec {
  rcr: number; // 0x04 AB, 0x08 AM, 0x10 PRO
  mar: number[];
  promiscuous: boolean;
}

type Step =
  | { t: 'wire'; dst: number; len: number } // dst: 0..n-1 guest, n broadcast, n+1..n+3 multicast, n+4 stranger
  | { t: 'send'; from: number; dst: number; spoof: boolean; len: number }
  | { t: 'drain'; guest: number };

const N = 3;
const dstMac = (d: number): Uint8Array => (d < N ? macOf(d) : d === N ? BCAST : d <= N + 3 ? MCASTS[d - N - 1] : STRANGER);

const guestSpec = fc.record({
  rcr: fc.constantFrom(0x04, 0x0c, 0x00, 0x1c, 0x14),
  mar: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 8, maxLength: 8 }),
  promiscuous: fc.boolean(),
});
const step = (maxLen: number): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({ t: fc.constant('wire' as const), dst: fc.integer({ min: 0, max: N + 4 }), len: fc.integer({ min: 14, max: maxLen }) }),
    fc.record({ t: fc.constant('send' as const), from: fc.integer({ min: 0, max: N - 1 }), dst: fc.integer({ min: 0, max: N + 4 }), spoof: fc.boolean(), len: fc.integer({ min: 14, max: maxLen }) }),
    fc.record({ t: fc.constant('drain' as const), guest: fc.integer({ min: 0, max: N - 1 }) }),
  );

/** A frame tagged with a serial number (bytes 14-17) and its length. */
function frame(dst: Uint8Array, src: Uint8Array, len: number, serial: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  if (len >= 18) new DataView(f.buffer).setUint32(14, serial);
  for (let i = 18; i < len; i++) f[i] = (serial * 13 + i) & 0xff;
  return f;
}

async function world(specs: GuestSpec[]) {
  const router = new NicShareRouter('nic0', 'ne2k');
  const wire = new LoopWire();
  const physical = new Ne2kDevice(router.edges, wire, { mac: Uint8Array.from([0x52, 0x54, 0, 0, 0, 0x99]) });
  router.bind(physical);
  await router.idle();
  const drivers: Ne2kDriver[] = [];
  for (const [i, s] of specs.entries()) {
    const link: GuestLink = { id: `g${i}`, weight: 1, priority: 0, deadlineNs: Infinity, setIrq: () => undefined, memory: null };
    router.attach(link, { mac: formatMac(macOf(i)), promiscuous: s.promiscuous });
    const d = new Ne2kDriver(new ViaRouter(router, `g${i}`));
    await d.init(await d.probe(), { rcr: s.rcr, mar: s.mar });
    drivers.push(d);
  }
  // A frame from the wire reaches the guests once the router has drained the physical card.
  const inject = async (f: Uint8Array) => {
    wire.inject(f);
    await router.idle();
  };
  return { router, wire, drivers, inject };
}

/** What the spec says a guest's card takes: addressed to it (or a promiscuous grant), then its own RCR/MAR. */
function accepts(s: GuestSpec, i: number, f: Uint8Array): boolean {
  const dst = f.subarray(0, 6);
  const group = (f[0] & 1) === 1;
  const mine = dst.every((b, k) => b === macOf(i)[k]);
  if (!group && !mine && !s.promiscuous) return false;
  if (dst.every((b) => b === 0xff)) return (s.rcr & 0x04) !== 0 || (s.rcr & 0x10) !== 0;
  if (group) {
    const idx = multicastIndex(f);
    return ((s.rcr & 0x08) !== 0 && (s.mar[idx >> 3] & (1 << (idx & 7))) !== 0) || (s.rcr & 0x10) !== 0;
  }
  return mine || (s.rcr & 0x10) !== 0;
}

const addressed = (s: GuestSpec, i: number, f: Uint8Array): boolean => s.promiscuous || (f[0] & 1) === 1 || f.subarray(0, 6).every((b, k) => b === macOf(i)[k]);
const strip = (r: Received[]) => r.map((x) => ({ status: x.status, next: x.next, count: x.count, page: x.page, frame: [...x.frame] }));

describe('shared NE2000 properties', () => {
  it('isolation: a guest reads only frames addressed to it (or all, with a promiscuous grant); no spoofed frame leaves', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(guestSpec, { minLength: N, maxLength: N }), fc.array(step(200), { minLength: 1, maxLength: 40 }), async (specs, steps) => {
        const { wire, drivers, inject } = await world(specs);
        const spoofed = new Set<number>();
        const check = (i: number, got: Received[]) => {
          for (const r of got) {
            expect(addressed(specs[i], i, r.frame), `guest ${i} read a frame to ${formatMac(r.frame.subarray(0, 6))}`).toBe(true);
            expect(spoofed.has(new DataView(r.frame.buffer).getUint32(14))).toBe(false);
          }
        };
        for (const [serial, s] of steps.entries()) {
          if (s.t === 'wire') await inject(frame(dstMac(s.dst), STRANGER, Math.max(s.len, 18), serial));
          else if (s.t === 'send') {
            if (s.spoof) spoofed.add(serial);
            await drivers[s.from].send(frame(dstMac(s.dst), s.spoof ? macOf((s.from + 1) % N) : macOf(s.from), Math.max(s.len, 18), serial));
          } else check(s.guest, await drivers[s.guest].receive());
        }
        for (let i = 0; i < N; i++) check(i, await drivers[i].receive());
        for (const f of wire.sent) {
          expect(spoofed.has(new DataView(f.buffer).getUint32(14))).toBe(false);
          expect([0, 1, 2].some((i) => f.subarray(6, 12).every((b, k) => b === macOf(i)[k]))).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  }, 60_000);

  it('nothing lost while the ring has room: draining after every frame, each guest reads every frame its filters accept, in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(guestSpec, { minLength: N, maxLength: N }), fc.array(step(1514), { minLength: 1, maxLength: 30 }), async (specs, steps) => {
        const { wire, drivers, inject } = await world(specs);
        const got: number[][] = specs.map(() => []);
        const want: number[][] = specs.map(() => []);
        for (const [serial, s] of steps.entries()) {
          if (s.t === 'drain') continue;
          const from = s.t === 'send' ? s.from : -1;
          const f = frame(dstMac(s.dst), s.t === 'send' ? (s.spoof ? STRANGER : macOf(s.from)) : STRANGER, Math.max(s.len, 18), serial);
          if (s.t === 'wire') await inject(f);
          else await drivers[s.from].send(f);
          const legit = s.t === 'wire' || !s.spoof;
          for (let i = 0; i < N; i++) {
            if (legit && i !== from && accepts(specs[i], i, f)) want[i].push(serial);
            for (const r of await drivers[i].receive()) got[i].push(new DataView(r.frame.buffer).getUint32(14));
          }
        }
        expect(got).toEqual(want);
      }),
      { numRuns: 100 },
    );
  }, 60_000);

  it('solo equivalence: each guest reads what a lone card fed the frames addressed to it reads (ring-full drops included)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(guestSpec, { minLength: N, maxLength: N }), fc.array(step(1514), { minLength: 1, maxLength: 60 }), async (specs, steps) => {
        const { wire, drivers, inject } = await world(specs);
        const lone = await Promise.all(
          specs.map(async (s, i) => {
            const card = new Ne2kDevice(edges(), new LoopWire(), { mac: macOf(i) });
            const d = new Ne2kDriver(card);
            await d.init(await d.probe(), { rcr: s.rcr, mar: s.mar });
            return d;
          }),
        );
        for (const [serial, s] of steps.entries()) {
          if (s.t === 'drain') {
            expect(strip(await drivers[s.guest].receive())).toEqual(strip(await lone[s.guest].receive()));
            continue;
          }
          const src = s.t === 'send' && !s.spoof ? macOf(s.from) : STRANGER;
          const f = frame(dstMac(s.dst), src, Math.max(s.len, 18), serial);
          if (s.t === 'wire') await inject(f);
          else expect(await drivers[s.from].send(f)).toEqual(await lone[s.from].send(f));
          const delivered = s.t === 'wire' || !s.spoof;
          for (let i = 0; i < N; i++) {
            if (delivered && !(s.t === 'send' && s.from === i) && addressed(specs[i], i, f)) (lone[i].dev as Ne2kDevice).receive(f);
          }
        }
        for (let i = 0; i < N; i++) {
          expect(strip(await drivers[i].receive())).toEqual(strip(await lone[i].receive()));
          const v = (drivers[i].dev as ViaRouter).read(0, 0x07, 1); // ISR
          expect(v).toBe(lone[i].dev.read(0, 0x07, 1));
        }
      }),
      { numRuns: 100 },
    );
  }, 60_000);
});
