// Path tests over every transition of machines/ne2k. The chart is enumerated (every state
// node, every event it declares); for each transition a shortest path (xstate/graph) reaches
// its source, takes it, and must land where an oracle written in the register domain (CR bits,
// TCR, the reset port; independent of chart.ts) says, with `safe` only in the one safe state;
// the compiled fast path must agree. Then every path is driven on the REAL NE2000 model through
// the MUX engine, register access by register access: the engine must take the transition from
// the same source to the same target, and the transitions taken there must be every declared
// one but those a synchronous card cannot show (it clears TXP inside the CR write, so nothing
// but TX_DONE ever leaves a txPending state). A new transition without a path fails here.
// Last, check-machine passes on the machine with no problem.

import { describe, expect, it } from 'vitest';
import { createActor, getInitialSnapshot, getNextSnapshot, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { checkMachine } from '../src/check/machine-lint.ts';
import { allStateNodes, createStepper, machineEventTypes, statePath } from '../src/mux/compile.ts';
import * as R from '../src/devices/ne2k/regs.ts';
import type { Device } from '../src/device.ts';
import { Ne2kDevice } from '../src/devices/ne2k/ne2k-device.ts';
import { ne2kChart } from '../machines/ne2k/chart.ts';
import { crWriteEvent } from '../machines/ne2k/classify.ts';
import { BROADCAST, ethFrame, Ne2kDriver } from '../src/guests/ne2k-driver.ts';
import { openNe2kMux, type Ne2kMuxRig } from './helpers/ne2k-mux.ts';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import type { MuxEngine } from '../src/mux/engine.ts';
import { Supervisor } from '../src/supervisor.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';

// ---- the oracle: the card's condition as bits, changed by register accesses -------------------

const STARTED = 1, PAGE0 = 2, DMA = 4, TXP = 8, LOOP = 16;
const SAFE_BITS = STARTED | PAGE0;

/**
 * A CR write of byte `v` (DP8390: STP wins over STA; neither keeps the run state; TXP ignored
 * when stopping). A remote write (RD 010) is an upload into the transmit pages: a frame is
 * staged from then on (TXP), like a transmit.
 */
function afterCr(c: number, v: number): number {
  let n = c;
  if (v & 0x01) n = n & ~STARTED & ~TXP;
  else if (v & 0x02) n |= STARTED;
  n = v >> 6 ? n & ~PAGE0 : n | PAGE0;
  n = v & 0x20 ? n & ~DMA : n | DMA;
  if (!(v & 0x20) && (v & 0x18) === 0x10) n |= TXP;
  if (!(v & 0x01) && v & 0x04) n |= TXP;
  return n;
}

/** The other events, as what the card does. */
const AFTER: Record<string, (c: number) => number> = {
  DMA_END: (c) => c & ~DMA, // the byte count ran out
  TX_DONE: (c) => c & ~TXP, // CR reads TXP clear
  LOOP_ON: (c) => (c & PAGE0 ? c | LOOP : c), // TCR is on page 0 only
  LOOP_OFF: (c) => (c & PAGE0 ? c & ~LOOP : c),
  RESET: () => PAGE0 | LOOP, // stopped, page 0, no DMA, loopback, nothing to transmit
};

const bitsName = (c: number): string =>
  `${c & STARTED ? 'started' : 'stopped'}.${[c & PAGE0 ? 'page0' : 'pageN', c & DMA ? 'dmaBusy' : 'dmaIdle', c & TXP ? 'txPending' : 'txIdle', c & LOOP ? 'loopback' : 'normal'].join('_')}`;
const ALL_BITS = Array.from({ length: 32 }, (_, c) => c);
const bitsOf = (name: string): number => {
  const c = ALL_BITS.find((b) => bitsName(b) === name);
  if (c === undefined) throw new Error(`no condition named ${name}`);
  return c;
};

/** One CR byte per CR event: the classifier's grouping of all 256 values, each checked below. */
const CR_VALUES = new Map<string, number[]>();
for (let v = 0; v < 256; v++) {
  const e = crWriteEvent(v);
  CR_VALUES.set(e, [...(CR_VALUES.get(e) ?? []), v]);
}

/** Where `event` takes the card in condition `c`, by the oracle. */
function oracle(c: number, event: string): number {
  if (event.startsWith('CR_')) return afterCr(c, CR_VALUES.get(event)![0]);
  return AFTER[event](c);
}

// ---- the chart's transitions ------------------------------------------------------------------

type Ev = { type: string };
interface Case {
  source: string;
  event: string;
  target: string;
  from: AnyMachineSnapshot;
  path: Ev[];
}

const nodeName = (path: string[]): string => path.join('.') || '(root)';

function declaredTransitions(machine: AnyStateMachine): Map<string, string> {
  const out = new Map<string, string>();
  for (const node of allStateNodes(machine))
    for (const [type, ts] of node.transitions) {
      if (type.startsWith('xstate.')) continue;
      for (const t of ts) out.set(`${nodeName(node.path)}|${type}`, (t.target ?? []).map((n: { path: string[] }) => nodeName(n.path)).join(','));
    }
  return out;
}

function buildCases(machine: AnyStateMachine): Case[] {
  const events = machineEventTypes(machine).map((type) => ({ type }));
  const paths = [...getShortestPaths(machine, { events })].sort((a, b) => a.steps.length - b.steps.length);
  const cases: Case[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    const snap = p.state as AnyMachineSnapshot;
    for (const ev of events)
      for (const t of machine.getTransitionData(snap as never, ev as never)) {
        const key = `${nodeName(t.source.path)}|${ev.type}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const target = (t.target ?? []).map((n: { path: string[] }) => nodeName(n.path)).join(',');
        cases.push({ source: nodeName(t.source.path), event: ev.type, target, from: snap, path: p.steps.map((s) => s.event as Ev).filter((e) => !e.type.startsWith('xstate.')) });
      }
  }
  return cases;
}

const declared = declaredTransitions(ne2kChart);
const cases = buildCases(ne2kChart);
const SAFE_NAME = bitsName(SAFE_BITS);

describe('machines/ne2k chart: every transition', () => {
  it('the classifier groups CR values so that every value of a group moves every condition alike', () => {
    for (const [event, values] of CR_VALUES) for (const c of ALL_BITS) for (const v of values) expect(afterCr(c, v), `${event} 0x${v.toString(16)} from ${bitsName(c)}`).toBe(afterCr(c, values[0]));
    expect(CR_VALUES.size).toBe(30);
  });

  it('declares exactly the moves of the oracle: every (condition, event) that changes the condition, RESET once at the root', () => {
    const expected = new Map<string, string>();
    for (const c of ALL_BITS)
      for (const ev of machineEventTypes(ne2kChart)) {
        if (ev === 'RESET') continue;
        const n = oracle(c, ev);
        if (n !== c) expected.set(`${bitsName(c)}|${ev}`, bitsName(n));
      }
    expected.set('(root)|RESET', bitsName(AFTER.RESET(0)));
    expect([...declared.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, target] of expected) expect(declared.get(k), k).toBe(target);
  });

  it('reaches every declared transition from the initial state (the safe condition)', () => {
    expect(cases.map((c) => `${c.source}|${c.event}`).sort()).toEqual([...declared.keys()].sort());
    expect(statePath(createActor(ne2kChart as AnyStateMachine).start().getSnapshot().value)).toBe(SAFE_NAME);
  });

  it(`takes each of the ${declared.size} transitions along its path to the oracle's target; safe only in ${SAFE_NAME}; the fast path agrees`, () => {
    for (const c of cases) {
      const actor = createActor(ne2kChart as AnyStateMachine).start();
      const fast = createStepper(ne2kChart, 'fast');
      let bits = SAFE_BITS;
      for (const e of [...c.path, { type: c.event }]) {
        bits = oracle(bits, e.type);
        actor.send(e);
        fast.send(e.type);
        const now = statePath(actor.getSnapshot().value);
        expect(now, `${c.source} --${c.event}--> via ${e.type}`).toBe(bitsName(bits));
        expect(statePath(fast.value())).toBe(now);
        expect(actor.getSnapshot().hasTag('safe')).toBe(now === SAFE_NAME);
        expect(fast.safe()).toBe(now === SAFE_NAME);
      }
      expect(statePath(actor.getSnapshot().value)).toBe(c.target);
      actor.stop();
    }
  });

  it('runs on the compiled fast path', () => {
    expect(createStepper(ne2kChart, 'auto').mode).toBe('fast');
  });

  it('check-machine passes with no problem: 32 states, one safe', async () => {
    const r = await checkMachine('ne2k');
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.states).toHaveLength(32);
    expect(r.safeStates).toEqual([SAFE_NAME]);
    expect(r.report).toMatch(/regions checked against device kind ne2k: regs/);
  }, 60_000);
});

