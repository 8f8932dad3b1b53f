// The reset path and cutting an owner off (src/mux/engine-reset.ts), called directly on
// machines/sim (reset writes) and machines/ata (writes, then a hard reset) with real devices.
import { describe, expect, it } from 'vitest';
import ata from '../machines/ata/index.ts';
import type { Access, Reply } from '../src/access.ts';
import { MemoryBackend } from '../src/backends/memory.ts';
import { AtaDevice, REGION_CMD, REGION_CTL } from '../src/devices/ata/index.ts';
import { SIM_ADDR, SIM_CMD, SIM_CMD_READ, SIM_KEY, SIM_STATUS } from '../src/devices/sim.ts';
import { partsRig, simR, simRig, simW } from './helpers/engine-parts.ts';

describe('engine reset path', () => {
  it('brings the sim device and the chart back from mid-command; the device then holds nobody\'s context', () => {
    const rig = simRig(['a']);
    const a = rig.guest('a');
    rig.core.owner = a;
    rig.core.contextOf = a;
    const run = (acc: Access) => rig.parts.access.runOwned(a, 0, acc.addr - 0x340, acc);
    run(simW(SIM_KEY, 3));
    run(simW(SIM_ADDR, 1));
    run(simW(SIM_CMD, SIM_CMD_READ));
    run(simR(SIM_STATUS));
    expect(rig.dev.idle()).toBe(false);
    expect(rig.parts.reset.run('test')).toBeUndefined(); // the sim device answers synchronously
    expect(rig.dev.idle()).toBe(true);
    expect(rig.core.stepper.safe()).toBe(true);
    expect(rig.core.contextOf).toBe(null);
    expect(rig.core.deviceHolds.size).toBe(0);
    expect(rig.core.counters.resets).toBe(1);
    expect(rig.trace.at(-1)).toMatchObject({ kind: 'reset', detail: 'test', safe: true });
  });

  it("cutting off refuses the guest's held accesses, marks it faulted, releases the device and tells the guest", () => {
    const rig = simRig(['a', 'b']);
    const a = rig.guest('a');
    rig.core.owner = a;
    const answers: Reply[] = [];
    a.queue.push({ region: 0, offset: SIM_KEY, acc: simR(SIM_KEY), resolve: (r) => answers.push(r) });
    rig.parts.reset.cutOff(a, 'because');
    expect(answers).toHaveLength(1);
    expect(answers[0].error).toBe(`guest a faulted on dev0: because`);
    expect(answers[0].value).toBe(0xff);
    expect(a.stats).toMatchObject({ faulted: true, faults: 1, resets: 1 });
    expect(rig.core.owner).toBe(null);
    expect(rig.core.waiting.length).toBe(0);
    expect(rig.resets).toEqual(['a: because']);
  });

  it("resets the ATA model hard, asynchronously: busy until done, then the chart restarted and the drive ready", async () => {
    const rig = partsRig(ata, (edges) => new AtaDevice(edges, new MemoryBackend(2048)), ['g'], { windowOf: () => ({ startLba: 0, sectors: 2048 }) });
    const g = rig.guest('g');
    rig.core.owner = g;
    await rig.parts.access.runOwned(g, REGION_CMD, 6, { space: 'pio', addr: 0x1f6, size: 1, dir: 'write', value: 0xe0 });
    await rig.parts.access.runOwned(g, REGION_CMD, 7, { space: 'pio', addr: 0x1f7, size: 1, dir: 'write', value: 0xec }); // IDENTIFY
    expect(rig.core.stepper.safe()).toBe(false);
    const r = rig.parts.reset.run('hung');
    if (r instanceof Promise) {
      expect(rig.core.busy).toBe(true);
      await r;
    }
    expect(rig.core.busy).toBe(false);
    expect(rig.core.stepper.safe()).toBe(true);
    expect(rig.dev.read(REGION_CTL, 0, 1) & 0xc0).toBe(0x40); // DRDY, not BSY
    expect(rig.dev.read(REGION_CMD, 6, 1) & 0x10).toBe(0); // device 0 selected again
    expect(rig.core.counters.resets).toBe(1);
  });
});
