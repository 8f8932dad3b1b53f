// The MUX engine: one per physical device; implements DeviceRouter (src/guest-link.ts).
//
// The owner's accesses reach the device and drive the statechart; anyone else's access is
// held (a pending Promise) until the policy grants it the device at a safe state. On a switch
// the incoming guest's context registers are replayed onto the device, then its held accesses
// run in order. The IRQ goes to the owner only, DMA through the owner's memory only. A
// watchdog cuts off an owner that stays out of a safe state past the definition's deadline.
//
// This file is the coordinator: it holds the shared state (engine-core.ts), wires the parts
// (arbitration, the owned access path, context replay, IRQ routing, watchdog, reset path,
// DMA gating: engine-*.ts) and answers the DeviceRouter calls. See src/mux/README.md.

import { deniedReply, describeAccess, type Access, type Reply } from '../access.ts';
import type { Device, DeviceEdges } from '../device.ts';
import type { AttachOptions, DetachReason, DeviceRouter, GuestLink } from '../guest-link.ts';
import type { Stepper } from './compile.ts';
import type { MuxDefinition } from './define.ts';
import { isPromise } from './device-io.ts';
import { OwnedAccess } from './engine-access.ts';
import { Arbiter } from './engine-arbiter.ts';
import { ContextLoader } from './engine-context.ts';
import { EngineCore, type EngineParts, type MuxOptions, type MuxStats } from './engine-core.ts';
import { DmaGate } from './engine-dma.ts';
import { IrqRouter } from './engine-irq.ts';
import { ResetPath } from './engine-reset.ts';
import { Watchdog } from './engine-watchdog.ts';
import type { Policy } from './policy.ts';
import { monotonicClock, realTimers, type Timers } from './timers.ts';

export { monotonicClock, realTimers, type Timers };
export type { MuxOptions, MuxStats, MuxTrace } from './engine-core.ts';

/** The engine's parts, each over the same core, wired to each other through `core.parts`. */
export interface WiredParts extends EngineParts {
  arbiter: Arbiter;
  access: OwnedAccess;
  context: ContextLoader;
  watchdog: Watchdog;
  reset: ResetPath;
  irq: IrqRouter;
  dma: DmaGate;
}

/** Build every part over `core` and wire them to each other (the engine does this; part tests too). */
export function wireParts(core: EngineCore): WiredParts {
  const parts: WiredParts = {
    arbiter: new Arbiter(core),
    access: new OwnedAccess(core),
    context: new ContextLoader(core),
    watchdog: new Watchdog(core),
    reset: new ResetPath(core),
    irq: new IrqRouter(core),
    dma: new DmaGate(core),
  };
  core.parts = parts;
  return parts;
}

export class MuxEngine implements DeviceRouter {
  readonly deviceId: string;
  readonly edges: DeviceEdges;
  readonly stepper: Stepper;
  private readonly core: EngineCore;
  private readonly parts: WiredParts;

  constructor(
    readonly def: MuxDefinition,
    policy: Policy,
    opts: Omit<MuxOptions, 'policy'>,
  ) {
    const core = new EngineCore(def, policy, opts);
    this.core = core;
    this.parts = wireParts(core);
    this.deviceId = core.deviceId;
    this.stepper = core.stepper;
    const { irq, dma } = this.parts;
    this.edges = {
      irq: { set: (level) => irq.onDeviceIrq(level) },
      dma: { read: (addr, len) => dma.read(addr, len), write: (addr, data) => dma.write(addr, data) },
      clock: core.clock,
    };
  }

  // ---- DeviceRouter ------------------------------------------------------------------------

  bind(device: Device): void {
    this.core.bind(device);
  }

  attach(link: GuestLink, options: AttachOptions = {}): void {
    if (this.core.guests.has(link.id)) this.detach(link.id, 'disconnect');
    this.core.addGuest(link, options);
    this.core.log.debug({ guest: link.id }, 'guest attached');
  }