// ---- the same transitions on the real model through the MUX engine ----------------------------

/** What the recipes need to know of the guest's CR: its page and remote DMA direction. */
interface Track {
  page0: boolean;
  dma: number; // R.E8390_RREAD, R.E8390_RWRITE, or R.E8390_NODMA
}

/** Register accesses that make the card (and the engine's classifier/translation) produce `event`. */
async function drive(rig: Ne2kMuxRig, event: string, t: Track): Promise<void> {
  const g = rig.guest('g0');
  const cr = async (v: number) => {
    // A remote DMA with bytes to move (RBCR is a page-0 register; on page N the count set before is still there).
    if (!(v & R.E8390_NODMA) && t.page0) {
      await g.write(0, R.EN0_RCNTLO, 1, 0x40);
      await g.write(0, R.EN0_RCNTHI, 1, 0);
    }
    await g.write(0, R.NE_CMD, 1, v);
    t.page0 = v >> 6 === 0;
    t.dma = v & (R.E8390_NODMA | R.E8390_RREAD | R.E8390_RWRITE);
  };
  if (event.startsWith('CR_')) {
    const parts = event.split('_');
    const dma = parts.includes('RD') ? R.E8390_RREAD : parts.includes('WR') ? R.E8390_RWRITE : R.E8390_NODMA;
    await cr((parts.includes('STA') ? R.E8390_START : parts.includes('STP') ? R.E8390_STOP : 0) | (parts.includes('PN') ? 0x40 : 0) | dma | (parts.includes('TXP') ? R.E8390_TRANS : 0));
    return;
  }
  switch (event) {
    case 'DMA_END':
      // Byte mode (DCR 0): the whole count, in the direction the command selected.
      if (t.dma === R.E8390_RWRITE) await g.writeString!(0, R.NE_DATAPORT, 1, new Uint8Array(0x40).fill(0x5a));
      else await g.readString!(0, R.NE_DATAPORT, 1, 0x40);
      return;
    case 'TX_DONE': {
      // A TXP that changes nothing else: neither STA nor STP, this page, this DMA (none when idle).
      const busy = rig.state().includes('dmaBusy');
      await cr((t.page0 ? 0 : 0x40) | (busy ? t.dma : R.E8390_NODMA) | R.E8390_TRANS);
      return;
    }
    case 'LOOP_ON':
    case 'LOOP_OFF':
      await g.write(0, R.EN0_TXCR, 1, event === 'LOOP_ON' ? 0x02 : 0);
      return;
    case 'RESET':
      await g.read(0, R.NE_RESET, 1);
      t.page0 = true;
      t.dma = R.E8390_NODMA;
      return;
    default:
      throw new Error(`no recipe for ${event}`);
  }
}

