// The waiting line: guests with held accesses that do not own the device, longest-waiting
// first. Adding, removing and finding the head cost the same with 1 or 1024 guests waiting
// (an insertion-ordered Set, not an array filtered on every grant). The policy's list of
// waiters is made when the policy reads it (engine-arbiter.ts decide), so a decision that only
// looks at the owner (a quantum not used up) does no work per waiter; its entries are valid for
// that decision (a policy keeps figures, not the objects: src/mux/policy.ts).

import type { GuestLink, GuestStats } from '../guest-link.ts';
import type { WaiterView } from './policy.ts';

/** What the line needs of a guest's record (engine-core.ts GuestRec). */
export interface Waiter {
  readonly link: GuestLink;
  readonly stats: GuestStats;
  /** When it started waiting (ns; the arbiter sets it). */
  waitingSince: number;
  /** Its entry in the policy's list, made once and refilled for every decision that reads the list. */
  waiterView: WaiterView | null;
}

export class WaitLine<G extends Waiter> {
  private readonly line = new Set<G>();
  /** The line as an array, until it changes. */
  private list: G[] | null = null;
  get length(): number {
    return this.line.size;
  }

  /** Append `g` (the caller sets g.waitingSince). */
  push(g: G): void {
    this.line.add(g);
    this.list = null;
  }

  remove(g: G): void {
    if (this.line.delete(g)) this.list = null;
  }

  /** The longest-waiting guest. */
  first(): G | undefined {
    for (const g of this.line) return g;
    return undefined;
  }

  clear(): void {
    this.line.clear();
    this.list = null;
  }

  /** Longest-waiting first. The same array until the line changes: do not modify it. */
  toArray(): readonly G[] {
    return (this.list ??= [...this.line]);
  }

  /**
   * The waiters as the policy sees them at `now`, in a fresh array. Each guest's entry is one
   * object refilled here (every field, so a policy that changed one sees the truth again):
   * no allocation per waiter per decision, which with 1024 guests was most of the garbage.
   */
  views(now: number): WaiterView[] {
    const list = this.toArray();
    const out: WaiterView[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const w = list[i];
      const v = (w.waiterView ??= { id: '', weight: 0, priority: 0, deadlineNs: 0, waitedNs: 0, usedNs: 0 });
      v.id = w.link.id;
      v.weight = w.link.weight;
      v.priority = w.link.priority;
      v.deadlineNs = w.link.deadlineNs;
      v.waitedNs = now - w.waitingSince;
      v.usedNs = w.stats.usedNs;
      out[i] = v;
    }
    return out;
  }
}
