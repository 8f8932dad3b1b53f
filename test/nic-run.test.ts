// `muxvisor run` with a config of scripted guests on a shared NE2000 (built-in driver `ne2k`):
// each guest's outcome, and its per-guest NIC counters in the `stopped` statistics.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');

describe('muxvisor run with NE2000 guests', () => {
  it('two scripted guests exchange frames; run --json reports their outcomes and nic counters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-nicrun-'));
    try {
      const file = join(dir, 'nic.json');
      const macs = ['52:54:00:12:34:01', '52:54:00:12:34:02'];
      writeFileSync(
        file,
        JSON.stringify({
          socket: join(dir, 'mv.sock'),
          devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'switch' } }],
          guests: macs.map((mac, i) => ({
            name: `g${i + 1}`,
            run: { type: 'scripted', driver: 'ne2k', options: { seconds: 1, peers: [macs[1 - i]] } },
            grants: [{ device: 'nic0', mac }],
          })),
        }),
      );
      const r = spawnSync(process.execPath, [CLI, '--json', '--log-level', 'warn', 'run', file, '--exit-when-done'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      const guests = events.filter((e) => e.event === 'guest');
      expect(guests.map((g) => [g.guest, g.ok])).toEqual(expect.arrayContaining([['g1', true], ['g2', true]]));
      const stopped = events.find((e) => e.event === 'stopped');
      const nic = stopped.stats.devices.find((d: { device: string }) => d.device === 'nic0');
      expect(nic.switches).toBe(0);
      for (const g of nic.perGuest) {
        expect(g.nic.txPackets, g.guest).toBeGreaterThan(0);
        expect(g.nic.rxPackets, g.guest).toBeGreaterThan(0);
        expect(g.nic.spoofed).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
