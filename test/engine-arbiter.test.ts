// The arbiter part (src/mux/engine-arbiter.ts) on machines/sim and the real SimDevice, called
// directly: who gets the device, in which order, when the policy is asked, what a policy
// failure does.
import { describe, expect, it } from 'vitest';
import roundRobin from '../policies/round-robin.ts';
import { settle } from '../src/check/virtual-time.ts';
import { SIM_ADDR, SIM_CMD, SIM_CMD_READ, SIM_DATA, SIM_KEY, SIM_STATUS } from '../src/devices/sim.ts';
import type { Reply } from '../src/access.ts';
import type { Policy } from '../src/mux/policy.ts';
import { simR, simRig, simW, type PartsRig } from './helpers/engine-parts.ts';
import type { SimDevice } from '../src/devices/sim.ts';

/** `id` holds `acc`; the promise settles when it ran. */
function hold(rig: PartsRig<SimDevice>, id: string, acc: ReturnType<typeof simW>): Promise<Reply> {
  return new Promise((resolve) => rig.parts.arbiter.hold(rig.guest(id), { region: 0, offset: acc.addr - 0x340, acc, resolve }));
}

/** The owner starts a READ of block 0 and stays in the unsafe part of it. */
function startRead(rig: PartsRig<SimDevice>, id: string): void {
  const run = (acc: ReturnType<typeof simW>) => rig.parts.access.runOwned(rig.guest(id), 0, acc.addr - 0x340, acc);
  run(simW(SIM_ADDR, 0));
  run(simW(SIM_CMD, SIM_CMD_READ));
}

/** The owner finishes its READ: status polls, 8 data bytes, the final status. */
function finishRead(rig: PartsRig<SimDevice>, id: string): void {
  const run = (acc: ReturnType<typeof simW>) => rig.parts.access.runOwned(rig.guest(id), 0, acc.addr - 0x340, acc);
  for (let i = 0; i < 3; i++) run(simR(SIM_STATUS));
  for (let i = 0; i < 8; i++) run(simR(SIM_DATA));
  run(simR(SIM_STATUS));
}

const grants = (rig: PartsRig<SimDevice>) => rig.trace.filter((t) => t.kind === 'grant').map((t) => t.guest);

describe('engine arbiter', () => {
  it('holds others while the owner is mid-command, then grants them longest-waiting first, each running its held access', async () => {
    const rig = simRig(['a', 'b', 'c']);
    const { core, parts } = rig;
    parts.arbiter.switchTo(rig.guest('a'));
    expect(core.owner?.link.id).toBe('a');
    startRead(rig, 'a');
    expect(core.stepper.safe()).toBe(false);
    const c = hold(rig, 'c', simW(SIM_KEY, 0x33));
    const b = hold(rig, 'b', simW(SIM_KEY, 0x44));
    expect(core.waiting.toArray().map((g) => g.link.id)).toEqual(['c', 'b']);
    expect(rig.guest('b').stats.stalls).toBe(1);
    expect(core.owner?.link.id).toBe('a'); // not switched mid-command
    finishRead(rig, 'a');
    await Promise.all([c, b]);
    expect(grants(rig)).toEqual(['a', 'c', 'b']);
    expect(core.counters.unsafeSwitches).toBe(0);
    expect(core.waiting.length).toBe(0);
    // Each ran its own write: the device holds the last owner's key, each guest's context its own.
    expect(rig.dev.read(0, SIM_KEY, 1)).toBe(0x44);
    expect(rig.guest('c').view.context.get('KEY')).toBe(0x33);
    expect(rig.guest('a').stats.usedNs).toBeGreaterThanOrEqual(0);
    expect(rig.guest('a').stats.grants).toBe(1);
  });

  it('lets an idle owner keep the device for its quantum and asks the policy again after recheckNs', async () => {
    const rig = simRig(['a', 'b'], roundRobin({ quantumNs: 2_000_000 }));
    const { core, parts, vt } = rig;
    parts.arbiter.switchTo(rig.guest('a'));
    const b = hold(rig, 'b', simR(SIM_KEY));
    expect(core.owner?.link.id).toBe('a'); // within its quantum
    expect(core.waiting.toArray().map((g) => g.link.id)).toEqual(['b']);
    // Rechecks fire every 500 µs; the fourth one finds the quantum used up.
    let fired = 0;
    while (core.owner?.link.id === 'a' && vt.fireNext()) fired++;
    expect(core.owner?.link.id).toBe('b');
    expect(fired).toBe(4);
    expect(vt.now).toBe(2_000_000);
    expect((await b).value).toBe(0);
    expect(rig.guest('a').stats.usedNs).toBe(2_000_000);
  });

  it('counts a policy that names nobody waiting and hands the device to the longest-waiting guest', async () => {
    const liar: Policy = { name: 'liar', fairness: 'none', pick: () => 'nobody' };
    const rig = simRig(['a', 'b', 'c'], liar);
    const { core, parts } = rig;
    parts.arbiter.switchTo(rig.guest('a'));
    startRead(rig, 'a');
    const b = hold(rig, 'b', simR(SIM_KEY));
    const c = hold(rig, 'c', simR(SIM_KEY));
    finishRead(rig, 'a');
    await settle();
    await Promise.all([b, c]);
    expect(grants(rig)).toEqual(['a', 'b', 'c']);
    expect(core.counters.policyErrors).toBeGreaterThanOrEqual(2);
    expect(rig.trace.some((t) => t.kind === 'policy-error' && /nobody.*neither the owner nor waiting/.test(t.detail ?? ''))).toBe(true);
  });

  it('release adds the device time of the hold and puts a guest with held accesses back in line', () => {
    const rig = simRig(['a', 'b']);
    const { core, parts, vt } = rig;
    parts.arbiter.switchTo(rig.guest('a'));
    vt.advance(1234);
    const a = rig.guest('a');
    a.queue.push({ region: 0, offset: SIM_KEY, acc: simR(SIM_KEY), resolve: () => {} });
    parts.arbiter.release(a);
    expect(a.stats.usedNs).toBe(1234);
    expect(core.waiting.toArray()).toEqual([a]);
    parts.arbiter.removeWaiting(a);
    expect(core.waiting.length).toBe(0);
    expect(a.waitingSince).toBe(-1);
  });
});
