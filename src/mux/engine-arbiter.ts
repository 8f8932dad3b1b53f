// Arbitration: who owns the device. kick() makes progress: at a safe state with someone
// waiting it asks the policy (decide) and hands the device on (switchTo: release the owner,
// grant, load the context), then runs the owner's held accesses in order. A new owner runs at
// least one held access before the policy is asked again. An idle owner the policy keeps is
// asked about again every recheckNs. A policy that throws or names nobody waiting is counted
// and the longest-waiting guest goes next.

import { describeAccess } from '../access.ts';
import { isPromise, type MaybePromise } from './device-io.ts';
import type { EngineCore, GuestRec, Held } from './engine-core.ts';
import type { WaitLine } from './engine-waiting.ts';
import type { OwnerView, PolicyView, WaiterView } from './policy.ts';

export class Arbiter {
  private kicking = false;
  private recheck: unknown = null;

  constructor(private readonly c: EngineCore) {}

  /** Make progress: hand the device on at a safe state (policy), run the owner's held accesses. */
  kick(): void {
    if (this.kicking) return; // the running loop below picks up whatever changed
    const c = this.c;
    this.kicking = true;
    try {
      while (!c.busy && !c.loading && c.depth === 0 && !c.closed) {
        const o = c.owner;
        // A new owner runs at least one held access before anyone is asked again (no livelock
        // of grants that never let anyone run, e.g. behind an asynchronous context replay).
        const fresh = o !== null && c.ownerFresh && o.queue.length > 0;
        if (!fresh && c.waiting.length > 0 && c.stepper.safe()) {
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

  /** Hold an access of `g` until it owns the device (it waits, unless it is the owner behind a busy device). */
  hold(g: GuestRec, h: Held): void {
    const c = this.c;
    g.queue.push(h);
    if (c.owner !== g) {
      g.stats.stalls++;
      if (g.waitingSince < 0) {
        g.waitingSince = c.clock();
        c.waiting.push(g);
      }
      // With 1024 guests every access stalls once per round: build no strings nobody reads.
      if (c.tracing) c.trace('stall', g, describeAccess(h.acc));
      if (c.debugLog) c.log.debug({ guest: g.link.id, owner: c.owner?.link.id ?? null, state: c.stateName(), acc: describeAccess(h.acc) }, 'access stalled');
    }
    this.kick();
  }

  /** Hand the device to `next` (called in a safe state, or with no owner after a reset). */
  switchTo(next: GuestRec): MaybePromise<void> {
    const c = this.c;
    const prev = c.owner;
    if (prev) this.release(prev);
    if (prev && !c.stepper.safe()) {
      c.counters.unsafeSwitches++;
      c.trace('unsafe-switch', next, `from ${prev.link.id}`);
    }
    this.removeWaiting(next);
    const now = c.clock();
    c.owner = next;
    c.ownerFresh = true;
    next.grantedAt = now;
    next.stats.grants++;
    c.counters.switches++;
    this.clearRecheck();
    if (c.tracing) c.trace('grant', next, prev ? `from ${prev.link.id}` : 'free device');
    if (c.debugLog) c.log.debug({ guest: next.link.id, from: prev?.link.id ?? null }, 'grant');
    try {
      c.policy.onGrant?.(next.link.id, now);
    } catch (err) {
      this.hookFailed('onGrant', next, err);
    }
    c.replaying = true;
    c.loading = true;
    const r = c.parts.context.load(next, true);
    if (isPromise(r)) return r.then(() => this.kick());
  }

  /** `g` loses the device: its device time, its line, the policy's hook; back in line if it has accesses held. */
  release(g: GuestRec): void {
    const c = this.c;
    const now = c.clock();
    const held = now - g.grantedAt;
    g.stats.usedNs += held;
    c.parts.irq.released(g);
    if (c.tracing) c.trace('release', g, `held ${(held / 1e6).toFixed(3)} ms`, held);
    try {
      c.policy.onRelease?.(g.link.id, now, held);
    } catch (err) {
      this.hookFailed('onRelease', g, err);
    }
    // A guest switched out with accesses still held waits again.
    if (g.queue.length > 0 && g.waitingSince < 0 && !g.stats.faulted) {
      g.waitingSince = now;
      c.waiting.push(g);
    }
  }

  removeWaiting(g: GuestRec): void {
    if (g.waitingSince < 0) return;
    g.waitingSince = -1;
    this.c.waiting.remove(g);
  }

  clearRecheck(): void {
    if (this.recheck !== null) this.c.timers.clear(this.recheck);
    this.recheck = null;
  }

  private drainOne(g: GuestRec): void {
    const h = g.queue.shift()!; // kick checked the queue is not empty
    const r = this.c.parts.access.runOwned(g, h.region, h.offset, h.acc, true);
    if (isPromise(r)) r.then(h.resolve);
    else h.resolve(r);
  }

  private decide(): GuestRec {
    const c = this.c;
    const now = c.clock();
    const o = c.owner;
    // The waiters are listed when the policy reads them: a policy that keeps the owner for its
    // quantum decides without a look at the line (with 1024 waiting, after every owner access).
    const view = new DecisionView(
      now,
      o
        ? {
            id: o.link.id,
            weight: o.link.weight,
            priority: o.link.priority,
            deadlineNs: o.link.deadlineNs,
            usedNs: o.stats.usedNs + (now - o.grantedAt),
            heldNs: now - o.grantedAt,
          }
        : null,
      c.waiting,
    );
    let id: unknown;
    try {
      id = c.policy.pick(view);
    } catch (err) {
      return this.policyFailed(`pick threw: ${(err as Error)?.message ?? String(err)}`);
    }
    if (isPromise(id)) {
      (id as Promise<unknown>).catch(() => {}); // its rejection, if any, is this error's
      return this.policyFailed('pick must return a guest id synchronously, got a Promise');
    }
    if (o && id === o.link.id) return o;
    const w = typeof id === 'string' ? c.guests.get(id) : undefined;
    if (!w || w.waitingSince < 0) return this.policyFailed(`pick returned ${JSON.stringify(id)}, which is neither the owner nor waiting`);
    return w;
  }

  /** A policy failure is counted and logged; the longest-waiting guest goes next (round-robin order). */
  private policyFailed(why: string): GuestRec {
    const c = this.c;
    c.counters.policyErrors++;
    c.log.error({ policy: c.policy.name, why }, 'policy failed; falling back to round-robin order');
    c.trace('policy-error', null, why);
    return c.waiting.first()!; // decide runs with someone waiting
  }

  /** A throwing accounting hook is a policy error like a bad pick: counted, logged, traced. */
  private hookFailed(hook: 'onGrant' | 'onRelease', g: GuestRec, err: unknown): void {
    const c = this.c;
    c.counters.policyErrors++;
    const why = `${hook}(${JSON.stringify(g.link.id)}) threw: ${err instanceof Error ? err.message : String(err)}`;
    c.log.error({ policy: c.policy.name, guest: g.link.id, err }, `policy ${hook} threw`);
    c.trace('policy-error', g, why);
  }

  private armRecheck(): void {
    if (this.recheck !== null) return;
    this.recheck = this.c.timers.set(() => {
      this.recheck = null;
      this.kick();
    }, this.c.recheckNs);
  }
}

/**
 * One decision's view for the policy. `waiting` is a getter on the class (an accessor in an
 * object literal costs a runtime call and garbage per decision): the list is made on the first
 * read. JSON shows all three fields.
 */
class DecisionView implements PolicyView {
  #list: WaiterView[] | null = null;
  readonly #line: WaitLine<GuestRec>;

  constructor(
    readonly now: number,
    readonly owner: OwnerView | null,
    line: WaitLine<GuestRec>,
  ) {
    this.#line = line;
  }

  get waiting(): WaiterView[] {
    return (this.#list ??= this.#line.views(this.now));
  }

  toJSON(): { now: number; owner: OwnerView | null; waiting: WaiterView[] } {
    return { now: this.now, owner: this.owner, waiting: this.waiting };
  }
}