/** Back to the safe condition from anywhere: stop on page 0 without DMA, normal mode, start. */
async function home(rig: Ne2kMuxRig): Promise<void> {
  const g = rig.guest('g0');
  await g.write(0, R.NE_CMD, 1, R.E8390_NODMA | R.E8390_STOP);
  await g.write(0, R.EN0_TXCR, 1, 0);
  await g.write(0, R.NE_CMD, 1, R.E8390_NODMA | R.E8390_START);
}

/**
 * Shortest event paths from the initial state to each state without a TXP: a synchronous card
 * finishes a transmit inside the CR write (TX_DONE follows at once), so a path reaches
 * txPending by an upload (a remote write) instead.
 */
function cardPaths(): Map<string, string[]> {
  const events = machineEventTypes(ne2kChart).filter((e) => !e.includes('TXP'));
  const start = getInitialSnapshot(ne2kChart as AnyStateMachine);
  const out = new Map<string, string[]>([[statePath(start.value), []]]);
  const queue: AnyMachineSnapshot[] = [start];
  while (queue.length) {
    const snap = queue.shift()!;
    const name = statePath(snap.value);
    for (const ev of events) {
      const next = getNextSnapshot(ne2kChart as AnyStateMachine, snap, { type: ev });
      const n = statePath(next.value);
      if (out.has(n)) continue;
      out.set(n, [...out.get(name)!, ev]);
      queue.push(next);
    }
  }
  return out;
}

