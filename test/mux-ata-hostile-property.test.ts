// Property: whatever a hostile guest does on the ATA ports — every register, sizes 1/2/4,
// string forms of any count, random commands and task files, resets, bus-master starts with
// bad PRD tables — interleaved with two honest guests on one disk, the honest guests observe
// exactly what a lone drive would show them (their writes read back, their commands succeed)
// and no byte of the physical disk outside the hostile guest's window is changed except by
// its honest owner. The hostile guest is cut off (crash detach) at the end if it left the
// device mid-command, as its process dying would.

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { type AtaRig, CMD, DMA_BASE, openAtaRig, physical, tagged } from './helpers/ata-mux.ts';

const CTL = 0x3f6;
const SECTORS = 4096;
const WIN = { h1: { startLba: 0, sectors: 1024 }, h2: { startLba: 1024, sectors: 1024 }, x: { startLba: 2048, sectors: 1024 } };
const OPCODES = [0x20, 0x24, 0x29, 0x30, 0x34, 0x39, 0xc4, 0xc5, 0xc6, 0xc8, 0x25, 0xca, 0x35, 0xe7, 0xea, 0xec, 0xef, 0xf8, 0x27, 0x40, 0x90, 0x08, 0xf9, 0x37, 0xff, 0x00];

type HostileOp =
  | { k: 'io'; reg: number; size: 1 | 2 | 4; dir: 'read' | 'write'; count: number; seed: number }
  | { k: 'cmd'; op: number; lba: number; count: number; ext: boolean; viaString: boolean; data: 'none' | 'out' | 'in'; extraWords: number }
  | { k: 'srst' }
  | { k: 'bm'; prd: number; start: boolean; dir: number }
  | { k: 'yield' };

/** A register of the ATA function: command block 0-7, device control, bus master 0-7 (resolved at run time). */
const regArb = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.constant(100), fc.integer({ min: 200, max: 207 }));

const opArb: fc.Arbitrary<HostileOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('io' as const), reg: regArb, size: fc.constantFrom(1 as const, 2 as const, 4 as const), dir: fc.constantFrom('read' as const, 'write' as const), count: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 600 })), seed: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('cmd' as const), op: fc.constantFrom(...OPCODES), lba: fc.oneof(fc.integer({ min: 0, max: 1100 }), fc.integer({ min: 0, max: SECTORS + 10 })), count: fc.integer({ min: 0, max: 4 }), ext: fc.boolean(), viaString: fc.boolean(), data: fc.constantFrom('none' as const, 'out' as const, 'in' as const), extraWords: fc.integer({ min: -64, max: 300 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'srst' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('bm' as const), prd: fc.oneof(fc.constant(DMA_BASE), fc.integer({ min: 0, max: 0xffff_fff0 })), start: fc.boolean(), dir: fc.constantFrom(0, 8) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'yield' as const }) },
);

let rig: AtaRig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

