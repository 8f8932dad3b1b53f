// Virtual time for deterministic runs of the real engine: a clock and timers that only move
// when the harness says so (DESIGN.md: models and policies never read a clock).

import type { Clock } from '../device.ts';
import type { Timers } from '../mux/engine.ts';

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

export class VirtualTime {
  now = 0;
  private timers: Timer[] = [];
  private seq = 0;

  readonly clock: Clock = () => this.now;

  readonly timersApi: Timers = {
    set: (fn, delayNs) => {
      const t: Timer = { due: this.now + Math.max(0, delayNs), seq: this.seq++, fn, live: true };
      this.timers.push(t);
      return t;
    },
    clear: (h) => {
      (h as Timer).live = false;
    },
  };

  advance(ns: number): void {
    this.now += ns;
  }

  sleep(ns: number): Promise<void> {
    return new Promise((resolve) => this.timersApi.set(resolve, ns));
  }

  /** Fire the earliest live timer (moving time to it). False when there is none. */
  fireNext(): boolean {
    this.timers = this.timers.filter((t) => t.live);
    if (this.timers.length === 0) return false;
    let best = this.timers[0];
    for (const t of this.timers) if (t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    best.live = false;
    if (best.due > this.now) this.now = best.due;
    best.fn();
    return true;
  }
}

/** Let every queued promise callback run (they are all microtasks; setImmediate comes after). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