describe('machines/ne2k on the real NE2000 model through the MUX engine', () => {
  it('every declared transition is taken by the engine, from its source to its target, for register accesses on the card', async () => {
    const rig = openNe2kMux({ guests: ['g0'] });
    const paths = cardPaths();
    const taken = new Set<string>();
    try {
      for (const c of cases) {
        await home(rig);
        expect(rig.state()).toBe(SAFE_NAME);
        const from = rig.steps.length;
        const track: Track = { page0: true, dma: R.E8390_NODMA };
        const path = c.source === '(root)' ? [] : paths.get(c.source);
        expect(path, `a card path to ${c.source}`).toBeDefined();
        for (const e of path!) await drive(rig, e, track);
        await drive(rig, c.event, track);
        const steps = rig.steps.slice(from);
        for (const s of steps) taken.add(`${s.before}|${s.event}`);
        const hit = steps.find((s) => (c.source === '(root)' || s.before === c.source) && s.event === c.event);
        expect(hit, `${c.source} --${c.event}--> on the device (steps: ${steps.map((s) => s.event).join(' ')})`).toBeDefined();
        expect(hit!.after).toBe(c.target);
        if (c.source === '(root)') taken.add('(root)|RESET');
      }
      // Transitions recorded by state leaf; the chart declares them on leaves and RESET at the root.
      expect([...declared.keys()].filter((k) => !taken.has(k))).toEqual([]);
      const st = rig.stats();
      expect(st.unsafeSwitches).toBe(0);
      expect(st.resets).toBe(0);
      expect(st.stepper).toBe('fast');
      expect(st.perGuest[0].denials).toBe(0);
    } finally {
      await rig.close();
    }
  }, 60_000);
});

// ---- two Linux-like guests time-sliced on one card -------------------------------------------

const MACS: Record<string, number[]> = { a: [0x52, 0x54, 0x00, 0x00, 0x00, 0x0a], b: [0x52, 0x54, 0x00, 0x00, 0x00, 0x0b] };
const GRANTS = { a: '52:54:00:00:00:0a', b: '52:54:00:00:00:0b' };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A driver per guest with a ring of its own in the card's buffer (a: 0x4C-0x80, b: 0x80-0xC0). */
function driverFor(rig: Ne2kMuxRig, id: 'a' | 'b'): Ne2kDriver {
  const d = new Ne2kDriver(rig.guest(id));
  if (id === 'b') {
    d.rxStart = 0x80;
    d.stopPage = 0xc0;
  }
  return d;
}

function expectSwitchesSafe(rig: Ne2kMuxRig): number {
  const grants = rig.traces.filter((t) => t.kind === 'grant');
  for (const g of grants) {
    expect(g.safe, `grant to ${g.guest} in ${g.state}`).toBe(true);
    expect(g.state).toBe(SAFE_NAME);
  }
  expect(rig.stats().unsafeSwitches).toBe(0);
  return grants.length;
}

