// The MUX engine: one per physical device; implements DeviceRouter (src/guest-link.ts).
//
// The owner's accesses reach the device and drive the statechart; anyone else's access is
// held (a pending Promise) until the policy grants it the device at a safe state. On a switch
// the incoming guest's context registers are replayed onto the device, then its held accesses
// run in order. The IRQ goes to the owner only, DMA through the owner's memory only. A
// watchdog cuts off an owner that stays out of a safe state past the definition's deadline.
// See src/mux/README.md.

import { pino, type Logger } from 'pino';
import { deniedReply, describeAccess, type Access, type Reply } from '../access.ts';
import type { Clock, DevSize, Device, DeviceEdges } from '../device.ts';
import type { AttachOptions, DetachReason, DeviceRouter, GuestLink, GuestStats, RouterStats } from '../guest-link.ts';
import { createStepper, statePath, type Stepper, type StepperMode } from './compile.ts';
import { eventType, type Answer, type GuestView, type MuxAccess, type MuxDefinition, type MuxEvent, type ReplayIo } from './define.ts';
import type { Policy, PolicyView } from './policy.ts';
import { planAccess, elementBytes, type Piece } from './access-forms.ts';
import { deviceAccess, isPromise, readLE, writeLE, type DeviceAnswer, type MaybePromise } from './device-io.ts';
import { monotonicClock, realTimers, type Timers } from './timers.ts';

export { monotonicClock, realTimers, type Timers };
import { resolveRegisters, type RegisterMap } from './registers.ts';
import type { MuxRecordEvent, MuxRecorder } from './recorder.ts';

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


interface Held {
  region: number;
  offset: number;
  acc: Access;
  resolve: (r: Reply) => void;
}

interface GuestRec {
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
}

export class MuxEngine implements DeviceRouter {
  readonly deviceId: string;
  readonly edges: DeviceEdges;
  readonly stepper: Stepper;
  private device: Device | null = null;
  private regs: RegisterMap | null = null;
  private kind: string;
  private readonly log: Logger;
  /** Per-step trace logging builds a state name: only when asked for (checked once, hot path). */
  private readonly traceLog: boolean;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly recheckNs: number;
  private readonly observer?: (e: MuxTrace) => void;
  private readonly recorder?: MuxRecorder;
  private readonly guests = new Map<string, GuestRec>();
  private readonly departed: GuestStats[] = [];
  private waiting: GuestRec[] = [];
  private owner: GuestRec | null = null;
  /** Whose context registers the device holds now (null: unknown, e.g. after a reset). */
  private contextOf: GuestRec | null = null;
  /**
   * The context values the device holds now, as far as the engine wrote them (owner writes,
   * owner settings, replays). A replay skips an entry whose value is already there; a reset
   * forgets everything.
   */
  private readonly deviceHolds = new Map<string, number>();
  /** An async device operation is in flight: everything else queues behind it. */
  private busy = false;
  /** Inside a device call or a switch: edges must not switch owners underneath. */
  private depth = 0;
  private kicking = false;
  /** The owner was just granted the device and has not run an access yet. */
  private ownerFresh = false;
  private deviceIrq = false;
  /** The device IRQ was already up when the owner got the device: it is the previous owner's, not delivered. */
  private staleIrq = false;
  /**
   * Whose command raised the device IRQ that is up now: the owner at the rising edge (null: it
   * rose during a replay or a reset, or with no owner). Only that guest gets it re-raised.
   */
  private irqRaisedBy: GuestRec | null = null;
  /** Context replay in progress: device IRQ edges are not delivered. */
  private replaying = false;
  /** A context load (replay, reset, second replay) is under way: nobody's accesses run. */
  private loading = false;
  private irqLine = 0;
  private unsafeSince = -1;
  private watchdog: unknown = null;
  private recheck: unknown = null;
  private closed = false;
  private readonly counters = { switches: 0, unsafeSwitches: 0, resets: 0, faults: 0, policyErrors: 0, maxUnsafeNs: 0, dmaRefusedNoOwner: 0, replayFailures: 0 };

