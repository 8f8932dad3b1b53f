// Guests on the real NE2000 model (our Ne2kDevice) time-sliced through the MUX engine with
// machines/ne2k: each guest sees the engine as a Device (so src/guests/ne2k-driver.ts, which
// does what Linux's ne2k-pci does, drives it), every statechart event the engine takes and
// every switch (with the state it happened in) is recorded. Frames the card sends land on a
// LoopWire; `inject` gives the card a frame from the wire. The watchdog timer can be held
// (manualWatchdog) and fired by the test, so a loaded machine cannot fire it early.

import type { Access, Reply } from '../../src/access.ts';
import type { DevSize, Device, DeviceDescription } from '../../src/device.ts';
import type { GuestLink } from '../../src/guest-link.ts';
import { Ne2kDevice } from '../../src/devices/ne2k/ne2k-device.ts';
import { LoopWire } from '../../src/devices/ne2k/wire.ts';
import { eventType, type MuxEvent } from '../../src/mux/define.ts';
import { createMux, realTimers, type MuxEngine, type MuxStats, type MuxTrace } from '../../src/mux/engine.ts';
import ne2k from '../../machines/ne2k/index.ts';
import roundRobin from '../../policies/round-robin.ts';

export const IO_BASE = 0xc000;

export interface HeldTimer {
  delayNs: number;
  fn: () => void;
  cleared: boolean;
}

/** One step the engine's statechart took. */
export interface Step {
  before: string;
  event: string;
  after: string;
}

export interface Ne2kMuxRig {
  mux: MuxEngine;
  dev: Ne2kDevice;
  wire: LoopWire;
  steps: Step[];
  traces: MuxTrace[];
  /** IRQ levels each guest saw, in order. */
  irqs: Map<string, boolean[]>;
  /** A guest's view of the card: register accesses through the engine (errors throw). */
  guest(id: string): Device;
  state(): string;
  stats(): MuxStats;
  inject(frame: Uint8Array): string;
  heldWatchdogs(): HeldTimer[];
  fireWatchdogs(): number;
  close(): Promise<void>;
}

class EngineDevice implements Device {
  constructor(
    private readonly mux: MuxEngine,
    private readonly id: string,
  ) {}
  describe(): DeviceDescription {
    return { kind: 'guest-view', regions: [{ name: 'regs', space: 'pio', size: 0x20 }], properties: [] };
  }
  private async io(acc: Access): Promise<Reply> {
    const r = await this.mux.access(this.id, 0, acc.addr - IO_BASE, acc);
    if (r.error) throw new Error(`${this.id}: ${acc.dir} 0x${(acc.addr - IO_BASE).toString(16)} refused: ${r.error}`);
    return r;
  }
  async read(_r: number, offset: number, size: DevSize): Promise<number> {
    return Number((await this.io({ space: 'pio', addr: IO_BASE + offset, size, dir: 'read' })).value);
  }
  async write(_r: number, offset: number, size: DevSize, value: number): Promise<void> {
    await this.io({ space: 'pio', addr: IO_BASE + offset, size, dir: 'write', value: value >>> 0 });
  }
  async readString(_r: number, offset: number, size: DevSize, count: number): Promise<Uint8Array> {
    const r = await this.io({ space: 'pio', addr: IO_BASE + offset, size, dir: 'read', count });
    if (r.data) return r.data;
    // A string access of one element is a plain access: its value, little-endian.
    const v = Number(r.value);
    return Uint8Array.from({ length: size }, (_, i) => (v >>> (8 * i)) & 0xff);
  }
  async writeString(_r: number, offset: number, size: DevSize, data: Uint8Array): Promise<void> {
    await this.io({ space: 'pio', addr: IO_BASE + offset, size, dir: 'write', count: Math.floor(data.length / size), data, value: 0 });
  }
  async reset(): Promise<void> {}
  metrics(): Record<string, number> {
    return {};
  }
}

export function openNe2kMux(opts: { guests: string[]; macs?: Record<string, string>; quantumNs?: number; deadlineNs?: number; manualWatchdog?: boolean }): Ne2kMuxRig {
  const held: HeldTimer[] = [];
  const deadlineNs = opts.deadlineNs ?? ne2k.deadlineNs;
  const timers = {
    set: (fn: () => void, delayNs: number) => {
      if (!opts.manualWatchdog || delayNs !== deadlineNs) return realTimers.set(fn, delayNs);
      const t: HeldTimer = { delayNs, fn, cleared: false };
      held.push(t);
      return t;
    },
    clear: (h: unknown) => {
      if (held.includes(h as HeldTimer)) (h as HeldTimer).cleared = true;
      else realTimers.clear(h);
    },
  };
  const traces: MuxTrace[] = [];
  const mux = createMux({ ...ne2k, deadlineNs }, { deviceId: 'nic0', policy: roundRobin({ quantumNs: opts.quantumNs ?? 0 }), timers, observer: (e) => traces.push(e) });
  const wire = new LoopWire();
  const dev = new Ne2kDevice(mux.edges, wire);
  mux.bind(dev);
  // Every step the engine's chart takes, with the states around it.
  const steps: Step[] = [];
  const stepper = mux.stepper;
  const send = stepper.send.bind(stepper);
  stepper.send = (e: MuxEvent) => {
    const before = mux.stateName();
    send(e);
    steps.push({ before, event: eventType(e), after: mux.stateName() });
  };
  const irqs = new Map<string, boolean[]>();
  for (const id of opts.guests) {
    irqs.set(id, []);
    const link: GuestLink = { id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq: (_l, level) => irqs.get(id)!.push(level) };
    mux.attach(link, opts.macs?.[id] ? { mac: opts.macs[id] } : {});
  }
  const views = new Map(opts.guests.map((id) => [id, new EngineDevice(mux, id)]));
  return {
    mux,
    dev,
    wire,
    steps,
    traces,
    irqs,
    guest: (id) => views.get(id) ?? (() => { throw new Error(`no guest ${id}`); })(),
    state: () => mux.stateName(),
    stats: () => mux.stats(),
    inject: (frame) => dev.receive(frame),
    heldWatchdogs: () => held.filter((t) => !t.cleared),
    fireWatchdogs: () => {
      const live = held.splice(0).filter((t) => !t.cleared);
      for (const t of live) t.fn();
      return live.length;
    },
    close: async () => {
      await mux.close();
      await dev.close();
    },
  };
}
