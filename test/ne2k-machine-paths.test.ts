// Path tests over every transition of machines/ne2k. The chart is enumerated (every state
// node, every event it declares); for each transition a shortest path (xstate/graph) reaches
// its source, takes it, and must land where an oracle written in the register domain (CR bits,
// TCR, the reset port; independent of chart.ts) says, with `safe` only in the one safe state;
// the compiled fast path must agree. Then every path is driven on the REAL NE2000 model through
// the MUX engine, register access by register access: the engine must take the transition from
// the same source to the same target, and every declared transition must be taken there (a
// synchronous card clears TXP inside the CR write, so those paths reach txPending by an upload,
// a remote write, instead). A new transition without a path fails here.
// Last, check-machine passes on the machine with no problem. Guests driving the card as Linux
// does: test/ne2k-mux-guests.test.ts.

import { describe, expect, it } from 'vitest';
import { createActor, getInitialSnapshot, getNextSnapshot, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { checkMachine } from '../src/check/machine-lint.ts';
import { allStateNodes, createStepper, machineEventTypes, statePath } from '../src/mux/compile.ts';
import * as R from '../src/devices/ne2k/regs.ts';
import { ne2kChart } from '../machines/ne2k/chart.ts';
import { crWriteEvent } from '../machines/ne2k/classify.ts';
import { openNe2kMux, type Ne2kMuxRig } from './helpers/ne2k-mux.ts';

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
