// Path tests over every transition of machines/sim (xstate/graph): for each edge, reach its
// source state by the shortest path, then take the edge, driving the REAL simulated device
// through the engine with register accesses. After every step the engine's statechart must
// be in the state xstate's path says, and a safe state must mean an idle device.
import { describe, expect, it } from 'vitest';
import type { StateValue } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import type { Access } from '../src/access.ts';
import sim from '../machines/sim.ts';
import roundRobin from '../policies/round-robin.ts';
import { ArrayGuestMemory } from '../src/check/guest-memory.ts';
import {
  SIM_ADDR,
  SIM_CMD,
  SIM_CMD_DMA_READ,
  SIM_CMD_READ,
  SIM_CMD_RESET,
  SIM_CMD_WRITE,
  SIM_DATA,
  SIM_DMA_ADDR,
  SIM_SR_BUSY,
  SIM_SR_DRQ,
  SIM_STATUS,
  SimDevice,
} from '../src/devices/sim.ts';
import { settle, VirtualTime } from '../src/check/virtual-time.ts';
import { machineEventTypes, statePath } from '../src/mux/compile.ts';
import { createMux } from '../src/mux/engine.ts';

const events = machineEventTypes(sim.machine).map((type) => ({ type })) as never[];
const key = (s: { value: StateValue }) => statePath(s.value);

type Edge = { from: string; event: string; to: string };

function edges(): Edge[] {
  const adj = getAdjacencyMap(sim.machine, { events, serializeState: key as never }) as unknown as Record<
    string,
    { transitions: Record<string, { event: { type: string }; state: { value: StateValue } }> }
  >;
  const out: Edge[] = [];
  for (const [from, v] of Object.entries(adj))
    for (const t of Object.values(v.transitions)) {
      const to = key(t.state);
      // Real transitions only (an event the state ignores is no transition), plus RESET everywhere.
      if (to !== from || t.event.type === 'RESET') out.push({ from, event: t.event.type, to });
    }
  return out;
}

function rig() {
  const vt = new VirtualTime();
  const mux = createMux(sim, { deviceId: 'sim0', policy: roundRobin(), clock: vt.clock, timers: vt.timersApi });
  const dev = new SimDevice(mux.edges, 4);
  mux.bind(dev);
  const mem = new ArrayGuestMemory(0x10000, 64);
  // No window: the device itself sees an out-of-range block (the error path).
  mux.attach({ id: 'a', weight: 1, priority: 0, deadlineNs: Infinity, memory: mem, setIrq() {} });
  const io = async (offset: number, dir: 'read' | 'write', value = 0, size: 1 | 4 = 1): Promise<number> => {
    const acc: Access = { space: 'pio', addr: 0x340 + offset, size, dir, value };
    return Number((await mux.access('a', 0, offset, acc)).value);
  };
  return { mux, dev, io };
}

type Rig = ReturnType<typeof rig>;

/** Make the device produce `event` in `state`. `failNext`: the command must end in error (busy -> IDLE edge). */
async function execute(r: Rig, event: string, state: string, failNext: boolean): Promise<void> {
  switch (event) {
    case 'READ':
    case 'WRITE':
    case 'DMA':
      await r.io(SIM_DMA_ADDR, 'write', 0x10000, 4);
      await r.io(SIM_ADDR, 'write', failNext ? 200 : 1);
      await r.io(SIM_CMD, 'write', event === 'READ' ? SIM_CMD_READ : event === 'WRITE' ? SIM_CMD_WRITE : SIM_CMD_DMA_READ);
      return;
    case 'RESET':
      await r.io(SIM_CMD, 'write', SIM_CMD_RESET);
      return;
    case 'DRQ':
      for (let i = 0; i < 8; i++) if ((await r.io(SIM_STATUS, 'read')) & SIM_SR_DRQ) return;
      throw new Error(`no DRQ from ${state}`);
    case 'IDLE':
      if (state === 'cmd.reading') for (let i = 0; i < 8; i++) await r.io(SIM_DATA, 'read');
      if (state === 'cmd.writing') for (let i = 0; i < 8; i++) await r.io(SIM_DATA, 'write', i);
      for (let i = 0; i < 16; i++) {
        await settle(); // a DMA ends through promises
        if (((await r.io(SIM_STATUS, 'read')) & (SIM_SR_BUSY | SIM_SR_DRQ)) === 0) return;
      }
      throw new Error(`no IDLE from ${state}`);
  }
  throw new Error(`no executor for ${event}`);
}

describe('machines/sim path tests (xstate/graph)', () => {
  const all = edges();
  const paths = getShortestPaths(sim.machine, { events, serializeState: key as never });

  it('covers every transition of the machine', () => {
    expect(all.length).toBeGreaterThanOrEqual(14);
    expect(new Set(all.map((e) => e.from)).size).toBe(6);
  });

  for (const edge of all)
    it(`${edge.from} --${edge.event}--> ${edge.to}`, async () => {
      const path = paths.find((p) => key(p.state) === edge.from);
      expect(path, `a path to ${edge.from}`).toBeDefined();
      const steps = [...path!.steps.slice(1).map((s) => ({ event: s.event.type, to: key(s.state) })), { event: edge.event, to: edge.to }];
      const r = rig();
      let state = r.mux.stateName();
      for (let i = 0; i < steps.length; i++) {
        const failNext = steps[i + 1]?.event === 'IDLE' && steps[i + 1].to === 'idle' && (steps[i].to === 'cmd.busyRead' || steps[i].to === 'cmd.busyWrite');
        await execute(r, steps[i].event, state, failNext);
        state = r.mux.stateName();
        expect(state).toBe(steps[i].to);
        if (r.mux.stats().state === 'idle') expect(r.dev.idle()).toBe(true);
      }
      expect(r.mux.stats().unsafeSwitches).toBe(0);
    });
});
