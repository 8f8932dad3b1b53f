// Time for the engine: an injected clock and timers, so tests and the property suite run on
// virtual time (src/check/virtual-time.ts) and a policy never reads a clock.

import type { Clock } from '../device.ts';

/** Timers the engine uses (watchdog, recheck); injected so tests run on virtual time. */
export interface Timers {
  set(fn: () => void, delayNs: number): unknown;
  clear(handle: unknown): void;
}

/**
 * setTimeout in ms. Not unref'd: a stalled in-process guest may be waiting on nothing but a
 * recheck; the engine only arms timers while someone waits or the device is unsafe, and
 * close() clears them.
 */
export const realTimers: Timers = {
  set: (fn, delayNs) => setTimeout(fn, Math.max(1, Math.ceil(delayNs / 1e6))),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export const monotonicClock: Clock = () => Number(process.hrtime.bigint());
