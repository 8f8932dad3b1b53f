// `muxvisor demo --device nic --guests 4 --seconds 2 --json` with the switch, udp and tap wires and QEMU's card:
// the disk demo's summary shape plus each guest's MAC and router counters; every guest
// verified (it read every frame sent to it, intact and in order), errors 0, no switches.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { missing, titled } from './helpers/requires.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'bin', 'muxvisor.mjs');

interface NicGuest {
  guest: string;
  ops: number;
  bytes: number;
  errors: number;
  verified: boolean;
  mac: string;
  nic: Record<string, number>;
}

async function demo(backend: string): Promise<{ devices: { id: string; kind: string; switches: number; unsafeSwitches: number; resets: number; perGuest: NicGuest[] }[] }> {
  const { stdout } = await run(process.execPath, [CLI, '--log-level', 'warn', 'demo', '--device', 'nic', '--guests', '4', '--seconds', '2', '--backend', backend, '--json'], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

function expectVerified(s: Awaited<ReturnType<typeof demo>>): void {
  expect(Object.keys(s)).toEqual(['devices']);
  const d = s.devices[0];
  expect(Object.keys(d).sort()).toEqual(['id', 'kind', 'perGuest', 'resets', 'switches', 'unsafeSwitches']);
  expect(d).toMatchObject({ id: 'nic0', kind: 'ne2k', switches: 0, unsafeSwitches: 0, resets: 0 });
  expect(d.perGuest.map((g) => [g.guest, g.mac])).toEqual([1, 2, 3, 4].map((i) => [`guest${i}`, `52:54:00:12:34:0${i}`]));
  for (const g of d.perGuest) {
    expect(Object.keys(g).sort()).toEqual(['bytes', 'errors', 'guest', 'mac', 'nic', 'ops', 'verified']);
    expect(g.errors, g.guest).toBe(0);
    expect(g.verified, g.guest).toBe(true);
    expect(g.nic.txPackets, g.guest).toBeGreaterThan(10);
    expect(g.nic.rxPackets, g.guest).toBeGreaterThan(10);
    expect(g.nic.spoofed).toBe(0);
    expect(g.ops).toBeGreaterThan(0);
  }
}

describe('the NIC demo', () => {
  it('--backend switch: 4 guests exchange frames and broadcasts, all verified', async () => {
    const s = await demo('switch');
    expectVerified(s);
    // Every guest's frames went to the others: what they received adds up to what was sent to them.
    const tx = s.devices[0].perGuest.reduce((a, g) => a + g.nic.txPackets, 0);
    const rx = s.devices[0].perGuest.reduce((a, g) => a + g.nic.rxPackets + g.nic.dropped, 0);
    expect(rx).toBeGreaterThanOrEqual(tx);
  }, 60_000);

  it('--backend udp: also through the wire to an echoing peer on loopback', async () => {
    expectVerified(await demo('udp'));
  }, 60_000);

  it.skipIf(missing('netns'))(titled('--backend tap: also pings to the Linux host of a network namespace behind a TAP', missing('netns')), async () => {
    const s = await demo('tap');
    expectVerified(s);
    // Each guest's pings were answered: more frames in than the other guests sent it alone.
    for (const g of s.devices[0].perGuest) expect(g.nic.rxPackets).toBeGreaterThan(0);
  }, 60_000);

  it.skipIf(missing('qemu'))(titled('--backend qemu: QEMU\'s ne2k_pci as the physical card, its netdev to the echoing peer', missing('qemu')), async () => {
    const s = await demo('qemu');
    expect(s.devices[0].kind).toBe('qemu-ne2k');
    expectVerified({ devices: [{ ...s.devices[0], kind: 'ne2k' }] });
  }, 60_000);

  it('a disk backend with --device nic is refused, naming the choices', async () => {
    await expect(run(process.execPath, [CLI, 'demo', '--device', 'nic', '--backend', 'nbd'])).rejects.toMatchObject({ stderr: expect.stringContaining('--device nic takes switch or udp or tap or qemu') });
  });
});