  detach(guestId: string, reason: DetachReason): void {
    const c = this.core;
    const g = c.guests.get(guestId);
    if (!g) return;
    if (c.owner === g) {
      if (!c.stepper.safe() || reason === 'fault' || reason === 'crash') {
        this.parts.reset.cutOff(g, `detached (${reason}) while owning in state ${c.stateName()}`);
      } else {
        this.parts.arbiter.release(g);
        c.owner = null;
      }
    }
    this.parts.arbiter.removeWaiting(g);
    for (const h of g.queue.splice(0)) h.resolve(deniedReply(h.acc, `guest detached (${reason})`));
    c.guests.delete(guestId);
    c.departed.push(g.stats);
    c.log.debug({ guest: guestId, reason }, 'guest detached');
    this.parts.arbiter.kick();
  }

  access(guestId: string, region: number, offset: number, acc: Access): Reply | Promise<Reply> {
    const c = this.core;
    const g = c.guests.get(guestId);
    if (!g) {
      c.log.debug({ guest: guestId, acc: describeAccess(acc) }, 'access from a guest not attached');
      return deniedReply(acc, `guest ${guestId} is not attached to ${this.deviceId}`);
    }
    g.stats.accesses++;
    if (g.stats.faulted || c.closed) {
      g.stats.denials++;
      c.trace('denied', g, 'faulted');
      c.log.debug({ guest: guestId, acc: describeAccess(acc) }, 'access denied: guest faulted');
      return deniedReply(acc, g.stats.faulted ? `guest ${guestId} faulted on ${this.deviceId}` : `${this.deviceId} closed`);
    }
    if (!c.device) throw new Error(`mux ${this.deviceId}: access before bind(device)`);
    if (c.owner === g && !c.busy && g.queue.length === 0) return this.parts.access.runOwned(g, region, offset, acc);
    if (!c.owner && c.waiting.length === 0 && !c.busy && g.queue.length === 0) {
      // A free device goes to the first accessor directly.
      const r = this.parts.arbiter.switchTo(g);
      if (!isPromise(r)) {
        if (c.owner === g) return this.parts.access.runOwned(g, region, offset, acc);
        return deniedReply(acc, `guest ${guestId} faulted on ${this.deviceId}: its context could not be loaded`);
      }
    }
    return new Promise<Reply>((resolve) => this.parts.arbiter.hold(g, { region, offset, acc, resolve }));
  }

  stats(): MuxStats {
    const c = this.core;
    const now = c.clock();
    const perGuest = [...c.guests.values()].map((g) => ({
      ...g.stats,
      usedNs: g.stats.usedNs + (c.owner === g ? now - g.grantedAt : 0),
    }));
    return {
      device: this.deviceId,
      kind: c.kind,
      switches: c.counters.switches,
      unsafeSwitches: c.counters.unsafeSwitches,
      resets: c.counters.resets,
      faults: c.counters.faults,
      perGuest: [...perGuest, ...c.departed.map((s) => ({ ...s }))],
      policyErrors: c.counters.policyErrors,
      replayFailures: c.counters.replayFailures,
      maxUnsafeNs: Math.max(c.counters.maxUnsafeNs, c.unsafeSince >= 0 ? now - c.unsafeSince : 0),
      dmaRefusedNoOwner: c.counters.dmaRefusedNoOwner,
      stepper: c.stepper.mode,
      owner: c.owner?.link.id ?? null,
      state: this.stateName(),
    };
  }

  /** Stop timers and answer every held access (all-ones, error). The device's creator closes the device. */
  async close(): Promise<void> {
    const c = this.core;
    c.closed = true;
    this.parts.watchdog.clear();
    this.parts.arbiter.clearRecheck();
    for (const g of c.guests.values()) for (const h of g.queue.splice(0)) h.resolve(deniedReply(h.acc, `${this.deviceId} closed`));
    c.waiting.clear();
  }

  /** Current owner's id, or null. */
  ownerId(): string | null {
    return this.core.owner?.link.id ?? null;
  }

  /** Dotted statechart state. */
  stateName(): string {
    return this.core.stateName();
  }
}

/** Create the MUX engine for one device: `createMux(def, { deviceId, policy })`, then build the device with `mux.edges`, then `mux.bind(device)`. */
export function createMux(def: MuxDefinition, opts: MuxOptions): MuxEngine {
  return new MuxEngine(def, opts.policy, opts);
}