describe('machines/ne2k: two guests driving the card as Linux ne2k-pci does', () => {
  it('probe, init, transmit and receive by remote DMA read, interleaved: every switch in the safe state, every stored frame read by its owner intact', async () => {
    const rig = openNe2kMux({ guests: ['a', 'b'], macs: GRANTS });
    try {
      const injected: Array<{ seq: number; owner: string | null; result: string; frame: Uint8Array }> = [];
      const got: Record<string, Uint8Array[]> = { a: [], b: [] };
      let running = 2;
      const script = async (id: 'a' | 'b') => {
        const d = driverFor(rig, id);
        const prom = await d.probe();
        expect([...prom], `${id} reads its own MAC from the PROM`).toEqual(MACS[id]);
        await d.init(prom);
        for (let i = 0; i < 12; i++) {
          const r = await d.send(ethFrame(BROADCAST, MACS[id], 100 + i, i + (id === 'a' ? 0 : 50)));
          expect(r.isr & R.ENISR_TX, `${id} PTX`).not.toBe(0);
          expect(r.tsr & R.ENTSR_PTX).not.toBe(0);
          for (const f of await d.receive()) got[id].push(f.frame);
          await tick();
        }
        running--;
      };
      // The wire: a broadcast between guest steps; it lands in the ring of whoever holds the card.
      const wire = (async () => {
        for (let seq = 0; running > 0; seq++) {
          await tick();
          const frame = ethFrame(BROADCAST, [0x02, 0, 0, 0, 0, 0x99], 64 + (seq % 200), 1000 + seq);
          const owner = rig.mux.ownerId();
          injected.push({ seq, owner, result: rig.inject(frame), frame });
        }
      })();
      await Promise.all([script('a'), script('b'), wire]);
      // Each drains what is left in its own ring (the card comes back to it with its ring).
      for (const id of ['a', 'b'] as const) for (const f of await driverFor(rig, id).receive()) got[id].push(f.frame);

      const switches = expectSwitchesSafe(rig);
      expect(switches).toBeGreaterThan(4); // the card really changed hands
      const stored = injected.filter((x) => x.result === 'stored');
      expect(stored.length).toBeGreaterThan(0);
      for (const id of ['a', 'b'] as const) {
        const mine = stored.filter((x) => x.owner === id).map((x) => [...x.frame]);
        expect(got[id].map((f) => [...f]), `${id}'s frames`).toEqual(mine);
      }
      // Both guests' frames left the card intact, each with its own source MAC.
      for (const id of ['a', 'b'] as const) {
        const sent = rig.wire.sent.filter((f) => f[11] === MACS[id][5]);
        expect(sent).toHaveLength(12);
        sent.forEach((f, i) => expect([...f]).toEqual([...ethFrame(BROADCAST, MACS[id], 100 + i, i + (id === 'a' ? 0 : 50))]));
      }
      const st = rig.stats();
      expect(st.resets).toBe(0);
      expect(st.faults).toBe(0);
      expect(st.perGuest.map((g) => g.denials)).toEqual([0, 0]);
      // The card is shared in time: a unicast to a guest that does not hold the card is filtered
      // by the holder's PAR (the NIC router, not this machine, gives every guest its own ring).
      const holder = rig.mux.ownerId() as 'a' | 'b';
      const other = holder === 'a' ? 'b' : 'a';
      expect(rig.inject(ethFrame(MACS[other], [0x02, 0, 0, 0, 0, 0x99], 64))).toBe('filtered');
    } finally {
      await rig.close();
    }
  }, 60_000);

  it('a guest stalled mid remote-DMA keeps the card until the watchdog cuts it off; the other then transmits', async () => {
    const DEADLINE_NS = 50_000_000;
    const rig = openNe2kMux({ guests: ['a', 'b'], deadlineNs: DEADLINE_NS, manualWatchdog: true });
    try {
      const a = driverFor(rig, 'a');
      const b = driverFor(rig, 'b');
      await a.probe();
      await a.init(Uint8Array.from(MACS.a));
      await b.probe();
      await b.init(Uint8Array.from(MACS.b));
      expectSwitchesSafe(rig);
      // a: a remote read of 256 bytes of its ring, of which it takes 8 and then nothing more.
      const ga = rig.guest('a');
      await ga.write(0, R.NE_CMD, 1, R.E8390_NODMA | R.E8390_START);
      await ga.write(0, R.EN0_RCNTLO, 1, 0);
      await ga.write(0, R.EN0_RCNTHI, 1, 1);
      await ga.write(0, R.EN0_RSARLO, 1, 0);
      await ga.write(0, R.EN0_RSARHI, 1, 0x4c);
      await ga.write(0, R.NE_CMD, 1, R.E8390_RREAD | R.E8390_START);
      await ga.readString!(0, R.NE_DATAPORT, 4, 2);
      expect(rig.state()).toBe('started.page0_dmaBusy_txIdle_normal');
      expect(rig.mux.ownerId()).toBe('a');
      expect(rig.heldWatchdogs().map((t) => t.delayNs)).toEqual([DEADLINE_NS]);
      // b wants to transmit: it waits, however long, while a's transfer is open.
      const frame = ethFrame(BROADCAST, MACS.b, 80, 7);
      const sending = b.send(frame);
      for (let i = 0; i < 50; i++) await tick();
      expect(rig.mux.ownerId()).toBe('a');
      expect(rig.stats().perGuest.find((g) => g.guest === 'b')!.stalls).toBeGreaterThan(0);
      expect(rig.wire.sent).toHaveLength(0);
      expect(rig.fireWatchdogs()).toBe(1); // the deadline passes
      const r = await sending;
      expect(r.tsr & R.ENTSR_PTX).not.toBe(0);
      expect([...rig.wire.sent[0].subarray(0, frame.length)]).toEqual([...frame]);
      const st = rig.stats();
      expect(st.faults).toBe(1);
      expect(st.resets).toBe(1);
      expect(st.unsafeSwitches).toBe(0);
      expect(st.perGuest.find((g) => g.guest === 'a')!.faulted).toBe(true);
      expect(st.perGuest.find((g) => g.guest === 'b')!.faulted).toBe(false);
      expect(rig.state()).toBe(SAFE_NAME);
      await expect(ga.read(0, R.NE_CMD, 1)).rejects.toThrow(/faulted/);
    } finally {
      await rig.close();
    }
  }, 60_000);
});

