// Engine semantics on the simulated device, one behaviour per test: stalls, grants, context
// replay, IRQ routing, DMA windows, watchdog, detach, policy failures, async devices.
import { describe, expect, it } from 'vitest';
import type { Access, Reply } from '../src/access.ts';
import type { DevSize, Device } from '../src/device.ts';
import type { GuestLink } from '../src/guest-link.ts';
import sim from '../machines/sim.ts';
import roundRobin from '../policies/round-robin.ts';
import { assign, setup } from 'xstate';
import { pino } from 'pino';
import { defineMux } from '../src/mux/define.ts';
import { ArrayGuestMemory } from '../src/check/guest-memory.ts';
import {
  SIM_ADDR,
  SIM_CMD,
  SIM_CMD_DMA_READ,
  SIM_CMD_READ,
  SIM_CMD_WRITE,
  SIM_DATA,
  SIM_DMA_ADDR,
  SIM_IEN,
  SIM_KEY,
  SIM_SR_ERR,
  SIM_STATUS,
  SimDevice,
} from '../src/devices/sim.ts';
import { settle, VirtualTime } from '../src/check/virtual-time.ts';
import { createMux, type MuxEngine, type MuxTrace } from '../src/mux/engine.ts';
import type { Policy } from '../src/mux/policy.ts';

const w = (offset: number, value: number, size: 1 | 4 = 1): Access => ({ space: 'pio', addr: 0x340 + offset, size, dir: 'write', value });
const r = (offset: number, size: 1 | 4 = 1, count?: number): Access => ({ space: 'pio', addr: 0x340 + offset, size, dir: 'read', count });

interface Rig {
  vt: VirtualTime;
  mux: MuxEngine;
  dev: SimDevice;
  irqs: Array<[string, boolean, string | null]>;
  mems: Map<string, ArrayGuestMemory>;
  trace: MuxTrace[];
  io(g: string, acc: Access): Reply | Promise<Reply>;
  resets: string[];
}

function rig(ids: string[], policy: Policy = roundRobin({ quantumNs: 0 }), wrap?: (d: SimDevice) => Device): Rig {
  const vt = new VirtualTime();
  const trace: MuxTrace[] = [];
  const mux = createMux(sim, { deviceId: 'sim0', policy, clock: vt.clock, timers: vt.timersApi, observer: (e) => trace.push(e) });
  const dev = new SimDevice(mux.edges, 4 * ids.length);
  mux.bind(wrap ? wrap(dev) : dev);
  const irqs: Rig['irqs'] = [];
  const mems = new Map<string, ArrayGuestMemory>();
  const resets: string[] = [];
  ids.forEach((id, i) => {
    const mem = new ArrayGuestMemory(0x10000 * (i + 1), 64);
    mems.set(id, mem);
    const link: GuestLink = {
      id,
      weight: 1,
      priority: 0,
      deadlineNs: Infinity,
      memory: mem,
      setIrq: (_line, level) => irqs.push([id, level, mux.ownerId()]),
      notifyReset: (_dev, reason) => resets.push(`${id}: ${reason}`),
    };
    mux.attach(link, { window: { startLba: 4 * i, sectors: 4 } });
  });
  return { vt, mux, dev, irqs, mems, trace, resets, io: (g, acc) => mux.access(g, 0, acc.addr - 0x340, acc) };
}

/** Resolve a reply that may be a promise; fails if it is still pending after everything settled. */
async function now(x: Reply | Promise<Reply>): Promise<Reply> {
  let out: Reply | undefined;
  Promise.resolve(x).then((v) => (out = v));
  await settle();
  if (!out) throw new Error('access still stalled');
  return out;
}

function pending(x: Reply | Promise<Reply>): { done: () => Reply | undefined } {
  let out: Reply | undefined;
  Promise.resolve(x).then((v) => (out = v));
  return { done: () => out };
}

/** Start a READ of `block` and stop in the middle (DRQ, data not read): the device is unsafe. */
async function startRead(x: Rig, g: string, block: number) {
  await now(x.io(g, w(SIM_ADDR, block)));
  await now(x.io(g, w(SIM_CMD, SIM_CMD_READ)));
}

