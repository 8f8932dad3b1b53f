// Context save and replay on a switch: first the outgoing guest's volatile registers are
// saved (a context entry's `save`), then the incoming guest's context registers (its own last
// writes, or the reset values) are written onto the device in the definition's order, each
// skipped when the device already holds that value. A replay that fails leaves the device
// holding an unknown mix: the reset path runs and the replay is tried once more; a second
// failure cuts the guest off. The device is never granted with a context the engine did not load.

import type { ReplayIo } from './define.ts';
import { isPromise, type MaybePromise } from './device-io.ts';
import { sequence, type EngineCore, type GuestRec } from './engine-core.ts';

export class ContextLoader {
  constructor(private readonly c: EngineCore) {}

  /** Put `next`'s context onto the device (replaying/loading are set by the caller, cleared here). */
  load(next: GuestRec, retry: boolean): MaybePromise<void> {
    const c = this.c;
    let r: MaybePromise<void>;
    try {
      r = this.replay(next);
    } catch (err) {
      return this.failed(next, err, retry);
    }
    if (!isPromise(r)) return this.loaded(next);
    c.busy = true;
    return r.then(
      () => {
        c.busy = false;
        this.loaded(next);
      },
      (err) => {
        c.busy = false;
        return this.failed(next, err, retry);
      },
    );
  }

  private loaded(next: GuestRec): void {
    const c = this.c;
    c.replaying = false;
    c.loading = false;
    c.contextOf = next;
    if (c.owner !== next) return;
    c.parts.irq.granted(next);
  }

  private failed(next: GuestRec, err: unknown, retry: boolean): MaybePromise<void> {
    const c = this.c;
    // What the device holds is unknown now: nobody's context, no register value to trust.
    c.contextOf = null;
    c.deviceHolds.clear();
    c.counters.replayFailures++;
    const why = `context replay for ${next.link.id} failed: ${err instanceof Error ? err.message : String(err)}`;
    c.log.error({ err, guest: next.link.id, retry }, 'context replay failed');
    c.trace('replay-failed', next, why);
    if (retry && c.owner === next && !c.closed) {
      const r = c.parts.reset.run(why);
      return isPromise(r) ? r.then(() => this.load(next, false)) : this.load(next, false);
    }
    c.replaying = false;
    c.loading = false;
    if (c.owner === next) c.parts.reset.cutOff(next, `${why} (after a reset and a second replay)`);
  }

  /** Write the incoming guest's context registers (its own values, or reset values) onto the device. */
  private replay(g: GuestRec): MaybePromise<void> {
    const c = this.c;
    if (c.contextOf === g) return; // nobody touched the device since: nothing to restore
    const dev = c.device!; // a guest is granted only after bind (access checks it)
    const io: ReplayIo = {
      write: async (name, v) => {
        const r = c.regs!.byName(name);
        await dev.write(r.regionIndex, r.offset, r.width, v);
      },
      read: async (name) => {
        const r = c.regs!.byName(name);
        return await dev.read(r.regionIndex, r.offset, r.width);
      },
    };
    const ops: Array<() => MaybePromise<void>> = [];
    // First save the volatile state of the guest whose context the device holds now.
    const outgoing = c.contextOf;
    if (outgoing && c.guests.get(outgoing.link.id) === outgoing && !outgoing.stats.faulted) {
      for (const ctx of c.def.context ?? []) {
        if (!ctx.save) continue;
        ops.push(() => {
          const v = ctx.save!(io, outgoing.view); // checked above
          const keep = (x: number): void => void outgoing.view.context.set(ctx.reg, x);
          return isPromise(v) ? v.then(keep) : keep(v);
        });
      }
    }
    const replayed: string[] = [];
    for (const ctx of c.def.context ?? []) {
      const v = g.view.context.get(ctx.reg) ?? ctx.reset;
      if (!ctx.always && c.deviceHolds.get(ctx.reg) === v) continue; // already on the device
      c.deviceHolds.set(ctx.reg, v);
      replayed.push(`${ctx.reg}=0x${v.toString(16)}`);
      if (ctx.replay) ops.push(() => ctx.replay!(v, io)); // checked on this line
      else {
        const reg = c.regs!.byName(ctx.reg);
        ops.push(() => dev.write(reg.regionIndex, reg.offset, reg.width, v));
      }
    }
    if (c.recorder) c.record({ kind: 'replay', guest: g.link.id, detail: replayed.join(' ') });
    c.depth++;
    try {
      return sequence(ops);
    } finally {
      c.depth--;
    }
  }
}