describe('machines/ne2k: a guest granted a MAC reads its own PROM', () => {
  it('byte, word and 32-bit reads of the PROM (and past its end) answer as a lone card with that MAC', async () => {
    const rig = openNe2kMux({ guests: ['a', 'b'], macs: GRANTS });
    const lone = new Ne2kDevice({ irq: { set: () => {} }, dma: { read: async () => null, write: async () => false }, clock: () => 0 }, undefined, { mac: Uint8Array.from(MACS.b) });
    try {
      await new Ne2kDriver(rig.guest('a')).probe(); // a holds the card first; b's reads come after a switch
      const readProm = async (dev: Device, dcr: number, size: 1 | 2 | 4, count: number, start: number) => {
        const w = (o: number, v: number) => Promise.resolve(dev.write(0, o, 1, v));
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_STOP);
        await w(R.EN0_DCFG, dcr);
        await w(R.EN0_RCNTLO, 64);
        await w(R.EN0_RCNTHI, 0);
        await w(R.EN0_RSARLO, start);
        await w(R.EN0_RSARHI, 0);
        await w(R.NE_CMD, R.E8390_RREAD | R.E8390_START);
        const one = [...(await Promise.resolve(dev.readString!(0, R.NE_DATAPORT, size, count)))];
        const single = await Promise.resolve(dev.read(0, R.NE_DATAPORT, size));
        await w(R.NE_CMD, R.E8390_NODMA | R.E8390_START);
        return [...one, single];
      };
      for (const [dcr, size, count, start] of [[0x48, 1, 40, 0], [0x49, 1, 20, 0], [0x49, 2, 20, 3], [0x49, 4, 10, 2], [0x48, 2, 12, 30]] as const) {
        const want = await readProm(lone, dcr, size, count, start);
        expect(await readProm(rig.guest('b'), dcr, size, count, start), `DCR ${dcr.toString(16)} size ${size} from ${start}`).toEqual(want);
      }
      expect(rig.stats().switches).toBeGreaterThan(1);
      expectSwitchesSafe(rig);
    } finally {
      await rig.close();
    }
  }, 60_000);
});