async function finishRead(x: Rig, g: string): Promise<number[]> {
  for (let i = 0; i < 3; i++) await now(x.io(g, r(SIM_STATUS)));
  const data = await now(x.io(g, r(SIM_DATA, 1, 8)));
  await now(x.io(g, r(SIM_STATUS)));
  return [...data.data!];
}

async function writeBlock(x: Rig, g: string, block: number, bytes: number[]) {
  await now(x.io(g, w(SIM_ADDR, block)));
  await now(x.io(g, w(SIM_CMD, SIM_CMD_WRITE)));
  await now(x.io(g, r(SIM_STATUS)));
  await now(x.io(g, r(SIM_STATUS)));
  for (const b of bytes) await now(x.io(g, w(SIM_DATA, b)));
  await now(x.io(g, r(SIM_STATUS)));
  await now(x.io(g, r(SIM_STATUS)));
}

describe('mux engine', () => {
  it('gives a free device to the first accessor and lets its accesses through synchronously', () => {
    const x = rig(['a', 'b']);
    const rep = x.io('a', w(SIM_KEY, 0x5a));
    expect(rep).toEqual({ value: 0 });
    expect(x.mux.ownerId()).toBe('a');
    expect(x.io('a', r(SIM_KEY))).toEqual({ value: 0x5a });
    expect(x.mux.stats().switches).toBe(1);
  });

  it('stalls another guest until the owner reaches a safe state, then replays its context', async () => {
    const x = rig(['a', 'b']);
    await now(x.io('a', w(SIM_KEY, 0x11)));
    await startRead(x, 'a', 1);
    expect(x.mux.stateName()).toBe('cmd.busyRead');
    const held = pending(x.io('b', r(SIM_KEY)));
    await settle();
    expect(held.done()).toBeUndefined(); // b waits: the device is mid-command
    expect(x.mux.stats().perGuest.find((s) => s.guest === 'b')!.stalls).toBe(1);
    await finishRead(x, 'a');
    await settle();
    // a's command ended (safe): b got the device with its own (reset) KEY, not a's 0x11.
    expect(x.mux.ownerId()).toBe('b');
    expect(held.done()).toEqual({ value: 0 });
    // a comes back and sees its KEY again.
    const back = pending(x.io('a', r(SIM_KEY)));
    await settle();
    expect(back.done()).toEqual({ value: 0x11 });
    expect(x.mux.stats().unsafeSwitches).toBe(0);
  });

  it('keeps guests in their own windows (translation) so data never crosses', async () => {
    const x = rig(['a', 'b']);
    await writeBlock(x, 'a', 0, [1, 2, 3, 4, 5, 6, 7, 8]);
    await writeBlock(x, 'b', 0, [9, 9, 9, 9, 9, 9, 9, 9]);
    await settle();
    await startRead(x, 'a', 0);
    expect(await finishRead(x, 'a')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Device-side: a's block 0 is device block 0, b's is device block 4.
    expect(x.dev.block(0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(x.dev.block(4)).toEqual([9, 9, 9, 9, 9, 9, 9, 9]);
  });

  it('answers an out-of-window command itself, without touching the device', async () => {
    const x = rig(['a']);
    await now(x.io('a', w(SIM_ADDR, 7))); // window has 4 blocks
    await now(x.io('a', w(SIM_CMD, SIM_CMD_READ)));
    expect(x.mux.stateName()).toBe('idle'); // nothing started on the device
    expect(await now(x.io('a', r(SIM_STATUS)))).toEqual({ value: SIM_SR_ERR });
    expect(await now(x.io('a', r(SIM_ADDR)))).toEqual({ value: 7 });
    expect(x.mux.stats().perGuest[0].denials).toBe(1);
    expect(x.trace.find((e) => e.kind === 'denied')?.detail).toBe('block 7 outside the 4-block window');
  });

  it('delivers the device IRQ to the owner only', async () => {
    const x = rig(['a', 'b']);
    await now(x.io('a', w(SIM_IEN, 1)));
    await startRead(x, 'a', 0);
    const held = pending(x.io('b', r(SIM_KEY)));
    await now(x.io('a', r(SIM_STATUS)));
    await now(x.io('a', r(SIM_STATUS))); // busy phase ends: the device raises its IRQ
    expect(x.irqs).toEqual([['a', true, 'a']]);
    await finishRead(x, 'a'); // the STATUS reads lower it again
    await settle();
    expect(held.done()).toEqual({ value: 0 });
    expect(x.mux.ownerId()).toBe('b');
    // b enables its IRQ and runs a command: only b sees it now.
    await now(x.io('b', w(SIM_IEN, 1)));
    await startRead(x, 'b', 0);
    await now(x.io('b', r(SIM_STATUS)));
    await now(x.io('b', r(SIM_STATUS)));
    expect(x.irqs.at(-1)).toEqual(['b', true, 'b']);
    expect(x.irqs.every(([g, level, owner]) => !level || g === owner)).toBe(true);
    expect(x.irqs.filter(([g, l]) => g === 'a' && l).length).toBe(1);
  });

  /**
   * A toy device, always safe: writing RAISE (0) sets its IRQ line, ACK (1) clears it, NOP (2)
   * does nothing. Guests a and b; `seen` lists the virtual IRQ edges as guest:line:level.
   */
  function irqToy() {
    const toy = defineMux({
      kind: 'toy',
      registers: {
        RAISE: { region: 'r', offset: 0, width: 1 },
        ACK: { region: 'r', offset: 1, width: 1 },
        NOP: { region: 'r', offset: 2, width: 1 },
      },
      machine: setup({}).createMachine({ initial: 'idle', states: { idle: { tags: ['safe'] } } }),
      classify: () => null,
      reset: { writes: [{ reg: 'ACK', value: 1 }] },
      deadlineNs: 1e6,
      reraiseIrq: true,
      irqLine: 9,
    });
    const vt = new VirtualTime();
    const mux = createMux(toy, { deviceId: 'toy0', policy: roundRobin({ quantumNs: 0 }), clock: vt.clock, timers: vt.timersApi });
    const state = { line: false };
    const dev: Device = {
      describe: () => ({ kind: 'toy', regions: [{ name: 'r', space: 'pio', size: 3 }], properties: [] }),
      read: () => 0,
      write: (_r, off) => {
        if (off > 1) return;
        state.line = off === 0;
        mux.edges.irq.set(state.line);
      },
      reset: () => {},
      metrics: () => ({}),
    };
    mux.bind(dev);
    const seen: string[] = [];
    for (const id of ['a', 'b'])
      mux.attach({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq: (n, l) => seen.push(`${id}:${n}:${l ? 1 : 0}`) });
    const acc = (off: number): Access => ({ space: 'pio', addr: off, size: 1, dir: 'write', value: 1 });
    /** Guest id writes register off; the access completes and id owns the device. */
    const run = async (id: string, off: number): Promise<void> => {
      const p = pending(mux.access(id, 0, off, acc(off)));
      await settle();
      expect(p.done()).toEqual({ value: 0 });
      expect(mux.ownerId()).toBe(id);
    };
    return { mux, seen, state, run };
  }

  it('re-raises a virtual IRQ that was pending when the guest lost the device', async () => {
    const { seen, state, run } = irqToy();
    await run('a', 0); // a's device IRQ goes up
    await run('b', 1); // b waits; the device is safe: b gets it, acks
    // a's line dropped when it lost the device; b never saw a's interrupt.
    expect(seen).toEqual(['a:9:1', 'a:9:0']);
    await run('a', 1);
    // a owns again: its pending IRQ was raised again (before its access ran), then followed the device (low).
    expect(seen).toEqual(['a:9:1', 'a:9:0', 'a:9:1', 'a:9:0']);
    expect(state.line).toBe(false);
  });

  it('does not re-raise to a guest an IRQ that was already up (stale) when it got the device', async () => {
    // a's interrupt stays pending while b owns the device and is switched out again without
    // ever acknowledging it: that interrupt is a's, so b must not get it when it comes back
    // (a guest sleeping in HLT for its own completion would wake early and abort its transfer).
    const { seen, run } = irqToy();
    await run('a', 0); // a's device IRQ goes up
    await run('b', 2); // b gets the device with a's IRQ still up, does not acknowledge it
    await run('a', 2); // a back: its own pending IRQ is re-raised
    await run('b', 2); // b back: the line is still a's
    expect(seen.filter((s) => s.startsWith('b:'))).toEqual([]);
    await run('b', 1); // b acknowledges (a command write clears INTRQ on a real drive)
    await run('b', 0); // b's own interrupt reaches b
    expect(seen.filter((s) => s.startsWith('b:'))).toEqual(['b:9:1']);
  });

  it('forwards a translation rewrite of several accesses and replays pseudo context registers with a custom replay', async () => {
    const log: string[] = [];
    const toy = defineMux({
      kind: 'toy',
      registers: { A: { region: 'r', offset: 0, width: 1 }, B: { region: 'r', offset: 1, width: 1 }, CMD: { region: 'r', offset: 2, width: 1 } },
      machine: setup({}).createMachine({ initial: 'idle', states: { idle: { tags: ['safe'], on: { GO: 'busy' } }, busy: { on: { DONE: 'idle' } } } }),
      classify: (a, v) => (a.reg?.name === 'CMD' ? (v === 0x20 ? 'GO' : v === 0x21 ? 'DONE' : null) : null),
      context: [
        { reg: 'A', reset: 5 },
        // MODE is no register: a command sets it; the replay re-issues the command.
        { reg: 'MODE', reset: 0, replay: async (v, io) => { await io.write('CMD', 0x40 | v); await io.read('B'); } },
      ],
      translate: {
        access(a, g) {
          if (a.dir !== 'write') return;
          if (a.reg?.name === 'B') return [{ ...a, reg: { ...a.reg, name: 'A', offset: 0 }, offset: 0, value: a.value + 1 }, a];
          if (a.reg?.name === 'CMD' && (a.value & 0xf0) === 0x10) g.setContext('MODE', a.value & 0x0f);
        },
      },
      reset: { writes: [{ reg: 'CMD', value: 0x21 }] },
      deadlineNs: 1e6,
    });
    const vt = new VirtualTime();
    const mux = createMux(toy, { deviceId: 'toy0', policy: roundRobin({ quantumNs: 0 }), clock: vt.clock, timers: vt.timersApi });
    mux.bind({
      describe: () => ({ kind: 'toy', regions: [{ name: 'r', space: 'pio', size: 3 }], properties: [] }),
      read: (_r, off) => (log.push(`r${off}`), 0),
      write: (_r, off, _s, v) => void log.push(`w${off}=${v.toString(16)}`),
      reset: () => {},
      metrics: () => ({}),
    });
    for (const id of ['a', 'b']) mux.attach({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });
    const acc = (off: number, value: number): Access => ({ space: 'pio', addr: off, size: 1, dir: 'write', value });
    await now(mux.access('a', 0, 2, acc(2, 0x13))); // a sets MODE 3 (grant replays A=5, MODE 0 first)
    await now(mux.access('a', 0, 1, acc(1, 7))); // rewritten: A=8, then B=7
    expect(log).toEqual(['w0=5', 'w2=40', 'r1', 'w2=13', 'w0=8', 'w1=7']);
    log.length = 0;
    await now(mux.access('b', 0, 1, acc(1, 1)));
    expect(log).toEqual(['w0=5', 'w2=40', 'r1', 'w0=2', 'w1=1']); // b's own context (reset values)
    log.length = 0;
    await now(mux.access('a', 0, 0, { space: 'pio', addr: 0, size: 1, dir: 'read' }));
    expect(log).toEqual(['w0=8', 'w2=43', 'r1', 'r0']); // a's A (as the device got it) and MODE 3 again
  });

  it('runs a guarded machine on the xstate interpreter and lets IRQ edges drive the chart', async () => {
    // A transfer of 3 data reads counted in the machine's context (a guard), ended by the IRQ falling.
    const counted = setup({
      types: { context: {} as { n: number }, events: {} as { type: 'GO' } | { type: 'DATA' } | { type: 'IRQ_LOW' } },
      guards: { last: ({ context }) => context.n >= 2 },
      actions: { count: assign({ n: ({ context }) => context.n + 1 }), zero: assign({ n: 0 }) },
    }).createMachine({
      context: { n: 0 },
      initial: 'idle',
      states: {
        idle: { tags: ['safe'], on: { GO: { target: 'xfer', actions: 'zero' } } },
        xfer: { on: { DATA: [{ guard: 'last', target: 'wait' }, { actions: 'count' }] } },
        wait: { on: { IRQ_LOW: 'idle' } },
      },
    });
    const def = defineMux({
      kind: 'toy',
      registers: { CMD: { region: 'r', offset: 0, width: 1, access: 'w' }, DATA: { region: 'r', offset: 1, width: 1, access: 'r' } },
      machine: counted,
      classify: (a) => (a.reg?.name === 'CMD' ? 'GO' : a.reg?.name === 'DATA' ? 'DATA' : null),
      classifyIrq: (level) => (level ? null : 'IRQ_LOW'),
      reset: { writes: [], hard: true },
      deadlineNs: 1e6,
    });
    const vt = new VirtualTime();
    const mux = createMux(def, { deviceId: 'toy0', policy: roundRobin({ quantumNs: 0 }), clock: vt.clock, timers: vt.timersApi });
    mux.bind({
      describe: () => ({ kind: 'toy', regions: [{ name: 'r', space: 'pio', size: 2 }], properties: [] }),
      read: () => 0x42,
      write: () => mux.edges.irq.set(true),
      reset: () => {},
      metrics: () => ({}),
    });
    for (const id of ['a', 'b']) mux.attach({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });
    expect(mux.stats().stepper).toBe('xstate');
    await now(mux.access('a', 0, 0, { space: 'pio', addr: 0, size: 1, dir: 'write', value: 1 }));
    const held = pending(mux.access('b', 0, 1, { space: 'pio', addr: 1, size: 1, dir: 'read' }));
    for (let i = 0; i < 3; i++) await now(mux.access('a', 0, 1, { space: 'pio', addr: 1, size: 1, dir: 'read' }));
    expect(mux.stateName()).toBe('wait');
    await settle();
    expect(held.done()).toBeUndefined(); // still unsafe: the IRQ has not fallen
    mux.edges.irq.set(false);
    await settle();
    expect(mux.stateName()).toBe('idle');
    expect(held.done()).toEqual({ value: 0x42 });
    expect(mux.ownerId()).toBe('b');
  });

  it('refuses DMA outside the owner window, counts it, and touches no other memory', async () => {
    const x = rig(['a', 'b']);
    x.mems.get('b')!.bytes.fill(0x77);
    await writeBlock(x, 'a', 1, [1, 1, 1, 1, 1, 1, 1, 1]);
    // a aims its DMA at b's memory (0x20000).
    await now(x.io('a', w(SIM_DMA_ADDR, 0x20000, 4)));
    await now(x.io('a', w(SIM_ADDR, 1)));
    await now(x.io('a', w(SIM_CMD, SIM_CMD_DMA_READ)));
    await settle();
    const st = await now(x.io('a', r(SIM_STATUS)));
    expect(Number(st.value) & SIM_SR_ERR).toBe(SIM_SR_ERR);
    expect(x.mems.get('b')!.bytes.every((b) => b === 0x77)).toBe(true);
    expect(x.mux.stats().perGuest.find((s) => s.guest === 'a')!.dmaRefused).toBe(1);
    expect(x.trace.some((e) => e.kind === 'dma-refused' && e.guest === 'a')).toBe(true);
    // Inside its own window it works.
    await now(x.io('a', w(SIM_DMA_ADDR, 0x10008, 4)));
    await now(x.io('a', w(SIM_CMD, SIM_CMD_DMA_READ)));
    await settle();
    expect((await now(x.io('a', r(SIM_STATUS)))).value).toBe(0);
    expect([...x.mems.get('a')!.bytes.slice(8, 16)]).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('cuts off an owner that hangs mid-command: reset path, faulted, the others go on', async () => {
    const x = rig(['a', 'b']);
    await startRead(x, 'a', 0);
    const held = pending(x.io('b', r(SIM_KEY)));
    await settle();
    expect(held.done()).toBeUndefined();
    x.vt.fireNext(); // the watchdog (virtual time jumps to the deadline)
    await settle();
    expect(x.vt.now).toBe(sim.deadlineNs);
    expect(held.done()).toEqual({ value: 0 });
    expect(x.mux.ownerId()).toBe('b');
    const st = x.mux.stats();
    expect(st).toMatchObject({ resets: 1, faults: 1, unsafeSwitches: 0 });
    expect(st.perGuest.find((s) => s.guest === 'a')).toMatchObject({ faulted: true, faults: 1, resets: 1 });
    expect(st.perGuest.find((s) => s.guest === 'b')).toMatchObject({ faulted: false, faults: 0, resets: 0 });
    expect(x.resets[0]).toMatch(/^a: watchdog/);
    expect(x.dev.idle()).toBe(true);
    // The faulted guest's later accesses are refused with all-ones.
    const denied = await now(x.io('a', r(SIM_KEY)));
    expect(denied.value).toBe(0xff);
    expect(denied.error).toMatch(/faulted/);
    // b works normally.
    await startRead(x, 'b', 2);
    expect(await finishRead(x, 'b')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('logs stalls, grants, the fault and the reset on the logger it is given', async () => {
    const lines: Array<{ msg: string; level: number; guest?: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const vt = new VirtualTime();
    const mux = createMux(sim, { deviceId: 'sim0', policy: roundRobin({ quantumNs: 0 }), clock: vt.clock, timers: vt.timersApi, logger });
    mux.bind(new SimDevice(mux.edges, 8));
    for (const id of ['a', 'b']) mux.attach({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });
    await now(mux.access('a', 0, SIM_ADDR, w(SIM_ADDR, 0)));
    await now(mux.access('a', 0, SIM_CMD, w(SIM_CMD, SIM_CMD_READ)));
    const held = pending(mux.access('b', 0, SIM_KEY, r(SIM_KEY)));
    vt.fireNext(); // watchdog
    await settle();
    expect(held.done()).toEqual({ value: 0 });
    const msgs = lines.map((l) => l.msg);
    expect(msgs).toContain('access stalled');
    expect(msgs).toContain('grant');
    expect(lines.find((l) => l.msg === 'guest cut off')).toMatchObject({ level: 40, guest: 'a' });
    expect(msgs).toContain('reset path ran');
  });

  it('cuts off an owner that crashes mid-command and hands the device on', async () => {
    const x = rig(['a', 'b']);
    await startRead(x, 'a', 0);
    const held = pending(x.io('b', r(SIM_KEY)));
    x.mux.detach('a', 'crash');
    await settle();
    expect(held.done()).toEqual({ value: 0 });
    expect(x.mux.stats()).toMatchObject({ resets: 1, faults: 1, unsafeSwitches: 0 });
  });

  it('releases the device without a reset when the owner leaves in a safe state', async () => {
    const x = rig(['a', 'b']);
    await now(x.io('a', w(SIM_KEY, 3)));
    x.mux.detach('a', 'bye');
    expect(x.mux.ownerId()).toBeNull();
    expect(x.mux.stats()).toMatchObject({ resets: 0, faults: 0 });
    expect(x.io('b', r(SIM_KEY))).toEqual({ value: 0 });
  });

  it('contains a policy that throws, returns a guest that is not waiting, or returns a Promise', async () => {
    for (const [bad, why] of [
      [
        () => {
          throw new Error('boom');
        },
        /pick threw: boom/,
      ],
      [() => 'nobody', /pick returned "nobody", which is neither the owner nor waiting/],
      [(async () => 'b') as unknown as () => string, /pick must return a guest id synchronously, got a Promise/],
    ] as const) {
      const x = rig(['a', 'b'], { name: 'bad', fairness: 'none', pick: bad });
      await now(x.io('a', w(SIM_KEY, 1)));
      const held = pending(x.io('b', r(SIM_KEY)));
      await settle();
      expect(held.done()).toEqual({ value: 0 }); // fallback handed the device on
      expect(x.mux.stats().policyErrors).toBe(1);
      expect(x.trace.find((e) => e.kind === 'policy-error')?.detail).toMatch(why);
    }
  });

  it('asks the policy again after an idle owner keeps the device (recheck)', async () => {
    const x = rig(['a', 'b'], roundRobin({ quantumNs: 300_000 }));
    await now(x.io('a', w(SIM_KEY, 1)));
    const held = pending(x.io('b', r(SIM_KEY)));
    await settle();
    expect(held.done()).toBeUndefined(); // a's quantum is not over
    while (!held.done() && x.vt.fireNext()) await settle();
    expect(held.done()).toEqual({ value: 0 });
    expect(x.vt.now).toBeGreaterThanOrEqual(300_000);
  });

  it('works with a device that answers through promises (a remote device)', async () => {
    const asyncDev = (d: SimDevice): Device => ({
      describe: () => d.describe(),
      read: async (reg: number, off: number, size: DevSize) => d.read(reg, off, size),
      write: async (reg: number, off: number, size: DevSize, v: number) => d.write(reg, off, size, v),
      reset: () => d.reset(),
      metrics: () => d.metrics(),
    });
    const x = rig(['a', 'b'], roundRobin({ quantumNs: 0 }), asyncDev);
    await now(x.io('a', w(SIM_KEY, 0x42)));
    await writeBlock(x, 'a', 2, [8, 7, 6, 5, 4, 3, 2, 1]);
    await startRead(x, 'a', 2);
    const held = pending(x.io('b', r(SIM_KEY)));
    expect(await finishRead(x, 'a')).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    await settle();
    expect(held.done()).toEqual({ value: 0 });
    const back = pending(x.io('a', r(SIM_KEY)));
    await settle();
    expect(back.done()).toEqual({ value: 0x42 });
    expect(x.mux.stats().unsafeSwitches).toBe(0);
  });

  it('splits an 8-byte access into two 4-byte ones, low first', async () => {
    const x = rig(['a']);
    const rep = await now(x.mux.access('a', 0, SIM_DMA_ADDR, { space: 'pio', addr: 0x348, size: 8, dir: 'read' }));
    expect(typeof rep.value).toBe('bigint');
  });
});

describe('a context replay that fails (hole 7: never grant with a context the engine did not load)', () => {
  /** The sim device, whose KEY writes throw (or reject) while `fail(value)` says so. */
  function failingKey(fail: (v: number) => boolean, asynchronous = false) {
    return (d: SimDevice): Device => ({
      describe: () => d.describe(),
      read: (reg: number, off: number, size: DevSize) => (asynchronous ? Promise.resolve(d.read(reg, off, size)) : d.read(reg, off, size)),
      write: (reg: number, off: number, size: DevSize, v: number) => {
        if (off === SIM_KEY && fail(v)) {
          if (asynchronous) return Promise.reject(new Error('KEY write lost'));
          throw new Error('KEY write lost');
        }
        if (asynchronous) return Promise.resolve(d.write(reg, off, size, v));
        d.write(reg, off, size, v);
      },
      reset: () => d.reset(),
      metrics: () => d.metrics(),
    });
  }

  for (const asynchronous of [false, true]) {
    it(`${asynchronous ? 'async' : 'sync'}: one failure runs the reset path and replays again; the guest sees its own context`, async () => {
      let failures = 0;
      const x = rig(['a', 'b'], roundRobin({ quantumNs: 0 }), failingKey((v) => v === 0 && x.mux.ownerId() === 'b' && failures++ < 1, asynchronous));
      await now(x.io('a', w(SIM_KEY, 0x11)));
      const held = pending(x.io('b', r(SIM_KEY)));
      await settle();
      expect(held.done()).toEqual({ value: 0 }); // b's own (reset) KEY, never a's 0x11
      const st = x.mux.stats();
      expect(st.replayFailures).toBe(1);
      expect(st.resets).toBe(1);
      expect(st.perGuest.find((p) => p.guest === 'b')!.faulted).toBe(false);
      const back = pending(x.io('a', r(SIM_KEY)));
      await settle();
      expect(back.done()).toEqual({ value: 0x11 });
    });

    it(`${asynchronous ? 'async' : 'sync'}: a replay that fails again is a cut-off of that guest; the others go on`, async () => {
      let armed = false;
      const x = rig(['a', 'b'], roundRobin({ quantumNs: 0 }), failingKey((v) => armed && v === 0x22, asynchronous));
      await now(x.io('b', w(SIM_KEY, 0x22)));
      const first = pending(x.io('a', w(SIM_KEY, 0x11)));
      await settle();
      expect(first.done()).toEqual({ value: 0 });
      armed = true;
      const held = pending(x.io('b', r(SIM_KEY)));
      await settle();
      expect(held.done()?.error).toMatch(/faulted|context/);
      expect(x.mux.stats().perGuest.find((p) => p.guest === 'b')!.faulted).toBe(true);
      expect(x.mux.stats().replayFailures).toBe(2);
      const back = pending(x.io('a', r(SIM_KEY)));
      await settle();
      expect(back.done()).toEqual({ value: 0x11 });
      expect(x.mux.stats().unsafeSwitches).toBe(0);
    });
  }
});
