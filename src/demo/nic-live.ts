// The NIC demo's live view and summary table: per guest its MAC, frames sent and received,
// the router's counters for it (dropped, spoofed, filtered), errors and phase.

import type { DemoSummary } from './summary.ts';
import type { NicGuestProgress } from './nic-guest.ts';
import { bar, formatTable, mib } from './table.ts';

export function nicLiveView(guests: readonly NicGuestProgress[], elapsed: number, seconds: number): string {
  const done = guests.length > 0 && guests.every((g) => g.phase === 'verified' || g.phase === 'FAILED');
  const draining = guests.some((g) => g.phase === 'draining');
  const state = done ? 'done' : draining ? 'draining: every guest reads what is still in its ring' : 'running';
  return [
    `${bar(elapsed / seconds, 30)} ${Math.min(elapsed, seconds).toFixed(1)}/${seconds} s  ${state}`,
    formatTable(
      ['guest', 'sent', 'received', 'MiB', 'errors', 'phase'],
      guests.map((g) => [g.guest, g.sent, g.received, mib(g.bytes), g.errors, g.phase]),
      ['phase'],
    ),
  ].join('\n');
}

export function nicSummaryTable(s: DemoSummary): string {
  const out: string[] = [];
  for (const d of s.devices) {
    out.push(`device ${d.id} (${d.kind}): a virtual card per guest, ${d.switches} switches, ${d.unsafeSwitches} unsafe switches`);
    out.push(
      formatTable(
        ['guest', 'mac', 'tx', 'rx', 'tx MiB', 'rx MiB', 'dropped', 'spoofed', 'filtered', 'errors', 'verified'],
        d.perGuest.map((g) => {
          const n = g.nic ?? {};
          return [g.guest, g.mac ?? '-', n.txPackets ?? 0, n.rxPackets ?? 0, mib(n.txBytes ?? 0), mib(n.rxBytes ?? 0), n.dropped ?? 0, n.spoofed ?? 0, n.filtered ?? 0, g.errors, g.verified ? 'yes' : 'NO'];
        }),
        ['mac'],
      ),
    );
  }
  return out.join('\n');
}