describe('machines/ne2k from a config: "mux": { "machine": "ne2k" }', () => {
  it('the supervisor time-slices the card through the engine; guests probe their granted MACs and transmit; every switch safe', async () => {
    const config = parseConfig({
      devices: [{ id: 'nic0', kind: 'ne2k', mux: { machine: 'ne2k' } }],
      guests: (['a', 'b'] as const).map((name) => ({ name, grants: [{ device: 'nic0', mac: GRANTS[name] }] })),
    });
    let engine: MuxEngine | null = null;
    let router = false;
    const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config, { onEngine: (_id, e) => (engine = e), onNicRouter: () => (router = true) }) });
    await sup.start();
    try {
      const traces: string[] = [];
      const ran = await Promise.all(
        (['a', 'b'] as const).map(async (name) => {
          const port = sup.attachLocalGuest(name);
          const d = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
          if (name === 'b') d.rxStart = 0x80;
          if (name === 'b') d.stopPage = 0xc0;
          const mac = await d.probe();
          await d.init(mac);
          for (let i = 0; i < 5; i++) traces.push(`${name}:${(await d.send(ethFrame(BROADCAST, mac, 80, i))).tsr & R.ENTSR_PTX}`);
          return [...mac];
        }),
      );
      expect(ran).toEqual([MACS.a, MACS.b]);
      expect(router).toBe(false);
      expect(engine).not.toBeNull();
      expect(traces.filter((t) => t.endsWith(':1'))).toHaveLength(10);
      const st = sup.stats().devices.find((d) => d.device === 'nic0')!;
      expect(st.switches).toBeGreaterThan(1);
      expect(st.unsafeSwitches).toBe(0);
      expect(st.faults).toBe(0);
      expect((engine as unknown as MuxEngine).stats().state).toBe(SAFE_NAME);
    } finally {
      await sup.close();
    }
  }, 60_000);
});

describe('machines/ne2k: status the card keeps for its owner stays each guest\'s own', () => {
  it('TSR of the last own transmit, tally counters (CNTR2: frames a full ring missed), pending ISR bits and the interrupt they raise', async () => {
    const rig = openNe2kMux({ guests: ['a', 'b'], macs: GRANTS });
    try {
      const a = driverFor(rig, 'a');
      const b = driverFor(rig, 'b');
      await a.init(await a.probe());
      expect((await a.send(ethFrame(BROADCAST, MACS.a, 80, 1))).tsr).toBe(R.ENTSR_PTX);
      await b.init(await b.probe());
      const gb = rig.guest('b');
      // b: a transmit of 0 bytes is aborted (TSR ABT, TXE), and its ring fills up.
      await gb.write(0, R.EN0_TCNTLO, 1, 0);
      await gb.write(0, R.EN0_TCNTHI, 1, 0);
      await gb.write(0, R.NE_CMD, 1, R.E8390_NODMA | R.E8390_START | R.E8390_TRANS);
      expect(await gb.read(0, R.EN0_TSR, 1)).toBe(R.ENTSR_ABT);
      let missed = 0;
      for (let i = 0; i < 40; i++) if (rig.inject(ethFrame(MACS.b, [2, 0, 0, 0, 0, 9], 1500, i)) === 'full') missed++;
      expect(missed).toBeGreaterThan(0);
      const bIsr = await gb.read(0, R.EN0_ISR, 1);
      expect(bIsr & R.ENISR_RX).not.toBe(0);
      expect(rig.irqs.get('b')!.at(-1)).toBe(true); // PRX, unmasked (IMR 0x3F): b's line is up
      const aIrqs = rig.irqs.get('a')!.length;
      // a comes back: its own TSR, no counts of b's, none of b's status bits, not b's interrupt.
      const ga = rig.guest('a');
      expect(await ga.read(0, R.EN0_TSR, 1)).toBe(R.ENTSR_PTX);
      expect(await ga.read(0, R.EN0_COUNTER2, 1)).toBe(0);
      expect((await ga.read(0, R.EN0_ISR, 1)) & (R.ENISR_RX | R.ENISR_TX_ERR)).toBe(0);
      expect(rig.irqs.get('a')!.slice(aIrqs)).not.toContain(true);
      expect(rig.irqs.get('b')!.at(-1)).toBe(false); // lowered when b lost the card
      // b again: its TSR, its missed frames (once: clear on read), its pending PRX.
      const bIrqs = rig.irqs.get('b')!.length;
      expect(await gb.read(0, R.EN0_TSR, 1)).toBe(R.ENTSR_ABT);
      expect(rig.irqs.get('b')!.slice(bIrqs)).toContain(true); // raised again when b got the card back
      expect(await gb.read(0, R.EN0_COUNTER2, 1)).toBe(missed);
      expect(await gb.read(0, R.EN0_COUNTER2, 1)).toBe(0);
      expect((await gb.read(0, R.EN0_ISR, 1)) & R.ENISR_RX).not.toBe(0);
      expect(rig.stats().switches).toBeGreaterThanOrEqual(4);
      expectSwitchesSafe(rig);
    } finally {
      await rig.close();
    }
  }, 60_000);
});
