// The owned access path (src/mux/engine-access.ts), called directly on machines/sim with the
// real SimDevice and on machines/ata with the real ATA model: translation for the guest's
// window, context shadowing, classification into chart steps, translated replies, string I/O.
import { describe, expect, it } from 'vitest';
import ata from '../machines/ata/index.ts';
import type { Access, Reply } from '../src/access.ts';
import { MemoryBackend } from '../src/backends/memory.ts';
import { settle } from '../src/check/virtual-time.ts';
import { AtaDevice, REGION_CMD, REGION_CTL } from '../src/devices/ata/index.ts';
import { SIM_ADDR, SIM_CMD, SIM_CMD_READ, SIM_DATA, SIM_KEY, SIM_SR_ERR, SIM_STATUS } from '../src/devices/sim.ts';
import { partsRig, settled, simR, simRig, simW } from './helpers/engine-parts.ts';

describe('engine owned access path', () => {
  it("translates the guest's block number into its window, shadows the context write and answers the guest's own value", async () => {
    const rig = simRig(['a', 'b']); // b's window starts at block 4
    const b = rig.guest('b');
    rig.core.owner = b;
    const run = (acc: Access) => rig.parts.access.runOwned(b, 0, acc.addr - 0x340, acc);
    await settled(run(simW(SIM_ADDR, 1)));
    expect(rig.dev.read(0, SIM_ADDR, 1)).toBe(5); // the device holds it shifted
    expect(b.view.context.get('ADDR')).toBe(5); // shadowed in the device's view
    expect(rig.core.deviceHolds.get('ADDR')).toBe(5);
    expect((await settled(run(simR(SIM_ADDR)))).value).toBe(1); // the guest sees its own value
  });

  it('steps the chart through a READ command and back to safe, with the data the device holds', async () => {
    const rig = simRig(['a']);
    const a = rig.guest('a');
    rig.core.owner = a;
    const run = (acc: Access): Reply => rig.parts.access.runOwned(a, 0, acc.addr - 0x340, acc) as Reply; // the sim device answers synchronously
    run(simW(SIM_KEY, 0x5a));
    run(simW(SIM_ADDR, 2));
    run(simW(SIM_CMD, SIM_CMD_READ));
    expect(rig.core.stateName()).toBe('cmd.busyRead');
    expect(rig.core.stepper.safe()).toBe(false);
    let polls = 0;
    while (rig.core.stateName() === 'cmd.busyRead' && polls < 10) (run(simR(SIM_STATUS)), polls++);
    expect(rig.core.stateName()).toBe('cmd.reading');
    const data = Array.from({ length: 8 }, () => Number(run(simR(SIM_DATA)).value));
    expect(data).toEqual(new Array(8).fill(0x5a)); // zeros xor the key
    run(simR(SIM_STATUS));
    expect(rig.core.stateName()).toBe('idle');
    expect(rig.core.stepper.safe()).toBe(true);
    expect(rig.core.counters.maxUnsafeNs).toBe(0); // virtual time did not move
  });

  it('answers a command outside the window itself: counted as a denial, the device and the chart untouched', async () => {
    const rig = simRig(['a']); // window: 4 blocks
    const a = rig.guest('a');
    rig.core.owner = a;
    const run = (acc: Access): Reply => rig.parts.access.runOwned(a, 0, acc.addr - 0x340, acc) as Reply;
    run(simW(SIM_ADDR, 9));
    const r = run(simW(SIM_CMD, SIM_CMD_READ));
    expect(a.stats.denials).toBe(1);
    expect(r.error).toBeUndefined(); // a solo device would take the command and fail it
    expect(rig.dev.idle()).toBe(true);
    expect(rig.core.stepper.safe()).toBe(true);
    expect(run(simR(SIM_STATUS)).value).toBe(SIM_SR_ERR);
    expect(rig.trace.some((t) => t.kind === 'denied' && /outside the 4-block window/.test(t.detail ?? ''))).toBe(true);
  });

  it('runs IDENTIFY on the ATA model: a string read of 256 words, the chart back in a safe state after the status read', async () => {
    const rig = partsRig(ata, (edges) => new AtaDevice(edges, new MemoryBackend(2048)), ['g'], { windowOf: () => ({ startLba: 0, sectors: 2048 }) });
    const g = rig.guest('g');
    rig.core.owner = g;
    const io = async (region: number, offset: number, acc: Omit<Access, 'space' | 'addr'>): Promise<Reply> =>
      await rig.parts.access.runOwned(g, region, offset, { space: 'pio', addr: 0x1f0 + offset, ...acc } as Access);
    await io(REGION_CMD, 6, { size: 1, dir: 'write', value: 0xa0 });
    await io(REGION_CMD, 7, { size: 1, dir: 'write', value: 0xec });
    expect(rig.core.stepper.safe()).toBe(false);
    let st = 0x80;
    for (let i = 0; i < 1000 && st & 0x80; i++) {
      st = Number((await io(REGION_CTL, 0, { size: 1, dir: 'read' })).value);
      await settle();
    }
    expect(st & 0x08).toBe(0x08); // DRQ
    const rep = await io(REGION_CMD, 0, { size: 2, dir: 'read', count: 256 });
    expect(rep.data?.length).toBe(512);
    const words = rep.data!; // a string read carries data
    const model = Array.from({ length: 20 }, (_, i) => String.fromCharCode(words[54 + 2 * i + 1], words[54 + 2 * i])).join('').trim();
    expect(model).toBe('MUXVISOR HARDDISK');
    await io(REGION_CMD, 7, { size: 1, dir: 'read' });
    expect(rig.core.stepper.safe()).toBe(true);
    expect(rig.core.counters.unsafeSwitches).toBe(0);
  });
});
