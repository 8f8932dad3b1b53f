// What the engine tells an access log (src/log/), when one is given: the chart around each
// owner access, and its events (switch, release, reset, fault, context replay). Optional:
// without a recorder the engine pays one branch per access.

import type { Access } from '../access.ts';

/** The chart around one access of the owner that ran on the device. */
export interface MuxRan {
  device: string;
  owner: string;
  /** Statechart state (dotted path) before and after the access. */
  before: string;
  after: string;
  /** When it started on the device (engine clock, ns): minus its arrival, how long it stalled. */
  startNs: number;
  /** It waited in the guest's queue (another guest owned the device, or a switch was under way). */
  held: boolean;
}

/** One engine event. `kind` is MuxTrace's kinds (`grant` as `switch`, no `stall`) plus `replay`. */
export interface MuxRecordEvent {
  t: number;
  kind: string;
  guest?: string;
  state: string;
  safe: boolean;
  detail?: string;
  /** release: how long the hold lasted (ns). */
  ns?: number;
}

export interface MuxRecorder {
  /** `acc` is the very object the supervisor routed, so the log joins both halves by identity. */
  ran(acc: Access, info: MuxRan): void;
  event(device: string, e: MuxRecordEvent): void;
}
