// DMA gating (src/mux/engine-dma.ts), called directly and through the real SimDevice's DMA
// commands on machines/sim: the owner's memory only, inside its bounds, everything else counted.
import { describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { settle } from '../src/check/virtual-time.ts';
import { SIM_ADDR, SIM_CMD, SIM_CMD_DMA_READ, SIM_DMA_ADDR, SIM_STATUS } from '../src/devices/sim.ts';
import { simR, simRig, simW } from './helpers/engine-parts.ts';

describe('engine DMA gate', () => {
  it("reads and writes the owner's memory inside its window", async () => {
    const rig = simRig(['a', 'b']);
    rig.core.owner = rig.guest('a');
    const mem = rig.mems.get('a')!;
    expect(await rig.parts.dma.write(mem.base + 8, new Uint8Array([1, 2, 3]))).toBe(true);
    expect(Array.from(mem.bytes.subarray(8, 11))).toEqual([1, 2, 3]);
    expect(Array.from((await rig.parts.dma.read(mem.base + 8, 3))!)).toEqual([1, 2, 3]);
    expect(rig.guest('a').stats.dmaRefused).toBe(0);
  });

  it("refuses another guest's memory, a range past the window's end, and any DMA with no owner; each counted and traced", async () => {
    const rig = simRig(['a', 'b']);
    const a = rig.guest('a');
    rig.core.owner = a;
    const bMem = rig.mems.get('b')!;
    expect(await rig.parts.dma.read(bMem.base, 4)).toBe(null);
    expect(await rig.parts.dma.write(rig.mems.get('a')!.base + 60, new Uint8Array(8))).toBe(false);
    expect(a.stats.dmaRefused).toBe(2);
    rig.core.owner = null;
    expect(await rig.parts.dma.write(bMem.base, new Uint8Array(1))).toBe(false);
    expect(rig.core.counters.dmaRefusedNoOwner).toBe(1);
    expect(rig.trace.filter((t) => t.kind === 'dma-refused').map((t) => t.detail)).toEqual([
      `DMA read 0x${bMem.base.toString(16)}+4 outside a's DMA window`,
      `DMA write 0x${(rig.mems.get('a')!.base + 60).toString(16)}+8 outside a's DMA window`,
      `DMA write 0x${bMem.base.toString(16)}+1 outside any owner`,
    ]);
    expect(Array.from(bMem.bytes.subarray(0, 4))).toEqual([0, 0, 0, 0]);
  });

  it("lets the device's DMA command fill the owner's memory, and not another guest's", async () => {
    const rig = simRig(['a', 'b']);
    const a = rig.guest('a');
    rig.core.owner = a;
    const [aMem, bMem] = [rig.mems.get('a')!, rig.mems.get('b')!];
    aMem.bytes.fill(0xee);
    bMem.bytes.fill(0xee);
    const run = (acc: Access) => rig.parts.access.runOwned(a, 0, acc.addr - 0x340, acc);
    const dmaRead = async (busAddr: number) => {
      run(simW(SIM_DMA_ADDR, busAddr, 4));
      run(simW(SIM_ADDR, 0));
      run(simW(SIM_CMD, SIM_CMD_DMA_READ));
      for (let i = 0; i < 20 && !rig.core.stepper.safe(); i++) {
        await settle();
        run(simR(SIM_STATUS));
      }
    };
    await dmaRead(aMem.base);
    expect(Array.from(aMem.bytes.subarray(0, 8))).toEqual(new Array(8).fill(0)); // block 0 is zeros
    expect(a.stats.dmaRefused).toBe(0);
    await dmaRead(bMem.base);
    expect(a.stats.dmaRefused).toBe(1);
    expect(Array.from(bMem.bytes.subarray(0, 8))).toEqual(new Array(8).fill(0xee));
  });
});
