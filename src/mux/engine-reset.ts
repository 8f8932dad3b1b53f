// The reset path: the definition's reset writes (each classified, so the chart follows) and,
// for a hard reset, device.reset() and a restarted chart; afterwards the device holds nobody's
// context. Cutting an owner off (watchdog, a detach mid-command, a context that cannot be
// loaded): the guest is released and marked faulted, its held accesses are refused, the reset
// path runs and the guest is told.

import { deniedReply } from '../access.ts';
import { isPromise, type MaybePromise } from './device-io.ts';
import { sequence, type EngineCore, type GuestRec } from './engine-core.ts';

export class ResetPath {
  constructor(private readonly c: EngineCore) {}

  /** Cut an owner off: reset path, mark it faulted, free the device. */
  cutOff(g: GuestRec, why: string): void {
    const c = this.c;
    c.counters.faults++;
    g.stats.faults++;
    g.stats.faulted = true;
    c.log.warn({ guest: g.link.id, why }, 'guest cut off');
    c.trace('fault', g, why);
    c.parts.arbiter.release(g);
    c.owner = null;
    c.parts.arbiter.removeWaiting(g);
    for (const h of g.queue.splice(0)) h.resolve(deniedReply(h.acc, `guest ${g.link.id} faulted on ${c.deviceId}: ${why}`));
    g.stats.resets++;
    this.run(why);
    try {
      g.link.notifyReset?.(c.deviceId, why);
    } catch (err) {
      c.log.warn({ err, guest: g.link.id }, 'notifyReset failed');
    }
  }

  /** The definition's reset path; the device's registers then hold nobody's context. Settles when it ran. */
  run(why: string): MaybePromise<void> {
    const c = this.c;
    c.counters.resets++;
    c.contextOf = null;
    c.deviceHolds.clear();
    const dev = c.device;
    const ops: Array<() => MaybePromise<void>> = [];
    if (dev) {
      for (const w of c.def.reset.writes) {
        const reg = c.regs!.byName(w.reg);
        ops.push(() => {
          const r = dev.write(reg.regionIndex, reg.offset, reg.width, w.value);
          const ev = () => {
            const e = c.def.classify({ reg, region: reg.regionIndex, offset: reg.offset, size: reg.width, dir: 'write', value: w.value, count: 1 }, w.value);
            if (e != null) c.parts.watchdog.step(e);
          };
          return isPromise(r) ? r.then(ev) : ev();
        });
      }
      if (c.def.reset.hard)
        ops.push(() => {
          const r = dev.reset();
          const restart = () => c.parts.watchdog.restartChart();
          return isPromise(r) ? r.then(restart) : restart();
        });
    }
    const end = () => {
      if (!c.stepper.safe()) {
        // The definition's reset path does not reach safety (check-machine flags this): restart the chart.
        c.log.error({ state: c.stateName() }, 'reset path did not reach a safe state; restarting the statechart');
        c.parts.watchdog.restartChart();
      }
      c.trace('reset', null, why);
      c.log.info({ why, state: c.stateName() }, 'reset path ran');
    };
    let r: MaybePromise<void>;
    try {
      r = sequence(ops);
    } catch (err) {
      c.log.error({ err }, 'reset path failed on the device');
      return end();
    }
    if (!isPromise(r)) return end();
    c.busy = true;
    return r.then(
      () => {
        c.busy = false;
        end();
        c.parts.arbiter.kick();
      },
      (err) => {
        c.busy = false;
        c.log.error({ err }, 'reset path failed on the device');
        end();
        c.parts.arbiter.kick();
      },
    );
  }
}
