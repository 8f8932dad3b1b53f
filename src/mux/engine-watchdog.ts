// The statechart's steps and the watchdog: every event the chart gets goes through step();
// when the chart leaves the safe states the deadline (def.deadlineNs) starts, when it comes
// back the span is counted (maxUnsafeNs) and the deadline stops. Past the deadline the owner
// is cut off (engine-reset.ts), or, with no owner, the reset path runs.

import { eventType, type MuxEvent } from './define.ts';
import type { EngineCore } from './engine-core.ts';

export class Watchdog {
  private timer: unknown = null;

  constructor(private readonly c: EngineCore) {}

  step(ev: MuxEvent): void {
    const c = this.c;
    const wasSafe = c.stepper.safe();
    c.stepper.send(ev);
    this.afterStep(wasSafe);
    if (c.traceLog) c.log.trace({ event: eventType(ev), state: c.stateName() }, 'statechart step');
  }

  restartChart(): void {
    const wasSafe = this.c.stepper.safe();
    this.c.stepper.restart();
    this.afterStep(wasSafe);
  }

  /** Stop the deadline (close). */
  clear(): void {
    if (this.timer !== null) this.c.timers.clear(this.timer);
    this.timer = null;
  }

  /** Watchdog bookkeeping when the chart enters or leaves the safe states. */
  private afterStep(wasSafe: boolean): void {
    const c = this.c;
    const safe = c.stepper.safe();
    if (wasSafe === safe) return;
    const now = c.clock();
    if (!safe) {
      c.unsafeSince = now;
      this.clear();
      this.timer = c.timers.set(() => this.onDeadline(), c.def.deadlineNs);
    } else {
      if (c.unsafeSince >= 0) c.counters.maxUnsafeNs = Math.max(c.counters.maxUnsafeNs, now - c.unsafeSince);
      c.unsafeSince = -1;
      this.clear();
    }
  }

  private onDeadline(): void {
    const c = this.c;
    this.timer = null;
    if (c.stepper.safe() || c.closed) return;
    if (c.busy || c.loading || c.depth > 0) {
      // A device operation is in flight; look again when it ends.
      this.timer = c.timers.set(() => this.onDeadline(), Math.max(1, c.recheckNs));
      return;
    }
    const g = c.owner;
    const why = `watchdog: out of a safe state (${c.stateName()}) longer than ${c.def.deadlineNs} ns`;
    if (g) c.parts.reset.cutOff(g, why);
    else c.parts.reset.run(why);
    c.parts.arbiter.kick();
  }
}
