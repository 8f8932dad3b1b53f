// The live view's guests for the KVM demo: each bare-metal ATA driver (native/guests/ata-driver.c)
// says where it is by its output lines — IDENTIFY, `MARK verify-start` (writing its window),
// `MARK readback-start` (reading it back: verifying), `RESULT ok|fail` — and the supervisor
// counts its accesses.

import type { GuestLive } from './live-view.ts';

interface Seen {
  phase: GuestLive['phase'];
  bytes: number;
}

export class KvmGuestPhases {
  private readonly seen = new Map<string, Seen>();

  constructor(readonly guests: readonly string[]) {
    for (const g of guests) this.seen.set(g, { phase: 'starting', bytes: 0 });
  }

  /** One output line of a guest. */
  line(guest: string, line: string): void {
    const s = this.seen.get(guest);
    if (!s) return;
    if (line.startsWith('MARK verify-start')) s.phase = 'running';
    else if (line.startsWith('MARK readback-start')) s.phase = 'verifying';
    else if (line.startsWith('RESULT ok')) {
      s.phase = 'verified';
      s.bytes = Number(/\bbytes=(\d+)/.exec(line)?.[1] ?? 0);
    } else if (line.startsWith('RESULT')) s.phase = 'FAILED';
  }

  /** The guests now; `accesses`: what the supervisor forwarded for each so far. */
  live(accesses: ReadonlyMap<string, number>): GuestLive[] {
    return this.guests.map((guest) => {
      const s = this.seen.get(guest)!; // every guest was added in the constructor
      return { guest, ops: accesses.get(guest) ?? 0, bytes: s.bytes, errors: s.phase === 'FAILED' ? 1 : 0, phase: s.phase };
    });
  }
}
