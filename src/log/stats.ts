// `log stats`: accesses per guest and register (count, reads, writes, bytes, stall), per
// guest totals, and MUX events per kind.

import type { AccessRecord, EventRecord } from './record.ts';

export interface RegisterStats {
  guest: string;
  device: string | null;
  reg: string;
  reads: number;
  writes: number;
  /** Bytes moved (string accesses count every element). */
  bytes: number;
  stallNs: number;
  errors: number;
}

export interface GuestTotals {
  guest: string;
  accesses: number;
  bytes: number;
  stallNs: number;
  errors: number;
  stalls: number;
}

export interface LogStats {
  registers: RegisterStats[];
  guests: GuestTotals[];
  events: Record<string, number>;
  /** First and last record time (ns since the log started). */
  spanNs: [number, number] | null;
}

export class StatsCollector {
  private readonly regs = new Map<string, RegisterStats>();
  private readonly guests = new Map<string, GuestTotals>();
  private readonly events: Record<string, number> = {};
  private first = Infinity;
  private last = -Infinity;

  add(r: AccessRecord | EventRecord): void {
    this.first = Math.min(this.first, r.t);
    this.last = Math.max(this.last, r.t);
    if (r.type === 'event') {
      this.events[r.kind] = (this.events[r.kind] ?? 0) + 1;
      return;
    }
    const reg = r.reg ?? `${r.space}:0x${r.addr.toString(16)}`;
    const key = `${r.guest}\0${r.device}\0${reg}`;
    let s = this.regs.get(key);
    if (!s) this.regs.set(key, (s = { guest: r.guest, device: r.device, reg, reads: 0, writes: 0, bytes: 0, stallNs: 0, errors: 0 }));
    const bytes = r.count * r.size;
    if (r.dir === 'r') s.reads++;
    else s.writes++;
    s.bytes += bytes;
    s.stallNs += r.stallNs;
    if (r.error) s.errors++;
    let g = this.guests.get(r.guest);
    if (!g) this.guests.set(r.guest, (g = { guest: r.guest, accesses: 0, bytes: 0, stallNs: 0, errors: 0, stalls: 0 }));
    g.accesses++;
    g.bytes += bytes;
    g.stallNs += r.stallNs;
    if (r.stallNs > 0) g.stalls++;
    if (r.error) g.errors++;
  }

  result(): LogStats {
    const registers = [...this.regs.values()].sort((a, b) => a.guest.localeCompare(b.guest) || b.reads + b.writes - (a.reads + a.writes));
    const guests = [...this.guests.values()].sort((a, b) => a.guest.localeCompare(b.guest));
    return { registers, guests, events: { ...this.events }, spanNs: this.first <= this.last ? [this.first, this.last] : null };
  }
}
