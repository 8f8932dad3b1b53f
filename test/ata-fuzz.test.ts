// Random guest access sequences against the ATA model (the class of inputs that found the
// QEMU IDE CVEs): nothing throws, every operation settles, the drive never stays BSY, the
// backend never sees an out-of-range request, and the IRQ line follows pending && !nIEN.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.ts';
import type { DevSize } from '../src/device.ts';
import { GuestRam, makeRig } from './helpers/ata-driver.ts';

const RAM = 0x10_0000;

type Op =
  | { t: 'read'; region: number; offset: number; size: DevSize }
  | { t: 'write'; region: number; offset: number; size: DevSize; value: number }
  | { t: 'insw'; count: number }
  | { t: 'outsw'; count: number }
  | { t: 'settle' }
  | { t: 'rw'; cmd: number; lba: number; count: number; startFirst: boolean; prd: number }
  | { t: 'prd'; at: number; entries: Array<[number, number, boolean]> };

// Biased towards meaningful registers and opcodes so runs reach deep states.
const opcodes = [0x06, 0x20, 0x24, 0x29, 0x30, 0x34, 0x39, 0x40, 0xc4, 0xc5, 0xc6, 0xc8, 0xca, 0x25, 0x35, 0xe7, 0xea, 0xec, 0xef, 0xf8, 0x27, 0x90, 0xa1, 0xe5];
const size = fc.constantFrom<DevSize>(1, 1, 1, 2, 4);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('write' as const), region: fc.constant(0), offset: fc.constant(7), size: fc.constant<DevSize>(1), value: fc.constantFrom(...opcodes) }),
  fc.record({ t: fc.constant('write' as const), region: fc.constant(0), offset: fc.integer({ min: 1, max: 6 }), size: fc.constant<DevSize>(1), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ t: fc.constant('write' as const), region: fc.constant(1), offset: fc.constant(0), size: fc.constant<DevSize>(1), value: fc.constantFrom(0, 2, 4, 0x80) }),
  fc.record({ t: fc.constant('write' as const), region: fc.constant(2), offset: fc.constantFrom(0, 2, 4), size: fc.constantFrom<DevSize>(1, 4), value: fc.oneof(fc.constantFrom(0, 1, 8, 9, 6, RAM, RAM + 0xfff8), fc.nat()) }),
  fc.record({ t: fc.constant('write' as const), region: fc.integer({ min: 0, max: 3 }), offset: fc.integer({ min: 0, max: 17 }), size, value: fc.nat() }),
  fc.record({ t: fc.constant('read' as const), region: fc.integer({ min: 0, max: 3 }), offset: fc.integer({ min: 0, max: 17 }), size }),
  fc.record({ t: fc.constant('insw' as const), count: fc.integer({ min: 1, max: 600 }) }),
  fc.record({ t: fc.constant('outsw' as const), count: fc.integer({ min: 1, max: 600 }) }),
  fc.constant({ t: 'settle' as const }),
  // Well-formed commands and PRD tables, so runs reach transfers and their failure paths.
  fc.record({
    t: fc.constant('rw' as const),
    cmd: fc.constantFrom(0x20, 0x30, 0xc4, 0xc5, 0xc8, 0xca, 0x25, 0x35, 0x06),
    lba: fc.integer({ min: 0, max: 270 }),
    count: fc.integer({ min: 0, max: 20 }),
    startFirst: fc.boolean(),
    prd: fc.constantFrom(RAM, RAM + 0x100, RAM + 0xff0, RAM + 0x1234),
  }),
  fc.record({
    t: fc.constant('prd' as const),
    at: fc.constantFrom(RAM, RAM + 0x100, RAM + 0xff0, RAM + 0x1234),
    entries: fc.array(fc.tuple(fc.integer({ min: RAM - 0x1000, max: RAM + 0x2_0000 }), fc.oneof(fc.constantFrom(512, 1024, 4096, 0), fc.integer({ min: 0, max: 0xffff })), fc.boolean()), { minLength: 1, maxLength: 8 }),
  }),
);

async function settle(dev: { whenIdle(): Promise<void> }): Promise<void> {
  // Bounded: a hang fails the property instead of the test timing out.
  let done = false;
  await Promise.race([dev.whenIdle().then(() => (done = true)), new Promise((r) => setTimeout(r, 2000))]);
  if (!done) throw new Error('an operation never settled');
  await new Promise((r) => setImmediate(r));
}

describe('ATA model under random guest accesses', () => {
  it('never throws, never hangs, stays in range and keeps the IRQ invariant', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 4096, maxLength: 4096 }), async (ops, prdBytes) => {
        const ram = new GuestRam(RAM, 0x2_0000);
        ram.mem.set(prdBytes, 0); // random PRD tables at the start of guest memory
        const blk = new MemoryBackend(256);
        const { dev, irq } = makeRig(blk, {}, ram);
        let devctl = 0;
        for (const o of ops) {
          if (o.t === 'read') dev.read(o.region, o.offset, o.size);
          else if (o.t === 'write') {
            dev.write(o.region, o.offset, o.size, o.value);
            if (o.region === 1 && o.offset === 0 && o.size === 1) devctl = o.value & 0xff;
          } else if (o.t === 'insw') dev.readString(0, 0, 2, o.count);
          else if (o.t === 'outsw') dev.writeString(0, 0, 2, new Uint8Array(o.count * 2));
          else if (o.t === 'prd') {
            if (o.at + o.entries.length * 8 <= RAM + ram.size) ram.putPrd(o.at, o.entries);
          } else if (o.t === 'rw') {
            const dma = [0xc8, 0xca, 0x25, 0x35, 0x06].includes(o.cmd);
            if (dma) {
              dev.write(2, 4, 4, o.prd);
              dev.write(2, 0, 1, o.cmd === 0xc8 || o.cmd === 0x25 ? 8 : 0);
              if (o.startFirst) dev.write(2, 0, 1, dev.read(2, 0, 1) | 1);
            }
            for (const [reg, v] of [[2, o.count], [3, o.lba & 0xff], [4, o.lba >> 8], [5, 0], [6, 0xe0]] as const) dev.write(0, reg, 1, v);
            dev.write(0, 7, 1, o.cmd);
            if (dma && !o.startFirst) dev.write(2, 0, 1, dev.read(2, 0, 1) | 1);
          } else await settle(dev);
        }
        await settle(dev);
        const status = dev.read(1, 0, 1); // alternate status: no side effects
        const selected1 = (dev.read(0, 6, 1) & 0x10) !== 0;
        if (!(devctl & 0x04) && !selected1) expect(status & 0x80).toBe(0); // BSY only while SRST is held
        expect(dev.metrics().backendErrors).toBeUndefined(); // the backend never saw a bad request
        if (devctl & 0x02) expect(irq.level).toBe(false); // nIEN masks the line
        dev.read(0, 7, 1); // status read acknowledges
        expect(irq.level).toBe(false);
        expect(ram.reads + ram.writes).toBeLessThan(10_000); // walks and transfers are bounded
      }),
      { numRuns: 300 },
    );
  });
});