  constructor(
    readonly def: MuxDefinition,
    private readonly policy: Policy,
    opts: Omit<MuxOptions, 'policy'>,
  ) {
    this.deviceId = opts.deviceId;
    this.kind = def.kind;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ device: opts.deviceId });
    this.traceLog = this.log.isLevelEnabled('trace');
    this.clock = opts.clock ?? monotonicClock;
    this.timers = opts.timers ?? realTimers;
    this.recheckNs = opts.recheckNs ?? 500_000;
    this.observer = opts.observer;
    this.recorder = opts.recorder;
    this.stepper = createStepper(def.machine, opts.mode ?? 'auto');
    this.irqLine = def.irqLine ?? 0;
    this.edges = {
      irq: { set: (level) => this.onDeviceIrq(level) },
      dma: { read: (addr, len) => this.dmaRead(addr, len), write: (addr, data) => this.dmaWrite(addr, data) },
      clock: this.clock,
    };
  }

  // ---- DeviceRouter ------------------------------------------------------------------------

  bind(device: Device): void {
    const desc = device.describe();
    this.regs = resolveRegisters(this.def, desc.regions.map((r) => r.name));
    this.device = device;
    this.kind = desc.kind;
    this.irqLine = this.def.irqLine ?? desc.irq ?? 0;
  }

  attach(link: GuestLink, options: AttachOptions = {}): void {
    const old = this.guests.get(link.id);
    if (old) this.detach(link.id, 'disconnect');
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
    this.guests.set(link.id, {
      link,
      view: { id: link.id, options, scratch: {}, context, setContext, state: () => this.stateName(), register: (name) => this.regs!.byName(name) },
      stats,
      queue: [],
      waitingSince: -1,
      grantedAt: 0,
      vIrq: false,
      irqPendingAtRelease: false,
      reraised: false,
    });
    this.log.debug({ guest: link.id }, 'guest attached');
  }

  detach(guestId: string, reason: DetachReason): void {
    const g = this.guests.get(guestId);
    if (!g) return;
    if (this.owner === g) {
      if (!this.stepper.safe() || reason === 'fault' || reason === 'crash') {
        this.cutOff(g, `detached (${reason}) while owning in state ${this.stateName()}`);
      } else {
        this.release(g);
        this.owner = null;
      }
    }
    this.removeWaiting(g);
    for (const h of g.queue.splice(0)) h.resolve(deniedReply(h.acc, `guest detached (${reason})`));
    this.guests.delete(guestId);
    this.departed.push(g.stats);
    this.log.debug({ guest: guestId, reason }, 'guest detached');
    this.kick();
  }

  access(guestId: string, region: number, offset: number, acc: Access): Reply | Promise<Reply> {
    const g = this.guests.get(guestId);
    if (!g) {
      this.log.debug({ guest: guestId, acc: describeAccess(acc) }, 'access from a guest not attached');
      return deniedReply(acc, `guest ${guestId} is not attached to ${this.deviceId}`);
    }
    g.stats.accesses++;
    if (g.stats.faulted || this.closed) {
      g.stats.denials++;
      this.trace('denied', g, 'faulted');
      this.log.debug({ guest: guestId, acc: describeAccess(acc) }, 'access denied: guest faulted');
      return deniedReply(acc, g.stats.faulted ? `guest ${guestId} faulted on ${this.deviceId}` : `${this.deviceId} closed`);
    }
    if (!this.device) throw new Error(`mux ${this.deviceId}: access before bind(device)`);
    if (this.owner === g && !this.busy && g.queue.length === 0) return this.runOwned(g, region, offset, acc);
    if (!this.owner && this.waiting.length === 0 && !this.busy && g.queue.length === 0) {
      // A free device goes to the first accessor directly.
      const r = this.switchTo(g);
      if (!isPromise(r)) {
        if (this.owner === g) return this.runOwned(g, region, offset, acc);
        return deniedReply(acc, `guest ${guestId} faulted on ${this.deviceId}: its context could not be loaded`);
      }
    }
    return new Promise<Reply>((resolve) => {
      g.queue.push({ region, offset, acc, resolve });
      if (this.owner !== g) {
        g.stats.stalls++;
        if (g.waitingSince < 0) {
          g.waitingSince = this.clock();
          this.waiting.push(g);
        }
        this.trace('stall', g, describeAccess(acc));
        this.log.debug({ guest: guestId, owner: this.owner?.link.id ?? null, state: this.stateName(), acc: describeAccess(acc) }, 'access stalled');
      }
      this.kick();
    });
  }

  stats(): MuxStats {
    const now = this.clock();
    const perGuest = [...this.guests.values()].map((g) => ({
      ...g.stats,
      usedNs: g.stats.usedNs + (this.owner === g ? now - g.grantedAt : 0),
    }));
    return {
      device: this.deviceId,
      kind: this.kind,
      switches: this.counters.switches,
      unsafeSwitches: this.counters.unsafeSwitches,
      resets: this.counters.resets,
      faults: this.counters.faults,
      perGuest: [...perGuest, ...this.departed.map((s) => ({ ...s }))],
      policyErrors: this.counters.policyErrors,
      replayFailures: this.counters.replayFailures,
      maxUnsafeNs: Math.max(this.counters.maxUnsafeNs, this.unsafeSince >= 0 ? now - this.unsafeSince : 0),
      dmaRefusedNoOwner: this.counters.dmaRefusedNoOwner,
      stepper: this.stepper.mode,
      owner: this.owner?.link.id ?? null,
      state: this.stateName(),
    };
  }

  /** Stop timers and answer every held access (all-ones, error). The device's creator closes the device. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer('watchdog');
    this.clearTimer('recheck');
    for (const g of this.guests.values()) for (const h of g.queue.splice(0)) h.resolve(deniedReply(h.acc, `${this.deviceId} closed`));
    this.waiting = [];
  }

  /** Current owner's id, or null. */
  ownerId(): string | null {
    return this.owner?.link.id ?? null;
  }

  /** Dotted statechart state. */
  stateName(): string {
    return statePath(this.stepper.value());
  }

  // ---- running accesses ----------------------------------------------------------------------

  /** Run one access of the owner; afterwards maybe hand the device on. */
  private runOwned(g: GuestRec, region: number, offset: number, acc: Access, held = false): MaybePromise<Reply> {
    this.ownerFresh = false;
    if (g.reraised) {
      // The re-raised virtual IRQ has been seen (the guest's ISR is running): follow the device again.
      g.reraised = false;
      this.setGuestIrq(g, this.deviceIrq && !this.staleIrq);
    }
    const before = this.recorder ? this.stateName() : '';
    const startNs = this.recorder ? this.clock() : 0;
    const ran = (): void => this.recorder?.ran(acc, { device: this.deviceId, owner: g.link.id, before, after: this.stateName(), startNs, held });
    const r = this.runForm(g, region, offset, acc);
    if (isPromise(r)) {
      this.busy = true;
      return r.then(
        (reply) => {
          this.busy = false;
          ran();
          this.afterAccess();
          return reply;
        },
        (err) => {
          this.busy = false;
          this.log.error({ err, guest: g.link.id }, 'device access failed');
          ran();
          this.afterAccess();
          return deniedReply(acc, `device ${this.deviceId} failed: ${(err as Error).message}`);
        },
      );
    }
    ran();
    this.afterAccess();
    return r;
  }

  /** Run an access in its form: whole, as the single accesses it stands for, or refused (access-forms.ts). */
  private runForm(g: GuestRec, region: number, offset: number, acc: Access): MaybePromise<Reply> {
    const plan = planAccess(this.regs!, region, offset, acc);
    if (plan.kind === 'whole') return this.runUnit(g, this.unitAccess(region, offset, acc.size as DevSize, acc.dir, acc.dir === 'write' ? Number(acc.value ?? 0) : 0, acc.count ?? 1, acc.data));
    if (plan.kind === 'refuse') {
      g.stats.denials++;
      this.trace('denied', g, plan.why);
      this.log.warn({ guest: g.link.id, acc: describeAccess(acc), why: plan.why }, 'access refused: form');
      return deniedReply(acc, plan.why);
    }
    return this.runSplit(g, region, acc, plan.pieces, plan.count);
  }

  /** Every element's pieces in order, each a single access of its own; the reply assembled from theirs. */
  private runSplit(g: GuestRec, region: number, acc: Access, pieces: Piece[], count: number): MaybePromise<Reply> {
    const size = acc.size;
    const out = new Uint8Array(count * size);
    let failed: string | undefined;
    const total = count * pieces.length;
    const one = (k: number): MaybePromise<void> => {
      const i = Math.floor(k / pieces.length);
      const p = pieces[k % pieces.length];
      const value = acc.dir === 'write' ? readLE(elementBytes(acc, i), p.at, p.size) : 0;
      const r = this.runUnit(g, this.unitAccess(region, p.offset, p.size, acc.dir, value, 1, undefined));
      const keep = (x: Reply): void => {
        if (x.error) failed ??= x.error;
        if (acc.dir === 'read') writeLE(out, i * size + p.at, p.size, Number(x.value));
      };
      return isPromise(r) ? r.then(keep) : keep(r);
    };
    const reply = (): Reply => {
      if (failed) return deniedReply(acc, failed);
      if (acc.dir === 'write') return { value: 0 };
      if (count > 1) return { value: 0, data: out };
      return { value: size === 8 ? readLE64(out) : readLE(out, 0, size) };
    };
    for (let k = 0; k < total; k++) {
      const r = one(k);
      if (isPromise(r)) {
        let chain: Promise<void> = r;
        for (let j = k + 1; j < total; j++) chain = chain.then(() => one(j));
        return chain.then(reply);
      }
    }
    return reply();
  }

  private unitAccess(region: number, offset: number, size: DevSize, dir: 'read' | 'write', value: number, count: number, data: Uint8Array | undefined): MuxAccess {
    return { reg: this.regs!.at(region, offset, dir), region, offset, size, dir, value, count, data };
  }

  /** One single (or whole string) access: translated for the guest, then to the device. */
  private runUnit(g: GuestRec, macc: MuxAccess): MaybePromise<Reply> {
    const tr = this.def.translate;
    if (tr?.access) {
      const out = tr.access(macc, g.view);
      if (out) {
        if (Array.isArray(out)) return this.forwardAll(g, out, 0, { value: 0 });
        if ('answer' in out) return this.answered(g, macc, out);
        macc = out;
      }
    }
    return this.forward(g, macc);
  }

  /** Several device accesses for one guest access (a translation's rewrite): in order; the last one's reply. */
  private forwardAll(g: GuestRec, list: MuxAccess[], from: number, last: Reply): MaybePromise<Reply> {
    for (let i = from; i < list.length; i++) {
      const r = this.forward(g, list[i]);
      if (isPromise(r)) return r.then((rr) => this.forwardAll(g, list, i + 1, list[i].probe ? last : rr));
      if (!list[i].probe) last = r;
    }
    return last;
  }

  /** One access to the device, then its classification and reply translation. */
  private forward(g: GuestRec, macc: MuxAccess): MaybePromise<Reply> {
    this.depth++;
    try {
      const r = deviceAccess(this.device!, macc);
      return isPromise(r) ? r.then((x) => this.finish(g, macc, x)) : this.finish(g, macc, r);
    } finally {
      this.depth--;
    }
  }

  private finish(g: GuestRec, macc: MuxAccess, answer: DeviceAnswer): Reply {
    const value = answer.value;
    const reply: Reply = macc.dir === 'write' ? { value: 0 } : answer.data ? { value: 0, data: answer.data } : { value };
    if (macc.dir === 'write' && macc.reg && this.regs!.isContext(macc.reg)) {
      g.view.context.set(macc.reg.name, macc.value);
      this.deviceHolds.set(macc.reg.name, macc.value);
    }
    const ev = macc.event !== undefined ? macc.event : this.def.classify(macc, value);
    if (ev != null) this.step(ev);
    const tr = this.def.translate;
    if (tr?.reply && macc.dir === 'read') return fitReply(tr.reply(macc, reply, g.view) ?? reply, macc.size);
    return reply;
  }

  private answered(g: GuestRec, macc: MuxAccess, a: Answer): Reply {
    const why = a.denied ?? a.answer.error;
    if (why) {
      g.stats.denials++;
      this.trace('denied', g, why);
      this.log.debug({ guest: g.link.id, why }, 'access refused by translation');
    }
    if (a.event != null) this.step(a.event);
    return macc.dir === 'read' ? fitReply(a.answer, macc.size) : a.answer;
  }

  // ---- statechart, watchdog ----------------------------------------------------------------

  private step(ev: MuxEvent): void {
    const wasSafe = this.stepper.safe();
    this.stepper.send(ev);
    this.afterStep(wasSafe);
    if (this.traceLog) this.log.trace({ event: eventType(ev), state: this.stateName() }, 'statechart step');
  }

  private restartChart(): void {
    const wasSafe = this.stepper.safe();
    this.stepper.restart();
    this.afterStep(wasSafe);
  }

  /** Watchdog bookkeeping when the chart enters or leaves the safe states. */
  private afterStep(wasSafe: boolean): void {
    const safe = this.stepper.safe();
    if (wasSafe === safe) return;
    const now = this.clock();
    if (!safe) {
      this.unsafeSince = now;
      this.clearTimer('watchdog');
      this.watchdog = this.timers.set(() => this.onWatchdog(), this.def.deadlineNs);
    } else {
      if (this.unsafeSince >= 0) this.counters.maxUnsafeNs = Math.max(this.counters.maxUnsafeNs, now - this.unsafeSince);
      this.unsafeSince = -1;
      this.clearTimer('watchdog');
    }
  }

  private onWatchdog(): void {
    this.watchdog = null;
    if (this.stepper.safe() || this.closed) return;
    if (this.busy || this.loading || this.depth > 0) {
      // A device operation is in flight; look again when it ends.
      this.watchdog = this.timers.set(() => this.onWatchdog(), Math.max(1, this.recheckNs));
      return;
    }
    const g = this.owner;
    const why = `watchdog: out of a safe state (${this.stateName()}) longer than ${this.def.deadlineNs} ns`;
    if (g) this.cutOff(g, why);
    else this.runReset(why);
    this.kick();
  }

  /** Cut an owner off: reset path, mark it faulted, free the device. */
  private cutOff(g: GuestRec, why: string): void {
    this.counters.faults++;
    g.stats.faults++;
    g.stats.faulted = true;
    this.log.warn({ guest: g.link.id, why }, 'guest cut off');
    this.trace('fault', g, why);
    this.release(g);
    this.owner = null;
    this.removeWaiting(g);
    for (const h of g.queue.splice(0)) h.resolve(deniedReply(h.acc, `guest ${g.link.id} faulted on ${this.deviceId}: ${why}`));
    g.stats.resets++;
    this.runReset(why);
    try {
      g.link.notifyReset?.(this.deviceId, why);
    } catch (err) {
      this.log.warn({ err, guest: g.link.id }, 'notifyReset failed');
    }
  }

  /** The definition's reset path; the device's registers then hold nobody's context. Settles when it ran. */
  private runReset(why: string): MaybePromise<void> {
    this.counters.resets++;
    this.contextOf = null;
    this.deviceHolds.clear();
    const dev = this.device;
    const ops: Array<() => MaybePromise<void>> = [];
    if (dev) {
      for (const w of this.def.reset.writes) {
        const reg = this.regs!.byName(w.reg);
        ops.push(() => {
          const r = dev.write(reg.regionIndex, reg.offset, reg.width, w.value);
          const ev = () => {
            const e = this.def.classify({ reg, region: reg.regionIndex, offset: reg.offset, size: reg.width, dir: 'write', value: w.value, count: 1 }, w.value);
            if (e != null) this.step(e);
          };
          return isPromise(r) ? r.then(ev) : ev();
        });
      }
      if (this.def.reset.hard)
        ops.push(() => {
          const r = dev.reset();
          const restart = () => this.restartChart();
          return isPromise(r) ? r.then(restart) : restart();
        });
    }
    const end = () => {
      if (!this.stepper.safe()) {
        // The definition's reset path does not reach safety (check-machine flags this): restart the chart.
        this.log.error({ state: this.stateName() }, 'reset path did not reach a safe state; restarting the statechart');
        this.restartChart();
      }
      this.trace('reset', null, why);
      this.log.info({ why, state: this.stateName() }, 'reset path ran');
    };
    let r: MaybePromise<void>;
    try {
      r = this.sequence(ops);
    } catch (err) {
      this.log.error({ err }, 'reset path failed on the device');
      return end();
    }
    if (!isPromise(r)) return end();
    this.busy = true;
    return r.then(
      () => {
        this.busy = false;
        end();
        this.kick();
      },
      (err) => {
        this.busy = false;
        this.log.error({ err }, 'reset path failed on the device');
        end();
        this.kick();
      },
    );
  }

  // ---- arbitration ---------------------------------------------------------------------------

  /** Make progress: hand the device on at a safe state (policy), run the owner's held accesses. */
  private kick(): void {
    if (this.kicking) return; // the running loop below picks up whatever changed
    this.kicking = true;
    try {
      while (!this.busy && !this.loading && this.depth === 0 && !this.closed) {
        const o = this.owner;
        // A new owner runs at least one held access before anyone is asked again (no livelock
        // of grants that never let anyone run, e.g. behind an asynchronous context replay).
        const fresh = o !== null && this.ownerFresh && o.queue.length > 0;
        if (!fresh && this.waiting.length > 0 && this.stepper.safe()) {
          const next = this.decide();
          if (next !== o) {
            this.switchTo(next);
            continue;
          }
          this.armRecheck();
        }
        if (o && o.queue.length > 0) {
          this.drainOne(o);
          continue;
        }
        return;
      }
    } finally {
      this.kicking = false;
    }
  }

  private drainOne(g: GuestRec): void {
    const h = g.queue.shift()!;
    const r = this.runOwned(g, h.region, h.offset, h.acc, true);
    if (isPromise(r)) r.then(h.resolve);
    else h.resolve(r);
  }

  /** After every owner access: progress for the others. */
  private afterAccess(): void {
    if (this.depth === 0) this.kick();
  }

  private decide(): GuestRec {
    const now = this.clock();
    const o = this.owner;
    const view: PolicyView = {
      now,
      owner: o
        ? {
            id: o.link.id,
            weight: o.link.weight,
            priority: o.link.priority,
            deadlineNs: o.link.deadlineNs,
            usedNs: o.stats.usedNs + (now - o.grantedAt),
            heldNs: now - o.grantedAt,
          }
        : null,
      waiting: this.waiting.map((w) => ({
        id: w.link.id,
        weight: w.link.weight,
        priority: w.link.priority,
        deadlineNs: w.link.deadlineNs,
        waitedNs: now - w.waitingSince,
        usedNs: w.stats.usedNs,
      })),
    };
    let id: unknown;
    try {
      id = this.policy.pick(view);
    } catch (err) {
      return this.policyFailed(`pick threw: ${(err as Error)?.message ?? String(err)}`);
    }
    if (isPromise(id)) {
      (id as Promise<unknown>).catch(() => {}); // its rejection, if any, is this error's
      return this.policyFailed('pick must return a guest id synchronously, got a Promise');
    }
    if (o && id === o.link.id) return o;
    const w = this.waiting.find((x) => x.link.id === id);
    if (!w) return this.policyFailed(`pick returned ${JSON.stringify(id)}, which is neither the owner nor waiting`);
    return w;
  }

  /** A policy failure is counted and logged; the longest-waiting guest goes next (round-robin order). */
  private policyFailed(why: string): GuestRec {
    this.counters.policyErrors++;
    this.log.error({ policy: this.policy.name, why }, 'policy failed; falling back to round-robin order');
    this.trace('policy-error', null, why);
    return this.waiting[0];
  }

  /** A throwing accounting hook is a policy error like a bad pick: counted, logged, traced. */
  private hookFailed(hook: 'onGrant' | 'onRelease', g: GuestRec, err: unknown): void {
    this.counters.policyErrors++;
    const why = `${hook}(${JSON.stringify(g.link.id)}) threw: ${err instanceof Error ? err.message : String(err)}`;
    this.log.error({ policy: this.policy.name, guest: g.link.id, err }, `policy ${hook} threw`);
    this.trace('policy-error', g, why);
  }

  /** Hand the device to `next` (called in a safe state, or with no owner after a reset). */
  private switchTo(next: GuestRec): MaybePromise<void> {
    const prev = this.owner;
    if (prev) this.release(prev);
    if (prev && !this.stepper.safe()) {
      this.counters.unsafeSwitches++;
      this.trace('unsafe-switch', next, `from ${prev.link.id}`);
    }
    this.removeWaiting(next);
    const now = this.clock();
    this.owner = next;
    this.ownerFresh = true;
    next.grantedAt = now;
    next.stats.grants++;
    this.counters.switches++;
    this.clearTimer('recheck');
    this.trace('grant', next, prev ? `from ${prev.link.id}` : 'free device');
    this.log.debug({ guest: next.link.id, from: prev?.link.id ?? null }, 'grant');
    try {
      this.policy.onGrant?.(next.link.id, now);
    } catch (err) {
      this.hookFailed('onGrant', next, err);
    }
    this.replaying = true;
    this.loading = true;
    const r = this.loadContext(next, true);
    if (isPromise(r)) return r.then(() => this.kick());
  }

  /**
   * Put `next`'s context onto the device. A replay that fails leaves the device holding an
   * unknown mix of registers: the reset path runs (nobody's context is then loaded) and the
   * replay is tried once more; a second failure cuts the guest off. The device is never
   * granted with a context the engine did not load.
   */
  private loadContext(next: GuestRec, retry: boolean): MaybePromise<void> {
    let r: MaybePromise<void>;
    try {
      r = this.replay(next);
    } catch (err) {
      return this.contextFailed(next, err, retry);
    }
    if (!isPromise(r)) return this.contextLoaded(next);
    this.busy = true;
    return r.then(
      () => {
        this.busy = false;
        this.contextLoaded(next);
      },
      (err) => {
        this.busy = false;
        return this.contextFailed(next, err, retry);
      },
    );
  }

  private contextLoaded(next: GuestRec): void {
    this.replaying = false;
    this.loading = false;
    this.contextOf = next;
    if (this.owner !== next) return;
    // A line up now was raised before the grant (or by the replay): not this guest's interrupt.
    this.staleIrq = this.deviceIrq;
    if (this.def.reraiseIrq && next.irqPendingAtRelease) {
      next.reraised = true;
      this.setGuestIrq(next, true);
    } else this.setGuestIrq(next, this.deviceIrq && !this.staleIrq);
    next.irqPendingAtRelease = false;
  }

  private contextFailed(next: GuestRec, err: unknown, retry: boolean): MaybePromise<void> {
    // What the device holds is unknown now: nobody's context, no register value to trust.
    this.contextOf = null;
    this.deviceHolds.clear();
    this.counters.replayFailures++;
    const why = `context replay for ${next.link.id} failed: ${err instanceof Error ? err.message : String(err)}`;
    this.log.error({ err, guest: next.link.id, retry }, 'context replay failed');
    this.trace('replay-failed', next, why);
    if (retry && this.owner === next && !this.closed) {
      const r = this.runReset(why);
      return isPromise(r) ? r.then(() => this.loadContext(next, false)) : this.loadContext(next, false);
    }
    this.replaying = false;
    this.loading = false;
    if (this.owner === next) this.cutOff(next, `${why} (after a reset and a second replay)`);
  }

  private release(g: GuestRec): void {
    const now = this.clock();
    const held = now - g.grantedAt;
    g.stats.usedNs += held;
    // Only the guest whose command raised the line has an interrupt pending: a line that was
    // already up when g got the device (another guest's, e.g. after a PIO data-in block whose
    // status was never read) re-raised to g would end g's next wait for its own completion.
    g.irqPendingAtRelease = this.deviceIrq && this.irqRaisedBy === g;
    g.reraised = false;
    this.setGuestIrq(g, false);
    this.trace('release', g, `held ${(held / 1e6).toFixed(3)} ms`, held);
    try {
      this.policy.onRelease?.(g.link.id, now, held);
    } catch (err) {
      this.hookFailed('onRelease', g, err);
    }
    // A guest switched out with accesses still held waits again.
    if (g.queue.length > 0 && g.waitingSince < 0 && !g.stats.faulted) {
      g.waitingSince = now;
      this.waiting.push(g);
    }
  }

  /** Write the incoming guest's context registers (its own values, or reset values) onto the device. */
  private replay(g: GuestRec): MaybePromise<void> {
    if (this.contextOf === g) return; // nobody touched the device since: nothing to restore
    const dev = this.device!;
    const io: ReplayIo = {
      write: async (name, v) => {
        const r = this.regs!.byName(name);
        await dev.write(r.regionIndex, r.offset, r.width, v);
      },
      read: async (name) => {
        const r = this.regs!.byName(name);
        return await dev.read(r.regionIndex, r.offset, r.width);
      },
    };
    const ops: Array<() => MaybePromise<void>> = [];
    // First save the volatile state of the guest whose context the device holds now.
    const outgoing = this.contextOf;
    if (outgoing && this.guests.get(outgoing.link.id) === outgoing && !outgoing.stats.faulted) {
      for (const c of this.def.context ?? []) {
        if (!c.save) continue;
        ops.push(() => {
          const v = c.save!(io, outgoing.view);
          const keep = (x: number): void => void outgoing.view.context.set(c.reg, x);
          return isPromise(v) ? v.then(keep) : keep(v);
        });
      }
    }
    const replayed: string[] = [];
    for (const c of this.def.context ?? []) {
      const v = g.view.context.get(c.reg) ?? c.reset;
      if (!c.always && this.deviceHolds.get(c.reg) === v) continue; // already on the device
      this.deviceHolds.set(c.reg, v);
      replayed.push(`${c.reg}=0x${v.toString(16)}`);
      if (c.replay) ops.push(() => c.replay!(v, io));
      else {
        const reg = this.regs!.byName(c.reg);
        ops.push(() => dev.write(reg.regionIndex, reg.offset, reg.width, v));
      }
    }
    if (this.recorder) this.record({ kind: 'replay', guest: g.link.id, detail: replayed.join(' ') });
    this.depth++;
    try {
      return this.sequence(ops);
    } finally {
      this.depth--;
    }
  }

  private armRecheck(): void {
    if (this.recheck !== null) return;
    this.recheck = this.timers.set(() => {
      this.recheck = null;
      this.kick();
    }, this.recheckNs);
  }

  private removeWaiting(g: GuestRec): void {
    if (g.waitingSince < 0) return;
    g.waitingSince = -1;
    this.waiting = this.waiting.filter((w) => w !== g);
  }

  private clearTimer(which: 'watchdog' | 'recheck'): void {
    const h = this[which];
    if (h !== null) this.timers.clear(h);
    this[which] = null;
  }

  private sequence(ops: Array<() => MaybePromise<void>>): MaybePromise<void> {
    for (let i = 0; i < ops.length; i++) {
      const r = ops[i]();
      if (isPromise(r)) {
        const rest = ops.slice(i + 1);
        return r.then(() => this.sequence(rest));
      }
    }
  }

  // ---- edges: IRQ and DMA --------------------------------------------------------------------

  private onDeviceIrq(level: boolean): void {
    if (level && !this.deviceIrq) this.irqRaisedBy = this.replaying ? null : this.owner;
    if (!level) this.irqRaisedBy = null;
    this.deviceIrq = level;
    if (!level) this.staleIrq = false;
    const o = this.owner;
    if (o && !o.reraised && !this.staleIrq && !this.replaying) this.setGuestIrq(o, level);
    const ev = this.def.classifyIrq?.(level);
    if (ev != null) {
      this.step(ev);
      if (this.depth === 0 && !this.busy) this.kick();
    }
  }

  private setGuestIrq(g: GuestRec, level: boolean): void {
    if (g.vIrq === level) return;
    g.vIrq = level;
    try {
      g.link.setIrq(this.irqLine, level);
    } catch (err) {
      this.log.warn({ err, guest: g.link.id }, 'setIrq failed');
    }
  }

  private dmaTarget(addr: number, len: number, what: string): GuestRec | null {
    const g = this.owner;
    const mem = g?.link.memory;
    if (g && mem && Number.isInteger(addr) && len >= 0 && addr >= mem.base && addr + len <= mem.base + mem.size) return g;
    if (g) g.stats.dmaRefused++;
    else this.counters.dmaRefusedNoOwner++;
    const detail = `${what} 0x${addr.toString(16)}+${len} outside ${g ? `${g.link.id}'s DMA window` : 'any owner'}`;
    this.log.debug({ guest: g?.link.id ?? null }, detail);
    this.trace('dma-refused', g, detail);
    return null;
  }

  private async dmaRead(addr: number, len: number): Promise<Uint8Array | null> {
    const g = this.dmaTarget(addr, len, 'DMA read');
    if (!g) return null;
    const r = await g.link.memory!.read(addr, len);
    if (r === null) g.stats.dmaRefused++;
    return r;
  }

  private async dmaWrite(addr: number, data: Uint8Array): Promise<boolean> {
    const g = this.dmaTarget(addr, data.length, 'DMA write');
    if (!g) return false;
    const ok = await g.link.memory!.write(addr, data);
    if (!ok) g.stats.dmaRefused++;
    return ok;
  }

  private trace(kind: MuxTrace['kind'], g: GuestRec | null, detail?: string, ns?: number): void {
    if (this.recorder && kind !== 'stall') this.record({ kind: kind === 'grant' ? 'switch' : kind, guest: g?.link.id, detail, ns });
    if (!this.observer) return;
    this.observer({ t: this.clock(), kind, guest: g?.link.id, state: this.stateName(), safe: this.stepper.safe(), detail, ns });
  }

  private record(e: Omit<MuxRecordEvent, 't' | 'state' | 'safe'>): void {
    this.recorder!.event(this.deviceId, { t: this.clock(), state: this.stateName(), safe: this.stepper.safe(), ...e });
  }
}

/** Create the MUX engine for one device: `createMux(def, { deviceId, policy })`, then build the device with `mux.edges`, then `mux.bind(device)`. */
/**
 * A translated reply holds a value of the access's size: a hook's arithmetic (ORing a bit into
 * an all-ones 32-bit read gives -1) must not reach the guest, or the codec, as something else.
 */
function fitReply(r: Reply, size: DevSize): Reply {
  if (typeof r.value !== 'number') return r;
  const v = Number.isFinite(r.value) ? r.value : 0;
  const fitted = size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  return fitted === r.value ? r : { ...r, value: fitted };
}

/** A little-endian 64-bit value from 8 bytes. */
function readLE64(b: Uint8Array): bigint {
  return (BigInt(readLE(b, 4, 4)) << 32n) | BigInt(readLE(b, 0, 4));
}

export function createMux(def: MuxDefinition, opts: MuxOptions): MuxEngine {
  return new MuxEngine(def, opts.policy, opts);
}
