// The demo's live view, redrawn a few times a second on a terminal: per device who owns it now,
// the MUX chart's state, switches and unsafe switches; per guest its progress and phase; and a
// heading that says when the guests are verifying at the end (reading back what they wrote).

import type { RouterStats } from '../guest-link.ts';
import type { WorkloadProgress } from '../guests/ata-workload.ts';
import { bar, formatTable, mib } from './table.ts';

/** One device as the live view shows it. */
export interface DeviceLive {
  id: string;
  kind: string;
  /** Null: nobody owns it (no MUX, or free). */
  owner: string | null;
  /** The MUX statechart's state (dotted path); null for a device without a MUX. */
  state: string | null;
  switches: number;
  unsafeSwitches: number;
  resets: number;
}

/** One guest as the live view shows it. */
export interface GuestLive {
  guest: string;
  ops: number;
  bytes: number;
  errors: number;
  /** What it is doing: `starting`, `running`, `verifying`, `verified`, `FAILED`. */
  phase: 'starting' | 'running' | 'verifying' | 'verified' | 'FAILED';
  /** While verifying: the fraction read back so far, when known. */
  verifyFraction?: number;
}

/** The devices of a supervisor's statistics; the MUX engine's carry its owner and chart state. */
export function devicesLive(stats: readonly RouterStats[]): DeviceLive[] {
  return stats.map((d) => {
    const mux = d as RouterStats & { owner?: string | null; state?: string };
    return {
      id: d.device,
      kind: d.kind,
      owner: mux.owner ?? null,
      state: typeof mux.state === 'string' ? mux.state : null,
      switches: d.switches,
      unsafeSwitches: d.unsafeSwitches,
      resets: d.resets,
    };
  });
}

/** A scripted guest's workload progress (src/guests/ata-workload.ts) as the live view shows it. */
export function guestLive(p: WorkloadProgress): GuestLive {
  const errors = p.errors + p.mismatches;
  const base = { guest: p.guest, ops: p.ops, bytes: p.bytes, errors };
  if (p.phase === 'verify') return { ...base, phase: 'verifying', verifyFraction: p.toCheck ? (p.checked ?? 0) / p.toCheck : undefined };
  if (p.phase === 'done') return { ...base, phase: errors ? 'FAILED' : 'verified' };
  return { ...base, phase: p.phase === 'run' ? 'running' : 'starting' };
}

function heading(guests: readonly GuestLive[], elapsed: number, seconds: number | undefined): string {
  const verifying = guests.filter((g) => g.phase === 'verifying').length;
  const finished = guests.filter((g) => g.phase === 'verified' || g.phase === 'FAILED').length;
  const time = seconds === undefined ? `${elapsed.toFixed(1)} s` : `${Math.min(elapsed, seconds).toFixed(1)}/${seconds} s`;
  const progress = seconds === undefined ? '' : `${bar(elapsed / seconds, 30)} `;
  if (finished === guests.length && guests.length > 0) return `${progress}${time}  done`;
  if (verifying > 0) {
    return `${progress}${time}  verifying: ${verifying} of ${guests.length} guest${guests.length === 1 ? ' reads' : 's read'} back everything written${finished ? ` (${finished} finished)` : ''}`;
  }
  return `${progress}${time}  running`;
}

function phaseCell(g: GuestLive): string {
  if (g.phase === 'verifying' && g.verifyFraction !== undefined) return `verifying ${Math.floor(g.verifyFraction * 100)}%`;
  return g.phase;
}

/** The whole live view as lines of text (no colour, no cursor codes: LiveBlock redraws it). */
export function liveView(devices: readonly DeviceLive[], guests: readonly GuestLive[], elapsed: number, seconds?: number): string {
  const deviceRows = devices.map((d) => [d.id, d.kind, d.owner ?? '-', d.state ?? '(no MUX)', d.switches, d.unsafeSwitches, d.resets]);
  const guestRows = guests.map((g) => [g.guest, g.ops, mib(g.bytes), g.errors, phaseCell(g)]);
  return [
    heading(guests, elapsed, seconds),
    formatTable(['device', 'kind', 'owner', 'chart state', 'switches', 'unsafe switches', 'resets'], deviceRows, ['kind', 'owner', 'chart state']),
    formatTable(['guest', 'ops', 'MiB', 'errors', 'phase'], guestRows, ['phase']),
  ].join('\n');
}
