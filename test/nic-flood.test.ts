// Issue 13 acceptance: a flood of frames to one guest of a shared NE2000 (NIC router, default
// mode) fills only that guest's ring. The flooded guest never drains; its `dropped` counter
// grows, nobody else drops anything, and the other guests' frames delivered in a fixed number of
// exchange rounds are exactly those of an unflooded run (counts, not times: the frames/s ratio
// is the bench figure nic.floodRatio). Flooded from the wire (our model as the physical card) and
// by another guest through the supervisor (switch backend).

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { Supervisor } from '../src/supervisor.ts';
import { ethFrame, Ne2kDriver } from '../src/guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { exchangeRound, floodFrame, openFloodRig, type FloodGuest } from '../src/bench/nic/flood-rig.ts';

const ROUNDS = 40;
const FLOOD_PER_ROUND = 8; // 8 × 1514 bytes: the victim's 52-page ring is full after the first round

interface Outcome {
  delivered: Record<string, number>;
  dropped: Record<string, number>;
  victimDroppedAt10: number;
}

/** The rounds: optionally a flood to g1 first, then g2 <-> g3 exchange one frame each way and drain. */
async function wireRun(flood: boolean): Promise<Outcome> {
  const rig = await openFloodRig(3);
  try {
    const [victim, a, b] = rig.guests;
    const delivered: Record<string, number> = { g2: 0, g3: 0 };
    let victimDroppedAt10 = 0;
    for (let r = 0; r < ROUNDS; r++) {
      if (flood)
        for (let i = 0; i < FLOOD_PER_ROUND; i++) {
          rig.wire.inject(floodFrame(victim.mac, r * FLOOD_PER_ROUND + i));
          await rig.router.idle();
        }
      for (const [id, n] of await exchangeRound([[a, b]], r)) delivered[id] += n;
      if (r === 9) victimDroppedAt10 = rig.counters('g1').dropped;
    }
    const dropped = Object.fromEntries(rig.guests.map((g) => [g.id, rig.counters(g.id).dropped]));
    if (flood) expect(rig.counters('g1').rxPackets + rig.counters('g1').dropped).toBe(ROUNDS * FLOOD_PER_ROUND);
    return { delivered, dropped, victimDroppedAt10 };
  } finally {
    await rig.close();
  }
}

describe('a flood to one guest of a shared NE2000', () => {
  it('from the wire: only the flooded guest drops (its count grows); the others deliver exactly what they deliver unflooded', async () => {
    const quiet = await wireRun(false);
    const flooded = await wireRun(true);
    expect(quiet.delivered).toEqual({ g2: ROUNDS, g3: ROUNDS });
    expect(quiet.dropped).toEqual({ g1: 0, g2: 0, g3: 0 });
    expect(flooded.delivered).toEqual(quiet.delivered);
    expect(flooded.dropped.g2).toBe(0);
    expect(flooded.dropped.g3).toBe(0);
    expect(flooded.victimDroppedAt10).toBeGreaterThan(0);
    expect(flooded.dropped.g1).toBeGreaterThan(flooded.victimDroppedAt10); // it keeps growing
    // At most one ring's worth was stored: everything after that is dropped.
    expect(flooded.dropped.g1).toBeGreaterThanOrEqual(ROUNDS * FLOOD_PER_ROUND - 9);
  }, 60_000);

  it('by another guest through the supervisor (switch backend): the same', async () => {
    const run = async (flood: boolean) => {
      const names = ['g1', 'g2', 'g3', 'g4'];
      const config = parseConfig({
        devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'switch' } }],
        guests: names.map((name, i) => ({ name, grants: [{ device: 'nic0', mac: `52:54:00:12:34:0${i + 1}` }] })),
      });
      const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config) });
      await sup.start();
      try {
        const guests: FloodGuest[] = [];
        for (const id of names) {
          const port = sup.attachLocalGuest(id);
          const driver = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
          const mac = await driver.probe();
          await driver.init(mac);
          guests.push({ id, mac, driver });
        }
        const [victim, a, b, flooder] = guests;
        const delivered: Record<string, number> = { g2: 0, g3: 0 };
        const nic = () => Object.fromEntries(sup.stats().devices.find((d) => d.device === 'nic0')!.perGuest.map((g) => [g.guest, g.nic!]));
        let at10 = 0;
        for (let r = 0; r < ROUNDS; r++) {
          if (flood) for (let i = 0; i < FLOOD_PER_ROUND; i++) await flooder.driver.send(ethFrame(victim.mac, flooder.mac, 1500, r * FLOOD_PER_ROUND + i));
          for (const [id, n] of await exchangeRound([[a, b]], r)) delivered[id] += n;
          if (r === 9) at10 = nic().g1.dropped;
        }
        const end = nic();
        expect(end.g1.rxPackets + end.g1.dropped).toBe(flood ? ROUNDS * FLOOD_PER_ROUND : 0);
        expect(end.g4.txPackets).toBe(flood ? ROUNDS * FLOOD_PER_ROUND : 0);
        return { delivered, dropped: Object.fromEntries(names.map((n) => [n, end[n].dropped])), at10 };
      } finally {
        await sup.close();
      }
    };
    const quiet = await run(false);
    const flooded = await run(true);
    expect(quiet.delivered).toEqual({ g2: ROUNDS, g3: ROUNDS });
    expect(flooded.delivered).toEqual(quiet.delivered);
    expect(quiet.dropped).toEqual({ g1: 0, g2: 0, g3: 0, g4: 0 });
    expect({ ...flooded.dropped, g1: 0 }).toEqual({ g1: 0, g2: 0, g3: 0, g4: 0 });
    expect(flooded.at10).toBeGreaterThan(0);
    expect(flooded.dropped.g1).toBeGreaterThan(flooded.at10);
  }, 60_000);
});
