// The shared-memory access slot (src/channel/slot.ts, native/trap/slot.c) against the
// real supervisor: a trapped driver served through the slot gets the same answers as over
// the socket (ports, string I/O, MMIO, IRQs through the UIO fd, DMA); accesses stalled by
// the ATA MUX while another guest owns the disk are answered after the stall; and the
// socket path takes over when either side turns the capability off.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import ataMux from '../machines/ata/index.ts';
import roundRobin from '../policies/round-robin.ts';
import { parseConfig } from '../src/config/load.ts';
import type { DeviceRouter } from '../src/guest-link.ts';
import { createMux, type MuxStats } from '../src/mux/engine.ts';
import { Supervisor, type SupervisorOptions } from '../src/supervisor.ts';
import { runTrapped, TRAP_BUILD_DIR } from '../src/trap/user.ts';
import { buildTrap } from './helpers/trap-build.ts';

/**
 * Holds each guest's first access to the device until all `guests` have made one. Drivers
 * started together may still run one after the other (a loaded machine starts one process
 * late, after the other has finished and left a free device): then nobody would stall.
 */
function meetAtFirstAccess(router: DeviceRouter, guests: number): DeviceRouter {
  const arrived = new Set<string>();
  let allArrived = (): void => undefined;
  const met = new Promise<void>((resolve) => (allArrived = resolve));
  return {
    deviceId: router.deviceId,
    edges: router.edges,
    bind: (device) => router.bind(device),
    attach: (guest, options) => router.attach(guest, options),
    detach: (guestId, reason) => router.detach(guestId, reason),
    access: (guestId, region, offset, acc) => {
      if (arrived.has(guestId)) return router.access(guestId, region, offset, acc);
      arrived.add(guestId);
      if (arrived.size === guests) allArrived();
      return met.then(() => router.access(guestId, region, offset, acc));
    },
    stats: () => router.stats(),
    close: () => router.close(),
  };
}

describe('the shared-memory access slot with the supervisor', () => {
  let dir = '';
  let sup: Supervisor | null = null;
  beforeAll(() => buildTrap());
  afterEach(async () => {
    await sup?.close();
    sup = null;
    rmSync(dir, { recursive: true, force: true });
  });

  async function scratch(opts: Partial<SupervisorOptions> = {}): Promise<string> {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-slot-'));
    const socket = join(dir, 'sock');
    sup = new Supervisor({
      config: parseConfig({ socket, devices: [{ id: 'scr', kind: 'scratch' }], guests: [{ name: 'slotdrv', grants: [{ device: 'scr' }] }] }),
      ...opts,
    });
    await sup.listen();
    return socket;
  }

  async function runScratch(socket: string, slot?: boolean | 'always'): Promise<void> {
    const r = await runTrapped(`${TRAP_BUILD_DIR}/test-scratch`, [], { socket, guest: 'slotdrv', ...(slot === undefined ? {} : { slot }) });
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toContain('ok DMA fill reached our memory');
    expect(r.code).toBe(0);
  }

  it('serves every access of a driver through the slot, with the right values and its IRQs', async () => {
    const socket = await scratch();
    await runScratch(socket, 'always');
    const st = sup!.stats();
    expect(st.channel.slotSessions).toBe(1);
    expect(st.channel.slotAccesses).toBe(st.guests[0].accesses);
    expect(st.channel.slotAccesses).toBeGreaterThan(0);
    expect(st.channel.slotPeerFrames ?? 0).toBe(0);
    expect(st.deviceMetrics.scr).toMatchObject({ badRegister: 0, dmaRefused: 0 });
    expect(st.protocolErrors).toEqual({});
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith('muxvisor-slot-') && f.endsWith('-slotdrv'))).toEqual([]); // a memfd: no file is ever made
  });

  it('by default takes the slot while the supervisor polls and `acc` frames otherwise, each access once', async () => {
    const socket = await scratch();
    await runScratch(socket);
    const st = sup!.stats();
    expect(st.channel.slotSessions).toBe(1);
    // Which way each access goes depends on timing (and on whether the cores are contended).
    expect((st.channel.slotAccesses ?? 0) + (st.channel.slotPeerFrames ?? 0)).toBe(st.guests[0].accesses);
    expect(st.channel.slotPeerFrames).toBeGreaterThan(0); // the first: nobody polls before it
  });

  it('falls back to the socket when the program opts out (MUXVISOR_SLOT=0)', async () => {
    const socket = await scratch();
    await runScratch(socket, false);
    const st = sup!.stats();
    expect(st.channel.slotSessions ?? 0).toBe(0);
    expect(st.channel.slotAccesses ?? 0).toBe(0);
    expect(st.guests[0].accesses).toBeGreaterThan(0);
  });

  it('falls back to the socket when the supervisor does not accept the slot', async () => {
    const socket = await scratch({ slot: false });
    await runScratch(socket);
    const st = sup!.stats();
    expect(st.channel.slotSessions ?? 0).toBe(0);
    expect(st.channel.slotAccesses ?? 0).toBe(0);
    expect(st.guests[0].accesses).toBeGreaterThan(0);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith('muxvisor-slot-') && f.endsWith('-slotdrv'))).toEqual([]);
  });

  it('serves with no poll window at all (every access rings the doorbell)', async () => {
    const socket = await scratch({ slotPollUs: 0 });
    await runScratch(socket, 'always');
    const st = sup!.stats();
    expect(st.channel.slotAccesses).toBe(st.guests[0].accesses);
    expect(st.channel.slotRings).toBeGreaterThan(0);
  });

  it('answers accesses stalled by the MUX after the stall: two PIO drivers with IRQs share one disk', async () => {
    dir = mkdtempSync(join(tmpdir(), 'muxtrap-slot-'));
    const image = join(dir, 'disk.img');
    const window = 1024;
    writeFileSync(image, Buffer.alloc((1 + 2 * window) * 512));
    const socket = join(dir, 'sock');
    const guests = ['g1', 'g2'].map((name, i) => ({ name, grants: [{ device: 'ide', window: { startLba: 1 + i * window, sectors: window } }] }));
    const config = parseConfig({ socket, devices: [{ id: 'ide', kind: 'ata', backend: { type: 'file', path: image } }], guests });
    // Both drivers reach the disk before either is served: the second one to come stalls.
    const createRouter = (id: string) => meetAtFirstAccess(createMux(ataMux, { deviceId: id, policy: roundRobin({ quantumNs: 200_000 }) }), 2);
    sup = new Supervisor({ config, createRouter });
    await sup.listen();
    const runs = await Promise.all(
      ['g1', 'g2'].map((guest, i) => runTrapped(`${TRAP_BUILD_DIR}/ata-pio`, ['--sectors', '32', '--batch', '4', '--seed', String(i + 1)], { socket, guest, slot: 'always' })),
    );
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`${window} sectors; wrote and read 32 sectors .* [1-9][0-9]* interrupts: verified`));
      expect(r.code).toBe(0);
    }
    const st = sup.stats();
    const mux = st.devices[0] as MuxStats;
    expect(mux.unsafeSwitches).toBe(0);
    expect(mux.perGuest.reduce((n, g) => n + g.stalls, 0)).toBeGreaterThan(0);
    expect(st.channel.slotSessions).toBe(2);
    expect(st.channel.slotAccesses).toBe(st.guests.reduce((n, g) => n + g.accesses, 0));
  });
});
