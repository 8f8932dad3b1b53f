// Path tests over every transition of machines/ata: for each (source state node, event) the
// chart declares, a shortest path (xstate/graph) reaches a state where that transition is the
// one taken, takes it, and lands where the ATA protocol says (the hand-written table below),
// with the `safe` tag only in idle and error. The compiled fast-path table (src/mux/compile.ts) must
// follow the same path to the same state. Then the same protocol is driven on the REAL ATA
// model through the MUX engine, register access by register access, and the engine's state
// must be the chart's state for the events those accesses produce.

import { describe, expect, it } from 'vitest';
import { createActor, type AnyStateMachine, type AnyMachineSnapshot } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { ataChart } from '../machines/ata/chart.ts';
import { allStateNodes, createStepper, machineEventTypes, statePath } from '../src/mux/compile.ts';
import { openAtaMux, type AtaMuxRig } from './helpers/ata-mux-engine.ts';

/** The protocol, written down independently of the chart: source node, event -> target state. */
const CMDS = { CMD_PIO_IN: 'pioIn.busy', CMD_PIO_OUT: 'pioOut.busy', CMD_DMA: 'dma.armed', CMD_NODATA: 'nodata' };
const STATUS_ENDS = { ST_READY: 'idle', ST_ERR: 'error' };
const EXPECTED: Record<string, Record<string, string>> = {
  '(root)': { SRST: 'reset.asserted' }, // SRST aborts anything
  idle: { ...CMDS, BM_START: 'dma.early' },
  pioIn: STATUS_ENDS,
  'pioIn.busy': { ST_DRQ: 'pioIn.data', ALT_DRQ: 'pioIn.data' },
  'pioIn.data': { ST_BUSY: 'pioIn.busy', ALT_BUSY: 'pioIn.busy', DATA_END: 'idle' }, // last data-in word
  pioOut: STATUS_ENDS,
  'pioOut.busy': { ST_DRQ: 'pioOut.data', ALT_DRQ: 'pioOut.data' },
  'pioOut.data': { ST_BUSY: 'pioOut.busy', ALT_BUSY: 'pioOut.busy' },
  nodata: STATUS_ENDS,
  'dma.early': { CMD_DMA: 'dma.active', BM_STOP: 'idle', CMD_PIO_IN: 'pioIn.busy', CMD_PIO_OUT: 'pioOut.busy', CMD_NODATA: 'nodata' },
  'dma.armed': { BM_START: 'dma.active', ...STATUS_ENDS },
  'dma.active': STATUS_ENDS,
  error: { ...CMDS, ERR_READ: 'idle', BM_START: 'dma.early' },
  'reset.asserted': { SRST_END: 'reset.released' },
  'reset.released': { ...CMDS, ST_READY: 'idle', ST_ERR: 'idle', ST_DRQ: 'idle' },
};
const SAFE_STATES = new Set(['idle', 'error']); // error: the failed command is over, its result saved per guest

type Ev = { type: string };
interface Case {
  source: string; // declaring state node
  event: string;
  target: string;
  from: AnyMachineSnapshot; // a reachable state where this transition is the one taken
  path: Ev[]; // events from the initial state to `from`
}

const nodeName = (path: string[]): string => path.join('.') || '(root)';

/** Every (state node, event) transition the chart declares, with its target node. */
function declaredTransitions(machine: AnyStateMachine): Map<string, string> {
  const out = new Map<string, string>();
  for (const node of allStateNodes(machine))
    for (const [type, ts] of node.transitions) {
      if (type.startsWith('xstate.')) continue;
      for (const t of ts) out.set(`${nodeName(node.path)}|${type}`, (t.target ?? []).map((n: { path: string[] }) => nodeName(n.path)).join(','));
    }
  return out;
}

/** Leaf path (dotted) of a state value: `{pioIn: 'busy'}` -> `pioIn.busy`. */
const leaf = (s: AnyMachineSnapshot): string => statePath(s.value);

