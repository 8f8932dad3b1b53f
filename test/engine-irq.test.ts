// IRQ routing (src/mux/engine-irq.ts), called directly on machines/sim (reraiseIrq) with the
// real SimDevice raising its line: the owner only, stale lines, re-raised lines, replays.
import { describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { SIM_ADDR, SIM_CMD, SIM_CMD_READ, SIM_IEN, SIM_STATUS } from '../src/devices/sim.ts';
import type { GuestRec } from '../src/mux/engine-core.ts';
import { simR, simRig, simW, type PartsRig } from './helpers/engine-parts.ts';
import type { SimDevice } from '../src/devices/sim.ts';

/** Hand the device to `g` as the arbiter and the context loader do. */
function grant(rig: PartsRig<SimDevice>, g: GuestRec): void {
  if (rig.core.owner) rig.parts.irq.released(rig.core.owner);
  rig.core.owner = g;
  rig.parts.irq.granted(g);
}

describe('engine IRQ routing', () => {
  it("raises the owner's virtual line when the device's rises, and nobody else's", () => {
    const rig = simRig(['a', 'b']);
    const a = rig.guest('a');
    grant(rig, a);
    const run = (acc: Access) => rig.parts.access.runOwned(a, 0, acc.addr - 0x340, acc);
    run(simW(SIM_IEN, 1));
    run(simW(SIM_ADDR, 0));
    run(simW(SIM_CMD, SIM_CMD_READ));
    for (let i = 0; i < 3 && rig.irqs.length === 0; i++) run(simR(SIM_STATUS)); // the busy phase ends: the line rises
    expect(rig.irqs).toEqual([['a', true]]);
    expect(rig.core.irqRaisedBy).toBe(a);
  });

  it("keeps a line already up from the next owner and raises it again to the guest whose interrupt it was", () => {
    const rig = simRig(['a', 'b']);
    const [a, b] = [rig.guest('a'), rig.guest('b')];
    grant(rig, a);
    rig.parts.irq.onDeviceIrq(true); // a's command completes
    expect(rig.irqs).toEqual([['a', true]]);
    grant(rig, b); // the line is still up: a's interrupt, stale for b
    expect(a.irqPendingAtRelease).toBe(true);
    expect(rig.irqs).toEqual([['a', true], ['a', false]]);
    expect(rig.core.staleIrq).toBe(true);
    rig.parts.irq.onDeviceIrq(false);
    rig.parts.irq.onDeviceIrq(true); // b's own interrupt now
    expect(rig.irqs.slice(2)).toEqual([['b', true]]);
    rig.parts.irq.onDeviceIrq(false);
    grant(rig, a); // a regains the device with its interrupt pending: raised again
    expect(rig.irqs.slice(3)).toEqual([['b', false], ['a', true]]);
    expect(a.reraised).toBe(true);
    rig.parts.irq.ownerAccess(a); // its ISR runs: the line follows the device (low) again
    expect(rig.irqs.slice(5)).toEqual([['a', false]]);
    expect(a.reraised).toBe(false);
  });

  it('delivers no edge during a context replay, and a line that rose then is nobody\'s', () => {
    const rig = simRig(['a']);
    const a = rig.guest('a');
    rig.core.owner = a;
    rig.core.replaying = true;
    rig.parts.irq.onDeviceIrq(true);
    expect(rig.irqs).toEqual([]);
    expect(rig.core.irqRaisedBy).toBe(null);
    rig.core.replaying = false;
    rig.parts.irq.granted(a);
    expect(rig.irqs).toEqual([]); // up before the grant: stale
    rig.parts.irq.released(a);
    expect(a.irqPendingAtRelease).toBe(false);
  });

  it('logs a guest link whose setIrq throws and goes on', () => {
    const rig = simRig(['a']);
    const a = rig.guest('a');
    (a.link as { setIrq: (l: number, v: boolean) => void }).setIrq = () => {
      throw new Error('gone');
    };
    rig.core.owner = a;
    expect(() => rig.parts.irq.onDeviceIrq(true)).not.toThrow();
    expect(a.vIrq).toBe(true);
  });
});