function bytesOf(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

async function hostile(r: AtaRig, ops: HostileOp[]): Promise<void> {
  const x = r.g('x');
  const bm = (x.driver as unknown as { bmBase: number }).bmBase;
  const port = (reg: number) => (reg === 100 ? CTL : reg >= 200 ? bm + (reg - 200) : CMD + reg);
  const access = (a: Omit<Access, 'space'>) => x.guest.access({ space: 'pio', ...a } as Access);
  // The hostile guest's own DMA memory holds a PRD table pointing anywhere.
  new DataView(x.dma.buffer).setUint32(0, 0xdead_0000, true);
  new DataView(x.dma.buffer).setUint32(4, 0x0000_0200, true);
  for (const op of ops) {
    switch (op.k) {
      case 'io': {
        const addr = port(op.reg);
        if (op.dir === 'read') await access({ addr, size: op.size, dir: 'read', count: op.count });
        else if (op.count === 1) await access({ addr, size: op.size, dir: 'write', value: bytesOf(op.seed, 4).reduce((v, b, i) => v + b * 2 ** (8 * i), 0) % 2 ** (8 * op.size) });
        else await access({ addr, size: op.size, dir: 'write', count: op.count, data: bytesOf(op.seed, op.count * op.size) });
        break;
      }
      case 'cmd': {
        const io = x.driver.io;
        await io.outb(CMD + 6, 0xe0 | (op.ext ? 0 : (op.lba >> 24) & 0xf));
        if (op.ext) for (const [o, v] of [[2, 0], [3, (op.lba >> 24) & 0xff], [4, 0], [5, 0]]) await io.outb(CMD + o, v);
        await io.outb(CMD + 2, op.count);
        await io.outb(CMD + 3, op.lba & 0xff);
        await io.outb(CMD + 4, (op.lba >> 8) & 0xff);
        await io.outb(CMD + 5, (op.lba >> 16) & 0xff);
        if (op.viaString) await access({ addr: CMD + 7, size: 1, dir: 'write', count: 2, data: Uint8Array.of(op.op, op.op) });
        else await io.outb(CMD + 7, op.op);
        // The data phase as one string access, of the words the command asks for give or take.
        const words = Math.max(1, (op.count || 1) * 256 + op.extraWords);
        if (op.data === 'out') await access({ addr: CMD, size: 2, dir: 'write', count: words, data: bytesOf(op.lba, words * 2) });
        else if (op.data === 'in') await access({ addr: CMD, size: 2, dir: 'read', count: words });
        break;
      }
      case 'srst':
        await x.driver.io.outb(CTL, 0x04);
        await x.driver.io.outb(CTL, 0x00);
        break;
      case 'bm':
        await x.driver.io.outl(bm + 4, op.prd);
        await x.driver.io.outb(bm, op.dir | (op.start ? 1 : 0));
        break;
      case 'yield':
        await new Promise((res) => setImmediate(res));
        break;
    }
  }
  // Its process ends: the MUX cuts it off if it left the device mid-command.
  x.guest.detach('crash');
}

/** An honest guest's workload: PIO and DMA writes of tagged sectors, reads back, a flush. */
async function honest(r: AtaRig, name: 'h1' | 'h2', tag: number): Promise<string[]> {
  const d = r.g(name).driver;
  const bad: string[] = [];
  await d.identify();
  for (let i = 0; i < 3; i++) {
    const lba = 10 + i * 3;
    if (i % 2) await d.writeDma(lba, tagged(tag, lba, 2));
    else await d.writePio(lba, tagged(tag, lba, 2));
    await new Promise((res) => setImmediate(res));
    const back = i % 2 ? await d.readPio(lba, 2) : await d.readDma(lba, 2);
    if (!back.every((b, j) => b === tagged(tag, lba, 2)[j])) bad.push(`${name} lba ${lba}: read back differs`);
  }
  await d.flush();
  return bad;
}

describe('hostile access forms against honest guests (property)', () => {
  it('honest guests see a lone drive; nothing outside the hostile window changes but by its owner', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        await rig?.close();
        rig = await openAtaRig({ sectors: SECTORS, guests: [{ name: 'h1', window: WIN.h1 }, { name: 'h2', window: WIN.h2 }, { name: 'x', window: WIN.x }], quantumNs: 0 });
        const r = rig;
        const before = r.blk!.data.slice();
        const [b1, b2] = await Promise.all([honest(r, 'h1', 1), honest(r, 'h2', 2), hostile(r, ops)]);
        expect([...b1, ...b2]).toEqual([]);
        // Every sector outside x's window: as before, except the honest owners' own sectors.
        const expected = before.slice();
        for (const [name, tag] of [['h1', 1], ['h2', 2]] as const)
          for (let i = 0; i < 3; i++) {
            const lba = 10 + i * 3;
            expected.set(tagged(tag, lba, 2), (WIN[name].startLba + lba) * 512);
          }
        for (let lba = 0; lba < SECTORS; lba++) {
          if (lba >= WIN.x.startLba && lba < WIN.x.startLba + WIN.x.sectors) continue;
          const got = physical(r.blk!, lba);
          const want = expected.subarray(lba * 512, (lba + 1) * 512);
          if (!got.every((b, i) => b === want[i])) throw new Error(`sector ${lba} changed outside the hostile window`);
        }
        expect(r.stats().unsafeSwitches).toBe(0);
      }),
      { numRuns: 25 },
    );
  }, 240_000); // 25 rigs; a loaded CI machine took over 60 s for 40
});
