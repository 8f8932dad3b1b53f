// Runs scripted guests through the REAL engine on the simulated device, in virtual time, and
// records what the properties need: what each guest read, who owned when, who waited how long,
// which virtual IRQs went where. Also runs one guest alone on a fresh device (solo run).

import type { Reply } from '../access.ts';
import type { Device } from '../device.ts';
import type { GuestLink } from '../guest-link.ts';
import { createMux, type MuxEngine, type MuxStats, type MuxTrace } from '../mux/engine.ts';
import type { MuxDefinition } from '../mux/define.ts';
import type { StepperMode } from '../mux/compile.ts';
import type { Policy } from '../mux/policy.ts';
import { ArrayGuestMemory } from './guest-memory.ts';
import { MEM_STRIDE, runScript, type Op, type ScriptResult } from './script.ts';
import { SimDevice } from '../devices/sim.ts';
import { settle, VirtualTime } from './virtual-time.ts';

export interface GuestSpec {
  id: string;
  weight: number;
  priority: number;
  deadlineNs: number;
  /** Blocks of the guest's window (its solo device has this many). */
  sectors: number;
  memSize: number;
  ops: Op[];
  /** Detach with this reason when the script ends (default 'bye'); hung guests crash if set. */
  crashAfterHangNs?: number;
}

export interface RunOptions {
  def: MuxDefinition;
  policy: Policy;
  /** Virtual time one access takes (a trap costs 4-12 µs). */
  accessCostNs?: number;
  recheckNs?: number;
  mode?: StepperMode;
  /** Stop all guests at this virtual time (fairness runs); default: run scripts to the end. */
  untilNs?: number;
  /** Hard limit of scheduler steps (a guard against a livelock in the engine). */
  maxSteps?: number;
  /** Stop the guests at their next command once a violation is recorded (it is reported either way). */
  stopAtViolation?: boolean;
  /** Wrap the device so it answers through promises (like a remote device over qtest). */
  asyncDevice?: boolean;
}

export interface Wait {
  guest: string;
  from: number;
  to: number;
}

export interface Violation {
  t: number;
  property: 'safety' | 'solo-equivalence' | 'isolation' | 'liveness' | 'fairness' | 'policy' | 'progress';
  message: string;
}

export interface SharedRun {
  results: Map<string, ScriptResult>;
  memories: Map<string, Uint8Array>;
  trace: MuxTrace[];
  waits: Wait[];
  violations: Violation[];
  stats: MuxStats;
  /** Stats at `untilNs` (before guests detach). */
  statsAtStop: MuxStats | null;
  endNs: number;
}


export function memBaseOf(index: number): number {
  return MEM_STRIDE * (index + 1);
}

