// Context save/replay (src/mux/engine-context.ts), called directly on machines/sim with the
// real SimDevice and on machines/ata with the real ATA model (whose replays are asynchronous).
import { describe, expect, it } from 'vitest';
import ata from '../machines/ata/index.ts';
import sim from '../machines/sim.ts';
import type { Access } from '../src/access.ts';
import { MemoryBackend } from '../src/backends/memory.ts';
import type { DevSize, Device } from '../src/device.ts';
import { AtaDevice, REGION_BMIDE, REGION_CMD } from '../src/devices/ata/index.ts';
import { SIM_IEN, SIM_KEY, SimDevice } from '../src/devices/sim.ts';
import type { GuestRec } from '../src/mux/engine-core.ts';
import { partsRig, settled, simRig, simW, type PartsRig } from './helpers/engine-parts.ts';

/** Grant `g` the way the arbiter does (owner, loading) and load its context. */
function grant<D extends Device>(rig: PartsRig<D>, g: GuestRec) {
  rig.core.owner = g;
  rig.core.replaying = rig.core.loading = true;
  return rig.parts.context.load(g, true);
}

/** The real SimDevice, its writes counted, and a write to `failOffset` failing while `failures` > 0. */
class CountingSim extends SimDevice {
  writes = 0;
  failures = 0;
  failOffset = -1;
  override write(region: number, offset: number, size: DevSize, value: number): void {
    this.writes++;
    if (offset === this.failOffset && this.failures > 0) {
      this.failures--;
      throw new Error('device refused the write');
    }
    super.write(region, offset, size, value);
  }
}

describe('engine context replay', () => {
  it("puts the incoming guest's own values on the device, and the reset values for a guest that never wrote them", async () => {
    const rig = simRig(['a', 'b']);
    const a = rig.guest('a');
    grant(rig, a);
    for (const acc of [simW(SIM_KEY, 0x11), simW(SIM_IEN, 1)]) await settled(rig.parts.access.runOwned(a, 0, acc.addr - 0x340, acc));
    grant(rig, rig.guest('b'));
    expect([rig.dev.read(0, SIM_KEY, 1), rig.dev.read(0, SIM_IEN, 1)]).toEqual([0, 0]);
    expect(rig.core.contextOf).toBe(rig.guest('b'));
    expect(rig.core.loading).toBe(false);
    grant(rig, a);
    expect([rig.dev.read(0, SIM_KEY, 1), rig.dev.read(0, SIM_IEN, 1)]).toEqual([0x11, 1]);
  });

  it('writes nothing the device already holds, and nothing at all when it still holds the guest\'s context', () => {
    const rig = partsRig(sim, (e) => new CountingSim(e, 8), ['a', 'b']);
    grant(rig, rig.guest('a')); // reset values: ADDR, KEY, IEN, DMA_ADDR are written once
    expect(rig.dev.writes).toBe(4);
    grant(rig, rig.guest('b')); // b never wrote one either: the device holds its values
    expect(rig.dev.writes).toBe(4);
    rig.core.contextOf = rig.guest('b');
    rig.guest('b').view.context.set('KEY', 7); // even a changed shadow: the device holds b's context
    grant(rig, rig.guest('b'));
    expect(rig.dev.writes).toBe(4);
  });

  it('runs the reset path and replays again when a replay fails once; cuts the guest off when it fails again', () => {
    const rig = partsRig(sim, (e) => new CountingSim(e, 8), ['a', 'b']);
    const a = rig.guest('a');
    rig.dev.failOffset = SIM_KEY;
    rig.dev.failures = 1;
    grant(rig, a);
    expect(rig.core.counters.replayFailures).toBe(1);
    expect(rig.core.counters.resets).toBe(1);
    expect(rig.core.owner).toBe(a);
    expect(rig.core.contextOf).toBe(a);
    expect(a.stats.faulted).toBe(false);

    const b = rig.guest('b');
    b.view.context.set('KEY', 0x22); // differs from what the device holds: it is written
    rig.dev.failures = 2;
    grant(rig, b);
    expect(rig.core.counters.replayFailures).toBe(3);
    expect(b.stats.faulted).toBe(true);
    expect(rig.core.owner).toBe(null);
    expect(rig.resets).toEqual([expect.stringMatching(/^b: context replay for b failed: device refused the write \(after a reset and a second replay\)/)]);
    expect(rig.core.loading).toBe(false);
  });

  it("replays the ATA context asynchronously: busy meanwhile, then the guest's PRD pointer and device register", async () => {
    const rig = partsRig(ata, (edges) => new AtaDevice(edges, new MemoryBackend(2048)), ['a', 'b'], { windowOf: (i) => ({ startLba: i * 1024, sectors: 1024 }) });
    const a = rig.guest('a');
    await grant(rig, a);
    const w = (region: number, offset: number, size: 1 | 4, value: number) =>
      rig.parts.access.runOwned(a, region, offset, { space: 'pio', addr: 0x1f0 + offset, size, dir: 'write', value } as Access);
    await w(REGION_BMIDE, 4, 4, 0x1234);
    await w(REGION_CMD, 6, 1, 0xe0);
    const pending = grant(rig, rig.guest('b'));
    expect(pending).toBeInstanceOf(Promise);
    expect(rig.core.busy).toBe(true);
    await pending;
    expect(rig.core.busy).toBe(false);
    expect(rig.dev.read(REGION_BMIDE, 4, 4)).toBe(0);
    expect(rig.dev.read(REGION_CMD, 6, 1) & 0xf0).toBe(0xa0);
    await grant(rig, a);
    expect(rig.dev.read(REGION_BMIDE, 4, 4)).toBe(0x1234);
    expect(rig.dev.read(REGION_CMD, 6, 1) & 0xf0).toBe(0xe0);
    expect(rig.core.counters.replayFailures).toBe(0);
  });
});
