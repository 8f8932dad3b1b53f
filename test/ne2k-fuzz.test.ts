// Random register sequences and frames against the NE2000 model: nothing throws, nothing hangs,
// the registers stay in range, the IRQ line is always ISR & IMR & 0x7F, TXP never stays set,
// and the receive path writes only inside the ring PSTART..PSTOP that was set when the frame came.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DevSize, DeviceEdges } from '../src/device.ts';
import { LoopWire, Ne2kDevice, ne2kRegs as R } from '../src/devices/ne2k/index.ts';
import { NicMemory } from '../src/devices/ne2k/memory.ts';
import { checkRegs } from '../src/devices/ne2k/state.ts';

const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

type Op =
  | { t: 'write'; offset: number; size: DevSize; value: number }
  | { t: 'read'; offset: number; size: DevSize }
  | { t: 'insl'; count: number }
  | { t: 'outsl'; count: number }
  | { t: 'frame'; dst: readonly number[]; len: number }
  | { t: 'reset' }
  | { t: 'ring'; pstart: number; pstop: number; curr: number; bnry: number; rcr: number };

const CR_VALUES = [0x21, 0x22, 0x0a, 0x12, 0x26, 0x62, 0x61, 0x60, 0xa2, 0xe0, 0x20, 0x02, 0x1e, 0x3f, 0x04];
const size = fc.constantFrom<DevSize>(1, 1, 1, 1, 2, 4);
const byte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x40, 0x4c, 0x80, 0x7f, 0xbf, 0xc0, 0x00, 0xff));
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('write' as const), offset: fc.constant(0), size: fc.constant<DevSize>(1), value: fc.constantFrom(...CR_VALUES) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('write' as const), offset: fc.integer({ min: 1, max: 15 }), size: fc.constant<DevSize>(1), value: byte }), weight: 8 },
  { arbitrary: fc.record({ t: fc.constant('write' as const), offset: fc.integer({ min: 0, max: 0x21 }), size, value: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('read' as const), offset: fc.integer({ min: 0, max: 0x21 }), size }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('insl' as const), count: fc.integer({ min: 1, max: 9000 }) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('outsl' as const), count: fc.integer({ min: 1, max: 9000 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      t: fc.constant('frame' as const),
      dst: fc.oneof(fc.constant([...MAC]), fc.constant([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), fc.constant([0x01, 0x00, 0x5e, 0, 0, 1]), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })),
      len: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 1000, max: 1600 }), fc.integer({ min: 0, max: 70000 })),
    }),
    weight: 10,
  },
  { arbitrary: fc.constant({ t: 'reset' as const }), weight: 1 },
  // A started card with a ring (sometimes a bad one), so runs reach the receive path.
  {
    arbitrary: fc.record({
      t: fc.constant('ring' as const),
      pstart: fc.oneof(fc.integer({ min: 0x40, max: 0x60 }), byte),
      pstop: fc.oneof(fc.integer({ min: 0x70, max: 0xc0 }), byte),
      curr: fc.oneof(fc.integer({ min: 0x40, max: 0xbf }), byte),
      bnry: fc.oneof(fc.integer({ min: 0x40, max: 0xbf }), byte),
      rcr: fc.constantFrom(0x04, 0x0c, 0x1c, 0x20, 0x00),
    }),
    weight: 5,
  },
);

describe('ne2k model under random register sequences', () => {
  it('never throws or hangs; registers in range; IRQ derived; receive writes only inside the ring', () => {
    const orig = NicMemory.prototype.writeByte;
    let writes: number[] | null = null;
    const outcomes = new Map<string, number>();
    NicMemory.prototype.writeByte = function (this: NicMemory, addr: number, v: number) {
      writes?.push(addr);
      return orig.call(this, addr, v);
    };
    try {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 80 }), (ops) => {
          const irq = { level: false, set(l: boolean) { this.level = l; } };
          const edges: DeviceEdges = { irq, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
          const wire = new LoopWire();
          const dev = new Ne2kDevice(edges, wire, { mac: MAC });
          for (const o of ops) {
            const before = dev.registers();
            switch (o.t) {
              case 'write': dev.write(0, o.offset, o.size, o.value >>> 0); break;
              case 'read': dev.read(0, o.offset, o.size); break;
              case 'insl': expect(dev.readString(0, R.NE_DATAPORT, 4, o.count).length).toBe(o.count * 4); break;
              case 'outsl': dev.writeString(0, R.NE_DATAPORT, 4, new Uint8Array(o.count * 4).fill(0xa5)); break;
              case 'reset': dev.reset(); break;
              case 'ring':
                for (const [off, v] of [[0, 0x21], [1, o.pstart], [2, o.pstop], [3, o.bnry], [0x0c, o.rcr], [0, 0x61], [7, o.curr], [0, 0x22]]) dev.write(0, off, 1, v);
                for (let i = 0; i < 6; i++) dev.write(0, 0, 1, 0x62), dev.write(0, 1 + i, 1, MAC[i]);
                dev.write(0, 0, 1, 0x22);
                break;
              case 'frame': {
                const f = new Uint8Array(o.len);
                f.set(o.dst.slice(0, Math.min(6, o.len)));
                writes = [];
                const r = wire.inject(f);
                outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
                const w = writes;
                writes = null;
                if (r === 'stored') {
                  const lo = before.pstart << 8;
                  const hi = before.pstop << 8;
                  expect(w.length).toBe(4 + Math.max(60, o.len));
                  for (const a of w) if (a < lo || a >= hi) throw new Error(`receive wrote 0x${a.toString(16)} outside the ring 0x${lo.toString(16)}-0x${hi.toString(16)}`);
                } else expect(w).toEqual([]);
                break;
              }
            }
            const regs = dev.registers();
            checkRegs(regs);
            expect(irq.level).toBe((regs.isr & regs.imr & 0x7f) !== 0);
            expect(regs.cr & R.E8390_TRANS).toBe(0);
            expect(dev.state().buffer.length).toBe(0x8000);
            for (const v of Object.values(dev.metrics())) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
          }
          for (const f of wire.sent) expect(f.length >= 1 && f.length <= 1518).toBe(true);
        }),
        // A fixed seed (NE2K_FUZZ_SEED to try others): the outcome coverage below must not
        // depend on the draw (a random seed once reached no 'full' ring in 500 runs).
        { numRuns: 500, seed: Number(process.env.NE2K_FUZZ_SEED ?? 20261207) },
      );
      // The runs reached every receive outcome, so the property was exercised where it matters.
      for (const r of ['stored', 'filtered', 'stopped', 'full', 'invalid', 'oversize']) expect(outcomes.get(r) ?? 0, r).toBeGreaterThan(0);
    } finally {
      NicMemory.prototype.writeByte = orig;
    }
  });
});
