// What the MUX engine's parts share: the guests, the owner, the waiting line, the device and
// its statechart, the flags that say what may run now, the counters, and the calls one part
// makes into another (EngineParts, wired by engine.ts). Each part holds this core and no other
// part's module, so the parts import nothing from each other. See src/mux/README.md.

import { pino, type Logger } from 'pino';
import type { Access, Reply } from '../access.ts';
import type { Clock, Device } from '../device.ts';
import type { AttachOptions, GuestLink, GuestStats, RouterStats } from '../guest-link.ts';
import { createStepper, statePath, type Stepper, type StepperMode } from './compile.ts';
import type { GuestView, MuxDefinition, MuxEvent } from './define.ts';
import { isPromise, type MaybePromise } from './device-io.ts';
import type { Policy, WaiterView } from './policy.ts';
import type { MuxRecordEvent, MuxRecorder } from './recorder.ts';
import { resolveRegisters, type RegisterMap } from './registers.ts';
import { monotonicClock, realTimers, type Timers } from './timers.ts';
import { WaitLine } from './engine-waiting.ts';

/** One thing the engine did, for observers (the property suite's timeline) and tests. */
export interface MuxTrace {
  t: number;
  kind: 'grant' | 'release' | 'stall' | 'fault' | 'reset' | 'policy-error' | 'dma-refused' | 'denied' | 'unsafe-switch' | 'replay-failed';
  guest?: string;
  /** Statechart state (dotted path) at the time. */
  state: string;
  safe: boolean;
  detail?: string;
  /** release: how long the hold lasted (ns). */
  ns?: number;
}

export interface MuxOptions {
  deviceId: string;
  policy: Policy;
  logger?: Logger;
  clock?: Clock;
  timers?: Timers;
  /** Statechart runner: 'auto' (compiled table when the machine allows, else xstate), 'fast', 'xstate'. */
  mode?: StepperMode;
  /** When the policy lets an idle owner go on while others wait, ask again after this long. Default 500 µs. */
  recheckNs?: number;
  observer?: (e: MuxTrace) => void;
  /** An access log (src/log/): the chart around each owner access, and the MUX events. */
  recorder?: MuxRecorder;
}

/** RouterStats plus the engine's own counters. */
export interface MuxStats extends RouterStats {
  policyErrors: number;
  /** Longest time the device stayed out of a safe state (ns). */
  maxUnsafeNs: number;
  /** DMA attempts with no owner at all. */
  dmaRefusedNoOwner: number;
  /** Context replays that failed (each followed by the reset path and a second try, or a cut-off). */
  replayFailures: number;
  stepper: 'fast' | 'xstate';
  owner: string | null;
  state: string;
}

/** A guest's access held while it waits for the device. */
export interface Held {
  region: number;
  offset: number;
  acc: Access;
  resolve: (r: Reply) => void;
}

/** The engine's record of one attached guest. */
export interface GuestRec {
  link: GuestLink;
  view: GuestView & { context: Map<string, number> };
  stats: GuestStats;
  queue: Held[];
  /** -1 when not waiting. */
  waitingSince: number;
  grantedAt: number;
  vIrq: boolean;
  /** The device IRQ was pending when this guest lost the device. */
  irqPendingAtRelease: boolean;
  /** A re-raised virtual IRQ stays up until this guest's next access. */
  reraised: boolean;
  /** Its entry in the policy's list of waiters (engine-waiting.ts). */
  waiterView: WaiterView | null;
}

/** The calls that cross from one part to another (each part's module implements its own). */
export interface EngineParts {
  /** engine-arbiter.ts: who owns the device. */
  arbiter: {
    kick(): void;
    switchTo(next: GuestRec): MaybePromise<void>;
    release(g: GuestRec): void;
    removeWaiting(g: GuestRec): void;
    hold(g: GuestRec, h: Held): void;
    clearRecheck(): void;
  };
  /** engine-access.ts: the owner's accesses to the device. */
  access: { runOwned(g: GuestRec, region: number, offset: number, acc: Access, held?: boolean): MaybePromise<Reply> };
  /** engine-context.ts: context registers onto the device on a switch. */
  context: { load(next: GuestRec, retry: boolean): MaybePromise<void> };
  /** engine-watchdog.ts: the statechart's steps and the deadline out of safe states. */
  watchdog: { step(ev: MuxEvent): void; restartChart(): void; clear(): void };
  /** engine-reset.ts: the reset path and cutting an owner off. */
  reset: { run(why: string): MaybePromise<void>; cutOff(g: GuestRec, why: string): void };
  /** engine-irq.ts: the device line to the owner's virtual IRQ. */
  irq: { onDeviceIrq(level: boolean): void; setGuestIrq(g: GuestRec, level: boolean): void; granted(g: GuestRec): void; released(g: GuestRec): void; ownerAccess(g: GuestRec): void };
}

