// Model-based test (fc.commands + fc.asyncModelRun): guests issue operations at random
// moments, time moves at random moments. The model is simpler than the system: one private
// device per guest (each guest's operations replayed alone). Invariants are checked after
// every command; solo equivalence at the end.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import sim from '../machines/sim.ts';
import roundRobin from '../policies/round-robin.ts';
import { ArrayGuestMemory } from '../src/check/guest-memory.ts';
import { memBaseOf, runSolo } from '../src/check/harness.ts';
import { runScript, type Op } from '../src/check/script.ts';
import { SimDevice } from '../src/devices/sim.ts';
import { settle, VirtualTime } from '../src/check/virtual-time.ts';
import { createMux, type MuxEngine } from '../src/mux/engine.ts';

const GUESTS = 3;
const SECTORS = 3;
const MEM = 64;

interface Model {
  ops: Op[][];
}

interface Real {
  vt: VirtualTime;
  mux: MuxEngine;
  chains: Promise<void>[];
  seen: Array<Array<number | string>>;
  errors: string[];
  irqViolations: string[];
  mems: ArrayGuestMemory[];
}

class Issue implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly g: number,
    readonly op: Op,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    m.ops[this.g].push(this.op);
    const g = this.g;
    r.chains[g] = r.chains[g].then(async () => {
      const res = await runScript([this.op], {
        port: (offset, acc) => r.mux.access(`g${g}`, 0, offset, acc),
        memBase: memBaseOf(g),
        tick: () => r.vt.advance(5_000),
        sleep: (ns) => r.vt.sleep(ns),
      });
      r.seen[g].push(...res.seen);
      r.errors.push(...res.errors);
    });
    await invariants(r);
  }
  toString = () => `g${this.g}: ${JSON.stringify(this.op)}`;
}

class Tick implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(_m: Model, r: Real): Promise<void> {
    await settle();
    r.vt.fireNext();
    await invariants(r);
  }
  toString = () => 'tick';
}

async function invariants(r: Real): Promise<void> {
  await settle();
  const st = r.mux.stats();
  expect(st.unsafeSwitches).toBe(0);
  expect(st.policyErrors).toBe(0);
  expect(r.irqViolations).toEqual([]);
  expect(r.errors).toEqual([]);
}

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('read' as const), block: fc.integer({ min: 0, max: SECTORS }), rep: fc.boolean() }),
  fc.record({
    op: fc.constant('write' as const),
    block: fc.integer({ min: 0, max: SECTORS }),
    rep: fc.boolean(),
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 8, maxLength: 8 }),
  }),
  fc.record({ op: fc.constant('dmaRead' as const), block: fc.integer({ min: 0, max: SECTORS - 1 }), at: fc.constantFrom(0, 8, 56, 60, 200) }),
  fc.record({ op: fc.constant('dmaWrite' as const), block: fc.integer({ min: 0, max: SECTORS - 1 }), at: fc.constantFrom(0, 16, 60, -8) }),
  fc.record({ op: fc.constant('key' as const), key: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('ien' as const), on: fc.boolean() }),
  fc.constant({ op: 'peek' as const }),
  fc.record({ op: fc.constant('think' as const), ns: fc.integer({ min: 1, max: 300_000 }) }),
);

const commands = fc.commands(
  [
    fc.tuple(fc.integer({ min: 0, max: GUESTS - 1 }), op).map(([g, o]) => new Issue(g, o) as fc.AsyncCommand<Model, Real>),
    fc.constant(new Tick() as fc.AsyncCommand<Model, Real>),
  ],
  { maxCommands: 60 },
);

describe('mux engine against a per-guest model (fc.commands)', () => {
  it('keeps every guest equivalent to its solo model under random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const vt = new VirtualTime();
        const irqViolations: string[] = [];
        const mux = createMux(sim, { deviceId: 'sim0', policy: roundRobin({ quantumNs: 20_000 }), clock: vt.clock, timers: vt.timersApi });
        mux.bind(new SimDevice(mux.edges, GUESTS * SECTORS));
        const mems = Array.from({ length: GUESTS }, (_, i) => new ArrayGuestMemory(memBaseOf(i), MEM));
        for (let i = 0; i < GUESTS; i++)
          mux.attach(
            {
              id: `g${i}`,
              weight: 1,
              priority: 0,
              deadlineNs: Infinity,
              memory: mems[i],
              setIrq: (_l, level) => {
                if (level && mux.ownerId() !== `g${i}`) irqViolations.push(`g${i} got an IRQ while ${mux.ownerId()} owns`);
              },
            },
            { window: { startLba: i * SECTORS, sectors: SECTORS } },
          );
        const real: Real = { vt, mux, chains: mems.map(() => Promise.resolve()), seen: mems.map(() => []), errors: [], irqViolations, mems };
        const model: Model = { ops: mems.map(() => []) };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        // Let everything finish, then compare with each guest's solo model.
        let all = false;
        Promise.all(real.chains).then(() => (all = true));
        for (let i = 0; i < 100_000 && !all; i++) {
          await settle();
          if (!all) vt.fireNext();
        }
        expect(all).toBe(true);
        await invariants(real);
        for (let g = 0; g < GUESTS; g++) {
          const solo = await runSolo({ id: `g${g}`, weight: 1, priority: 0, deadlineNs: Infinity, sectors: SECTORS, memSize: MEM, ops: model.ops[g] }, g);
          expect(real.seen[g]).toEqual(solo.result.seen);
          expect([...mems[g].bytes]).toEqual([...solo.memory]);
        }
        await mux.close();
      }),
      { numRuns: 60 },
    );
  });
});