/** For each declared transition: a shortest path to a state where it is taken. */
function buildCases(machine: AnyStateMachine): Case[] {
  const events = machineEventTypes(machine).map((type) => ({ type }));
  const paths = getShortestPaths(machine, { events });
  const cases: Case[] = [];
  const seen = new Set<string>();
  // Shorter paths first, so each transition gets the shortest way to it.
  for (const p of [...paths].sort((a, b) => a.steps.length - b.steps.length)) {
    const snap = p.state as AnyMachineSnapshot;
    for (const ev of events) {
      for (const t of machine.getTransitionData(snap as never, ev as never)) {
        const key = `${nodeName(t.source.path)}|${ev.type}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const [source, event] = key.split('|');
        cases.push({ source, event, target: EXPECTED[source]?.[event] ?? '(not in the protocol table)', from: snap, path: p.steps.map((s) => s.event as Ev) });
      }
    }
  }
  return cases;
}

describe('machines/ata chart: every transition', () => {
  const declared = declaredTransitions(ataChart);
  const cases = buildCases(ataChart);

  it('declares exactly the transitions of the protocol table', () => {
    const expected = Object.entries(EXPECTED).flatMap(([src, evs]) => Object.keys(evs).map((e) => `${src}|${e}`));
    expect([...declared.keys()].sort()).toEqual(expected.sort());
  });

  it('reaches every declared transition from the initial state', () => {
    expect(cases.map((c) => `${c.source}|${c.event}`).sort()).toEqual([...declared.keys()].sort());
  });

  it.each(cases.map((c) => [`${c.source} --${c.event}--> ${c.target}`, c] as const))('%s', (_name, c) => {
    // Events come from the graph as plain {type} objects: the machine is driven untyped.
    const actor = createActor(ataChart as AnyStateMachine).start();
    const fast = createStepper(ataChart, 'fast');
    for (const e of c.path) {
      actor.send(e);
      fast.send(e.type);
      expect(statePath(fast.value())).toBe(leaf(actor.getSnapshot()));
      expect(fast.safe()).toBe(actor.getSnapshot().hasTag('safe'));
    }
    expect(leaf(actor.getSnapshot())).toBe(leaf(c.from));
    actor.send({ type: c.event });
    fast.send(c.event);
    const after = actor.getSnapshot();
    expect(leaf(after)).toBe(c.target);
    expect(after.hasTag('safe')).toBe(SAFE_STATES.has(c.target));
    expect(statePath(fast.value())).toBe(c.target);
    expect(fast.safe()).toBe(SAFE_STATES.has(c.target));
    actor.stop();
  });

  it('runs on the compiled fast path (no guards, no delays)', () => {
    expect(createStepper(ataChart, 'auto').mode).toBe('fast');
  });
});

// ---- the same transitions on the real ATA model through the MUX engine -----------------------

/**
 * A register-access recipe per event: what a driver does on the bus to make the device (and
 * the classifier) produce it. Status-read recipes wait for the wanted bits by peeking at the
 * model directly (a polling read through the MUX would itself be an event), then make the one
 * read through the MUX.
 */
type Recipe = (r: AtaMuxRig) => Promise<void>;

const CMD_OPS: Record<string, number> = { CMD_PIO_IN: 0x20, CMD_PIO_OUT: 0x30, CMD_DMA: 0xc8, CMD_NODATA: 0xe7 };

function commandRecipe(event: string): Recipe {
  return async (r) => {
    await r.taskfile(0, r.count);
    await r.write('CMD', CMD_OPS[event]);
  };
}

const RECIPES: Record<string, Recipe> = {
  CMD_PIO_IN: commandRecipe('CMD_PIO_IN'),
  CMD_PIO_OUT: commandRecipe('CMD_PIO_OUT'),
  CMD_DMA: commandRecipe('CMD_DMA'),
  CMD_NODATA: commandRecipe('CMD_NODATA'),
  // Status reads: wait until the device left BSY (the backend completes), then read.
  ST_DRQ: async (r) => r.readStatusWhen((s) => !(s & 0x80) && (s & 0x08) !== 0 && !(s & 0x01)),
  ST_READY: async (r) => r.readStatusWhen((s) => !(s & 0x80) && !(s & 0x08) && !(s & 0x01)),
  ST_ERR: async (r) => r.readStatusWhen((s) => !(s & 0x80) && (s & 0x01) !== 0),
  ALT_DRQ: async (r) => r.readAltWhen((s) => !(s & 0x80) && (s & 0x08) !== 0),
  // BSY: only while the backend is held (HOLD ... RELEASE).
  ST_BUSY: async (r) => r.readStatusWhen((s) => (s & 0x80) !== 0),
  ALT_BUSY: async (r) => r.readAltWhen((s) => (s & 0x80) !== 0),
  ERR_READ: async (r) => void (await r.read('ERROR')),
  SRST: async (r) => r.write('DEVCTL', 0x04),
  SRST_END: async (r) => r.write('DEVCTL', 0x00),
  BM_START: async (r) => r.write('BM_CMD', 0x09),
  BM_STOP: async (r) => r.write('BM_CMD', 0x00),
};

/**
 * Device-level sequences that produce each event in a state where the device can: paths of
 * the chart as a driver really walks them. BSY is caught by holding the backend.
 */
const DEVICE_PATHS: Array<{ name: string; steps: Array<[event: string, state: string]> }> = [
  { name: 'PIO read of one sector', steps: [['CMD_PIO_IN', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']] },
  { name: 'PIO read, DRQ seen on the alternate status', steps: [['CMD_PIO_IN', 'pioIn.busy'], ['ALT_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']] },
  {
    name: 'PIO read of two sectors, BSY between the blocks (status and alternate status)',
    steps: [['COUNT2', 'idle'], ['HOLD', 'idle'], ['CMD_PIO_IN', 'pioIn.busy'], ['ALT_BUSY', 'pioIn.busy'], ['ST_BUSY', 'pioIn.busy'], ['RELEASE', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'],
      ['HOLD', 'pioIn.data'], ['DATA_IN', 'pioIn.busy'], ['ST_BUSY', 'pioIn.busy'], ['RELEASE', 'pioIn.busy'], ['ALT_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']],
  },
  {
    name: 'PIO read of two sectors, BSY seen on the alternate status between the blocks',
    steps: [['COUNT2', 'idle'], ['CMD_PIO_IN', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['HOLD', 'pioIn.data'], ['DATA_IN', 'pioIn.busy'], ['ALT_BUSY', 'pioIn.busy'], ['RELEASE', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']],
  },
  {
    name: 'PIO write of two sectors, BSY while each block is written',
    steps: [['COUNT2', 'idle'], ['CMD_PIO_OUT', 'pioOut.busy'], ['ALT_DRQ', 'pioOut.data'], ['HOLD', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ST_BUSY', 'pioOut.busy'], ['RELEASE', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'],
      ['HOLD', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ALT_BUSY', 'pioOut.busy'], ['ST_BUSY', 'pioOut.busy'], ['RELEASE', 'pioOut.busy'], ['ST_READY', 'idle']],
  },
  {
    name: 'PIO write of two sectors, BSY on the alternate status after the first block',
    steps: [['COUNT2', 'idle'], ['CMD_PIO_OUT', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'], ['HOLD', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ALT_BUSY', 'pioOut.busy'], ['RELEASE', 'pioOut.busy'], ['ALT_DRQ', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ST_READY', 'idle']],
  },
  { name: 'PIO write of one sector', steps: [['CMD_PIO_OUT', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ST_READY', 'idle']] },
  { name: 'non-data command', steps: [['CMD_NODATA', 'nodata'], ['ST_READY', 'idle']] },
  { name: 'DMA read, bus master started after the command', steps: [['PRD', 'idle'], ['CMD_DMA', 'dma.armed'], ['BM_START', 'dma.active'], ['DMA_DONE', 'dma.active'], ['BM_STOP', 'dma.active'], ['ST_READY', 'idle']] },
  { name: 'DMA read, bus master started before the command', steps: [['PRD', 'idle'], ['BM_START', 'dma.early'], ['CMD_DMA', 'dma.active'], ['DMA_DONE', 'dma.active'], ['BM_STOP', 'dma.active'], ['ST_READY', 'idle']] },
  { name: 'bus master started and stopped without a command', steps: [['BM_START', 'dma.early'], ['BM_STOP', 'idle']] },
  { name: 'bus master started, then a PIO command', steps: [['BM_START', 'dma.early'], ['CMD_PIO_IN', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']] },
  { name: 'bus master started, then a non-data command', steps: [['BM_START', 'dma.early'], ['CMD_NODATA', 'nodata'], ['ST_READY', 'idle']] },
  { name: 'bus master started, then a PIO write', steps: [['BM_START', 'dma.early'], ['CMD_PIO_OUT', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ST_READY', 'idle']] },
  { name: 'failed command, error register read', steps: [['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['ERR_READ', 'idle']] },
  { name: 'failed PIO read (beyond the disk)', steps: [['FAR_READ', 'pioIn.busy'], ['ST_ERR', 'error'], ['ERR_READ', 'idle']] },
  { name: 'failed PIO write (beyond the disk)', steps: [['FAR_WRITE', 'pioOut.busy'], ['ST_ERR', 'error'], ['ERR_READ', 'idle']] },
  { name: 'failed DMA command (beyond the disk)', steps: [['PRD', 'idle'], ['FAR_DMA', 'dma.armed'], ['ST_ERR', 'error'], ['ERR_READ', 'idle']] },
  { name: 'failed DMA, bus master running', steps: [['PRD', 'idle'], ['FAR_DMA', 'dma.armed'], ['BM_START', 'dma.active'], ['ST_ERR', 'error'], ['ERR_READ', 'idle']] },
  { name: 'command after an error without reading the error register', steps: [['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['CMD_NODATA', 'nodata'], ['ST_READY', 'idle']] },
  { name: 'PIO read after an error', steps: [['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['CMD_PIO_IN', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']] },
  { name: 'PIO write after an error', steps: [['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['CMD_PIO_OUT', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ST_READY', 'idle']] },
  { name: 'DMA after an error', steps: [['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['PRD', 'error'], ['CMD_DMA', 'dma.armed'], ['BM_START', 'dma.active'], ['DMA_DONE', 'dma.active'], ['BM_STOP', 'dma.active'], ['ST_READY', 'idle']] },
  { name: 'bus master started after an error', steps: [['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['BM_START', 'dma.early'], ['BM_STOP', 'idle']] },
  { name: 'channel reset from idle', steps: [['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['ST_READY', 'idle']] },
  { name: 'channel reset in the middle of a PIO read', steps: [['CMD_PIO_IN', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['ST_READY', 'idle']] },
  { name: 'channel reset in the middle of a PIO write', steps: [['CMD_PIO_OUT', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'], ['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['CMD_NODATA', 'nodata'], ['ST_READY', 'idle']] },
  { name: 'channel reset with DMA armed, then a PIO read', steps: [['PRD', 'idle'], ['CMD_DMA', 'dma.armed'], ['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['CMD_PIO_IN', 'pioIn.busy'], ['ST_DRQ', 'pioIn.data'], ['DATA_IN', 'idle'], ['ST_READY', 'idle']] },
  { name: 'channel reset, then a PIO write', steps: [['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['CMD_PIO_OUT', 'pioOut.busy'], ['ST_DRQ', 'pioOut.data'], ['DATA_OUT', 'pioOut.data'], ['ST_READY', 'idle']] },
  { name: 'channel reset, then DMA', steps: [['PRD', 'idle'], ['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['CMD_DMA', 'dma.armed'], ['BM_START', 'dma.active'], ['DMA_DONE', 'dma.active'], ['BM_STOP', 'dma.active'], ['ST_READY', 'idle']] },
  { name: 'channel reset, failed first command acknowledged', steps: [['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['ST_READY', 'idle'], ['BAD_CMD', 'nodata'], ['ST_ERR', 'error'], ['SRST', 'reset.asserted'], ['SRST_END', 'reset.released'], ['ST_READY', 'idle']] },
];

/** Recipes for steps that are not chart events by themselves (data transfer, setup, failures). */
const EXTRA: Record<string, Recipe> = {
  DATA_IN: async (r) => void (await r.readData(256)),
  DATA_OUT: async (r) => r.writeData(new Uint8Array(512).fill(0x5a)),
  PRD: async (r) => r.setupPrd(),
  DMA_DONE: async (r) => r.waitBmDone(),
  BAD_CMD: async (r) => r.write('CMD', 0xff), // undefined opcode: ABRT
  COUNT2: async (r) => void (r.count = 2),
  HOLD: async (r) => r.blk.hold(),
  RELEASE: async (r) => r.blk.release(),
  FAR_READ: async (r) => (await r.taskfile(r.sectors + 10, 1), r.write('CMD', 0x20)),
  FAR_WRITE: async (r) => (await r.taskfile(r.sectors + 10, 1), r.write('CMD', 0x30)),
  FAR_DMA: async (r) => (await r.taskfile(r.sectors + 10, 1), r.write('CMD', 0xc8)),
};

/** Chart events the EXTRA recipes' accesses classify to (the PRD setup writes BM_CMD without START). */
const EXTRA_EVENTS: Record<string, string[]> = {
  BAD_CMD: ['CMD_NODATA'],
  FAR_READ: ['CMD_PIO_IN'],
  FAR_WRITE: ['CMD_PIO_OUT'],
  FAR_DMA: ['CMD_DMA'],
  PRD: ['BM_STOP'],
};

describe('machines/ata on the real ATA model through the MUX engine', () => {
  it.each(DEVICE_PATHS.map((p) => [p.name, p] as const))('%s', async (_name, p) => {
    const r = await openAtaMux();
    try {
      expect(r.state()).toBe('idle');
      for (const [step, state] of p.steps) {
        const recipe = RECIPES[step] ?? EXTRA[step];
        expect(recipe, `recipe for ${step}`).toBeDefined();
        await recipe(r);
        expect(r.state(), `after ${step}`).toBe(state);
      }
      const st = r.stats();
      expect(st.unsafeSwitches).toBe(0);
      expect(st.resets).toBe(0);
      expect(st.stepper).toBe('fast');
    } finally {
      await r.close();
    }
  });

  it('the device paths take every declared transition a real drive can show', () => {
    const chartEvents = new Set(machineEventTypes(ataChart));
    const taken = new Set<string>();
    for (const p of DEVICE_PATHS) {
      const actor = createActor(ataChart as AnyStateMachine).start();
      for (const [step, target] of p.steps) {
        // A data-in block read ends the command (DATA_END) when it was the last, else the drive is BSY
        // fetching the next (ALT_BUSY): the MUX's alternate-status probe after the read (window.ts).
        const extra = step === 'DATA_IN' ? (target === 'idle' ? ['DATA_END'] : ['ALT_BUSY']) : (EXTRA_EVENTS[step] ?? []);
        for (const ev of chartEvents.has(step) ? [step] : extra) {
          for (const t of ataChart.getTransitionData(actor.getSnapshot() as never, { type: ev } as never)) taken.add(`${nodeName(t.source.path)}|${ev}`);
          actor.send({ type: ev });
        }
      }
      actor.stop();
    }
    const untaken = [...declaredTransitions(ataChart).keys()].filter((k) => !taken.has(k));
    // Status after a DMA command whose bus master never started (the drive waits for it
    // forever), ERR/DRQ right after SRST (a drive shows neither), and "ready" during a PIO
    // data-in command (its last word already ended it with DATA_END), and BSY read by the guest
    // during a data-in block (the MUX's own alternate-status read after the data read that ended
    // the block has already moved the chart to busy): the chart accepts them defensively; only
    // the chart-level test above covers them.
    expect(untaken.sort()).toEqual(['dma.armed|ST_READY', 'pioIn.data|ST_BUSY', 'pioIn|ST_READY', 'reset.released|ST_DRQ', 'reset.released|ST_ERR']);
  });
});