export class EngineCore {
  readonly deviceId: string;
  readonly stepper: Stepper;
  readonly log: Logger;
  /** Per-step trace logging builds a state name: only when asked for (checked once, hot path). */
  readonly traceLog: boolean;
  /** Debug logging (a stall, a grant) builds strings: only when asked for. */
  readonly debugLog: boolean;
  /** Someone reads trace(): an observer or an access log. Without one, its details are not built. */
  readonly tracing: boolean;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly recheckNs: number;
  readonly observer?: (e: MuxTrace) => void;
  readonly recorder?: MuxRecorder;
  kind: string;
  device: Device | null = null;
  regs: RegisterMap | null = null;
  irqLine = 0;
  readonly guests = new Map<string, GuestRec>();
  readonly departed: GuestStats[] = [];
  /** Guests with held accesses that do not own the device, longest-waiting first. */
  readonly waiting = new WaitLine<GuestRec>();
  owner: GuestRec | null = null;
  /** Whose context registers the device holds now (null: unknown, e.g. after a reset). */
  contextOf: GuestRec | null = null;
  /**
   * The context values the device holds now, as far as the engine wrote them (owner writes,
   * owner settings, replays). A replay skips an entry whose value is already there; a reset
   * forgets everything.
   */
  readonly deviceHolds = new Map<string, number>();
  /** An async device operation is in flight: everything else queues behind it. */
  busy = false;
  /** Inside a device call or a switch: edges must not switch owners underneath. */
  depth = 0;
  /** The owner was just granted the device and has not run an access yet. */
  ownerFresh = false;
  deviceIrq = false;
  /** The device IRQ was already up when the owner got the device: it is the previous owner's, not delivered. */
  staleIrq = false;
  /**
   * Whose command raised the device IRQ that is up now: the owner at the rising edge (null: it
   * rose during a replay or a reset, or with no owner). Only that guest gets it re-raised.
   */
  irqRaisedBy: GuestRec | null = null;
  /** Context replay in progress: device IRQ edges are not delivered. */
  replaying = false;
  /** A context load (replay, reset, second replay) is under way: nobody's accesses run. */
  loading = false;
  /** When the chart left the safe states (-1: it is in one). */
  unsafeSince = -1;
  closed = false;
  readonly counters = { switches: 0, unsafeSwitches: 0, resets: 0, faults: 0, policyErrors: 0, maxUnsafeNs: 0, dmaRefusedNoOwner: 0, replayFailures: 0 };
  /** The other parts, wired by the engine (engine.ts) right after construction. */
  parts!: EngineParts;

  constructor(
    readonly def: MuxDefinition,
    readonly policy: Policy,
    opts: Omit<MuxOptions, 'policy'>,
  ) {
    this.deviceId = opts.deviceId;
    this.kind = def.kind;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ device: opts.deviceId });
    this.traceLog = this.log.isLevelEnabled('trace');
    this.debugLog = this.log.isLevelEnabled('debug');
    this.tracing = opts.observer !== undefined || opts.recorder !== undefined;
    this.clock = opts.clock ?? monotonicClock;
    this.timers = opts.timers ?? realTimers;
    this.recheckNs = opts.recheckNs ?? 500_000;
    this.observer = opts.observer;
    this.recorder = opts.recorder;
    this.stepper = createStepper(def.machine, opts.mode ?? 'auto');
    this.irqLine = def.irqLine ?? 0;
  }

  /** Take the device: resolve register names against its regions. */
  bind(device: Device): void {
    const desc = device.describe();
    this.regs = resolveRegisters(this.def, desc.regions.map((r) => r.name));
    this.device = device;
    this.kind = desc.kind;
    this.irqLine = this.def.irqLine ?? desc.irq ?? 0;
  }

  /** A new guest record (its statistics carried over when it was attached before). */
  addGuest(link: GuestLink, options: AttachOptions): GuestRec {
    const prev = this.departed.findIndex((s) => s.guest === link.id);
    const stats: GuestStats =
      prev >= 0
        ? { ...this.departed.splice(prev, 1)[0], faulted: false }
        : { guest: link.id, accesses: 0, stalls: 0, grants: 0, denials: 0, faults: 0, resets: 0, dmaRefused: 0, usedNs: 0, faulted: false };
    const context = new Map<string, number>();
    const setContext = (name: string, value: number): void => {
      context.set(name, value);
      // The owner's own command changed the device setting: the device holds its value now.
      if (this.owner?.link.id === link.id) this.deviceHolds.set(name, value);
    };
    const rec: GuestRec = {
      link,
      view: { id: link.id, options, scratch: {}, context, setContext, state: () => this.stateName(), register: (name) => this.regs!.byName(name) },
      stats,
      queue: [],
      waitingSince: -1,
      grantedAt: 0,
      vIrq: false,
      irqPendingAtRelease: false,
      reraised: false,
      waiterView: null,
    };
    this.guests.set(link.id, rec);
    return rec;
  }

  /** Dotted statechart state. */
  stateName(): string {
    return statePath(this.stepper.value());
  }

  trace(kind: MuxTrace['kind'], g: GuestRec | null, detail?: string, ns?: number): void {
    if (this.recorder && kind !== 'stall') this.record({ kind: kind === 'grant' ? 'switch' : kind, guest: g?.link.id, detail, ns });
    if (!this.observer) return;
    this.observer({ t: this.clock(), kind, guest: g?.link.id, state: this.stateName(), safe: this.stepper.safe(), detail, ns });
  }

  record(e: Omit<MuxRecordEvent, 't' | 'state' | 'safe'>): void {
    this.recorder!.event(this.deviceId, { t: this.clock(), state: this.stateName(), safe: this.stepper.safe(), ...e });
  }
}

/** Run device operations in order: synchronously while each one is, through promises from the first that is not. */
export function sequence(ops: Array<() => MaybePromise<void>>): MaybePromise<void> {
  for (let i = 0; i < ops.length; i++) {
    const r = ops[i]();
    if (isPromise(r)) {
      const rest = ops.slice(i + 1);
      return r.then(() => sequence(rest));
    }
  }
}
