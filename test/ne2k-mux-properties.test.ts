// Random register programs (fast-check) of two guests time-sliced on one NE2000 through
// machines/ne2k: every switch happens in the chart's safe state, and every value each guest
// reads is the value a lone card with its MAC reads for the same program (solo equivalence of
// the register file: pages 0-2, the virtual ISR, TSR, the counters, the PROM through remote DMA,
// the run state across stops, loopback, the reset port). The model a guest is compared with is
// simply a card of its own. Buffer memory beyond the PROM is shared by the time-sliced card, so
// programs read by remote DMA only there. Fixed seed (NE2K_MUX_SEED for others).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Device } from '../src/device.ts';
import { Ne2kDevice } from '../src/devices/ne2k/ne2k-device.ts';
import * as R from '../src/devices/ne2k/regs.ts';
import { SAFE_CONDITION, statePathOf } from '../machines/ne2k/chart.ts';
import { openNe2kMux } from './helpers/ne2k-mux.ts';

type Op =
  | { t: 'page'; page: number } // CR: started, no DMA, this page
  | { t: 'write'; off: number; v: number } // a register on the current page (page 3 is the MUX's: not written)
  | { t: 'read'; off: number }
  | { t: 'stop' }
  | { t: 'transmit'; len: number } // TBCR (0 or too long: aborted, TXE) and TXP; nothing in the buffer is sent
  | { t: 'prom'; dcr: number; size: 1 | 2 | 4; count: number; start: number } // a remote read of the PROM
  | { t: 'reset' }; // the reset port

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('page' as const), page: fc.integer({ min: 0, max: 2 }) }),
  // No writes of TCR loopback bits on page 0 half the time would be kinder; any value is fair.
  fc.record({ t: fc.constant('write' as const), off: fc.integer({ min: 1, max: 15 }), v: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ t: fc.constant('read' as const), off: fc.integer({ min: 1, max: 15 }) }),
  fc.constant({ t: 'stop' as const }),
  fc.record({ t: fc.constant('transmit' as const), len: fc.constantFrom(0, 1600) }),
  fc.record({ t: fc.constant('prom' as const), dcr: fc.constantFrom(0x48, 0x49), size: fc.constantFrom(1 as const, 2 as const, 4 as const), count: fc.integer({ min: 1, max: 8 }), start: fc.integer({ min: 0, max: 24 }) }),
  fc.constant({ t: 'reset' as const }),
);

const MACS = ['52:54:00:00:00:0a', '52:54:00:00:00:0b'];
const macBytes = (s: string) => Uint8Array.from(s.split(':').map((x) => parseInt(x, 16)));

/** Run a program on a card; returns every value read. Ends on page 0, started, normal mode (the card may change hands). */
async function run(dev: Device, ops: Op[], between: () => Promise<void>): Promise<number[]> {
  const reads: number[] = [];
  let page = 0;
  const w = (o: number, v: number) => Promise.resolve(dev.write(0, o, 1, v));
  const r = async (o: number) => reads.push(await Promise.resolve(dev.read(0, o, 1)));
  for (const o of ops) {
    switch (o.t) {
      case 'page':
        page = o.page;
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START | (page << 6));
        break;
      case 'write':
        await w(o.off, o.v);
        break;
      case 'read':
        await r(o.off);
        break;
      case 'stop':
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP | (page << 6));
        break;
      case 'transmit':
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
        page = 0;
        await w(R.EN0_TCNTLO, o.len & 0xff);
        await w(R.EN0_TCNTHI, o.len >> 8);
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START | R.E8390_TRANS);
        await r(R.NE_CMD);
        await r(R.EN0_TSR);
        break;
      case 'prom': {
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
        page = 0;
        await w(R.EN0_DCFG, o.dcr);
        await w(R.EN0_RCNTLO, 64);
        await w(R.EN0_RCNTHI, 0);
        await w(R.EN0_RSARLO, o.start);
        await w(R.EN0_RSARHI, 0);
        await w(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
        reads.push(...(await Promise.resolve(dev.readString!(0, R.NE_DATAPORT, o.size, o.count))));
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
        break;
      }
      case 'reset':
        await r(R.NE_RESET);
        page = 0;
        break;
    }
    await between();
  }
  // Home: page 0, started, out of loopback.
  await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
  await w(R.EN0_TXCR, 0);
  await r(R.EN0_ISR);
  return reads;
}

const tick = (): Promise<void> => new Promise((res) => setImmediate(res));
const SEED = Number(process.env.NE2K_MUX_SEED ?? 20261208);

describe('machines/ne2k: random register programs of two guests', () => {
  it('every switch in the safe state; each guest reads what a lone card with its MAC reads', async () => {
    let switches = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), fc.array(op, { maxLength: 30 }), fc.array(fc.boolean(), { maxLength: 64 }), async (p0, p1, yields) => {
        const rig = openNe2kMux({ guests: ['g0', 'g1'], macs: { g0: MACS[0], g1: MACS[1] } });
        try {
          let k = 0;
          // The interleaving is drawn too: after a step a guest yields to the event loop, or not.
          const between = async () => {
            if (yields[k++ % Math.max(1, yields.length)]) await tick();
          };
          const [got0, got1] = await Promise.all([run(rig.guest('g0'), p0, between), run(rig.guest('g1'), p1, between)]);
          const lone = (i: number) => new Ne2kDevice({ irq: { set: () => {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 }, undefined, { mac: macBytes(MACS[i]) });
          expect(got0).toEqual(await run(lone(0), p0, async () => {}));
          expect(got1).toEqual(await run(lone(1), p1, async () => {}));
          const st = rig.stats();
          switches += st.switches;
          runs++;
          expect(st.unsafeSwitches).toBe(0);
          expect(st.faults).toBe(0);
          for (const t of rig.traces.filter((x) => x.kind === 'grant')) expect(t.state).toBe(statePathOf(SAFE_CONDITION));
        } finally {
          await rig.close();
        }
      }),
      { numRuns: 150, seed: SEED },
    );
    expect(switches).toBeGreaterThan(3 * runs); // the card really changed hands, again and again
  }, 60_000);
});