/** Run the guests together through the engine. */
export async function runShared(specs: GuestSpec[], o: RunOptions): Promise<SharedRun> {
  const vt = new VirtualTime();
  const cost = o.accessCostNs ?? 5_000;
  const trace: MuxTrace[] = [];
  const violations: Violation[] = [];
  const waits: Wait[] = [];
  const waitingSince = new Map<string, number>();
  let device: SimDevice | null = null;
  const mux: MuxEngine = createMux(o.def, {
    deviceId: 'sim0',
    policy: o.policy,
    clock: vt.clock,
    timers: vt.timersApi,
    recheckNs: o.recheckNs ?? 100_000,
    mode: o.mode,
    observer: (e) => {
      trace.push(e);
      if (e.kind === 'stall' && e.guest && !waitingSince.has(e.guest)) waitingSince.set(e.guest, e.t);
      if (e.kind === 'grant' && e.guest) {
        const from = waitingSince.get(e.guest);
        if (from !== undefined) waits.push({ guest: e.guest, from, to: e.t });
        waitingSince.delete(e.guest);
        // The independent oracle: the device itself must be between commands at a switch.
        if (e.detail?.startsWith('from ') && device && !device.idle())
          violations.push({ t: e.t, property: 'safety', message: `device switched to ${e.guest} ${e.detail} while a command was running (state ${e.state})` });
      }
      if (e.kind === 'unsafe-switch') violations.push({ t: e.t, property: 'safety', message: `switch to ${e.guest} ${e.detail} outside a safe state (${e.state})` });
      if (e.kind === 'policy-error') violations.push({ t: e.t, property: 'policy', message: e.detail ?? 'policy error' });
    },
  });
  device = new SimDevice(mux.edges, specs.reduce((n, s) => n + s.sectors, 0));
  mux.bind(o.asyncDevice ? asPromises(device) : device);

  const memories = new Map<string, ArrayGuestMemory>();
  let start = 0;
  specs.forEach((s, i) => {
    const mem = new ArrayGuestMemory(memBaseOf(i), s.memSize);
    memories.set(s.id, mem);
    const link: GuestLink = {
      id: s.id,
      weight: s.weight,
      priority: s.priority,
      deadlineNs: s.deadlineNs,
      memory: mem,
      setIrq: (_line, level) => {
        if (level && mux.ownerId() !== s.id)
          violations.push({ t: vt.now, property: 'isolation', message: `virtual IRQ raised for ${s.id} while ${mux.ownerId() ?? 'nobody'} owns the device` });
      },
    };
    mux.attach(link, { window: { startLba: start, sectors: s.sectors } });
    start += s.sectors;
  });

  let statsAtStop: MuxStats | null = null;
  const stop = () => {
    if (o.stopAtViolation && violations.length > 0) return true;
    if (o.untilNs === undefined || vt.now < o.untilNs) return false;
    statsAtStop ??= mux.stats();
    return true;
  };
  const results = new Map<string, ScriptResult>();
  let finished = 0;
  specs.forEach((s, i) => {
    runScript(s.ops, {
      port: (offset, acc) => mux.access(s.id, 0, offset, acc),
      memBase: memBaseOf(i),
      tick: () => vt.advance(cost),
      sleep: (ns) => vt.sleep(ns),
      stop,
    }).then(
      (r) => {
        results.set(s.id, r);
        if (r.hung && s.crashAfterHangNs !== undefined) vt.timersApi.set(() => mux.detach(s.id, 'crash'), s.crashAfterHangNs);
        else if (!r.hung) mux.detach(s.id, 'bye');
        finished++;
      },
      (err) => {
        violations.push({ t: vt.now, property: 'progress', message: `guest ${s.id} script failed: ${(err as Error).message}` });
        finished++;
      },
    );
  });

  const maxSteps = o.maxSteps ?? 1_000_000;
  for (let steps = 0; ; steps++) {
    await settle();
    if (finished === specs.length) break;
    if (steps > maxSteps || !vt.fireNext()) {
      const stuck = specs.filter((s) => !results.has(s.id)).map((s) => s.id);
      violations.push({ t: vt.now, property: 'progress', message: `guests ${stuck.join(', ')} never finished (owner ${mux.ownerId() ?? 'none'}, state ${mux.stateName()})` });
      break;
    }
  }
  // Hung guests keep their timers; let pending detaches and watchdogs play out.
  while (vt.fireNext()) await settle();
  for (const [id, since] of waitingSince) waits.push({ guest: id, from: since, to: Infinity });
  const stats = mux.stats();
  await mux.close();
  return {
    results,
    memories: new Map([...memories].map(([id, m]) => [id, m.bytes])),
    trace,
    waits,
    violations,
    stats,
    statsAtStop,
    endNs: vt.now,
  };
}

/** The device answering through promises, as a remote device does. */
export function asPromises(d: SimDevice): Device {
  return {
    describe: () => d.describe(),
    read: async (r, off, size) => d.read(r, off, size),
    write: async (r, off, size, v) => d.write(r, off, size, v),
    readString: async (r, off, size, n) => d.readString(r, off, size, n),
    writeString: async (r, off, size, data) => d.writeString(r, off, size, data),
    reset: async () => d.reset(),
    metrics: () => d.metrics(),
  };
}

/** The same script alone on a fresh device with the guest's window size and its own memory. */
export async function runSolo(spec: GuestSpec, index: number): Promise<{ result: ScriptResult; memory: Uint8Array }> {
  const vt = new VirtualTime();
  const mem = new ArrayGuestMemory(memBaseOf(index), spec.memSize);
  const device = new SimDevice({ irq: { set() {} }, dma: { read: (a, n) => mem.read(a, n), write: (a, d) => mem.write(a, d) }, clock: vt.clock }, spec.sectors);
  let done = false;
  let result: ScriptResult | null = null;
  runScript(spec.ops, {
    port: (offset, acc): Reply => {
      if (acc.dir === 'write') {
        if ((acc.count ?? 1) > 1 && acc.data) device.writeString(0, offset, acc.size as 1, acc.data);
        else device.write(0, offset, acc.size as 1, Number(acc.value ?? 0));
        return { value: 0 };
      }
      if ((acc.count ?? 1) > 1) return { value: 0, data: device.readString(0, offset, acc.size as 1, acc.count!) };
      return { value: device.read(0, offset, acc.size as 1) };
    },
    memBase: memBaseOf(index),
    tick: () => vt.advance(5_000),
    sleep: (ns) => vt.sleep(ns),
  }).then((r) => {
    result = r;
    done = true;
  });
  while (!done) {
    await settle();
    if (!done && !vt.fireNext()) await settle();
  }
  return { result: result!, memory: mem.bytes };
}
