// The MUX engine's parts over one core, without the coordinator's DeviceRouter calls: a real
// machine (machines/sim or machines/ata), a real device built with the parts' edges, virtual
// time, guests with real memories. The part tests call a part directly and look at the core.

import type { Access, Reply } from '../../src/access.ts';
import type { Device, DeviceEdges } from '../../src/device.ts';
import type { GuestLink } from '../../src/guest-link.ts';
import sim from '../../machines/sim.ts';
import roundRobin from '../../policies/round-robin.ts';
import { ArrayGuestMemory } from '../../src/check/guest-memory.ts';
import { settle, VirtualTime } from '../../src/check/virtual-time.ts';
import { SimDevice } from '../../src/devices/sim.ts';
import type { MuxDefinition } from '../../src/mux/define.ts';
import { EngineCore, type GuestRec, type MuxTrace } from '../../src/mux/engine-core.ts';
import { wireParts, type WiredParts } from '../../src/mux/engine.ts';
import type { Policy } from '../../src/mux/policy.ts';

export interface PartsRig<D extends Device> {
  vt: VirtualTime;
  core: EngineCore;
  parts: WiredParts;
  dev: D;
  trace: MuxTrace[];
  /** Virtual IRQ changes each guest's link saw: [guest, level]. */
  irqs: Array<[string, boolean]>;
  resets: string[];
  mems: Map<string, ArrayGuestMemory>;
  guest(id: string): GuestRec;
}

export function partsRig<D extends Device>(
  def: MuxDefinition,
  makeDevice: (edges: DeviceEdges) => D,
  ids: string[],
  opts: { policy?: Policy; windowOf?: (i: number) => { startLba: number; sectors: number } } = {},
): PartsRig<D> {
  const vt = new VirtualTime();
  const trace: MuxTrace[] = [];
  const core = new EngineCore(def, opts.policy ?? roundRobin({ quantumNs: 0 }), {
    deviceId: 'dev0',
    clock: vt.clock,
    timers: vt.timersApi,
    observer: (e) => trace.push(e),
  });
  const parts = wireParts(core);
  const dev = makeDevice({
    irq: { set: (level) => parts.irq.onDeviceIrq(level) },
    dma: { read: (a, n) => parts.dma.read(a, n), write: (a, d) => parts.dma.write(a, d) },
    clock: core.clock,
  });
  core.bind(dev);
  const irqs: Array<[string, boolean]> = [];
  const resets: string[] = [];
  const mems = new Map<string, ArrayGuestMemory>();
  ids.forEach((id, i) => {
    const mem = new ArrayGuestMemory(0x10000 * (i + 1), 64);
    mems.set(id, mem);
    const link: GuestLink = {
      id,
      weight: 1,
      priority: 0,
      deadlineNs: Infinity,
      memory: mem,
      setIrq: (_line, level) => irqs.push([id, level]),
      notifyReset: (_dev, reason) => resets.push(`${id}: ${reason}`),
    };
    core.addGuest(link, { window: opts.windowOf ? opts.windowOf(i) : { startLba: 4 * i, sectors: 4 } });
  });
  return { vt, core, parts, dev, trace, irqs, resets, mems, guest: (id) => core.guests.get(id)! };
}

/** machines/sim on a SimDevice of 4 blocks per guest. */
export function simRig(ids: string[], policy?: Policy): PartsRig<SimDevice> {
  return partsRig(sim, (edges) => new SimDevice(edges, 4 * ids.length), ids, { policy });
}

export const simW = (offset: number, value: number, size: 1 | 4 = 1): Access => ({ space: 'pio', addr: 0x340 + offset, size, dir: 'write', value });
export const simR = (offset: number, size: 1 | 4 = 1, count?: number): Access => ({ space: 'pio', addr: 0x340 + offset, size, dir: 'read', count });

/** A reply that may be a promise, once every queued callback ran; throws if still pending. */
export async function settled(x: Reply | Promise<Reply>): Promise<Reply> {
  let out: Reply | undefined;
  void Promise.resolve(x).then((v) => (out = v));
  await settle();
  if (!out) throw new Error('access still pending');
  return out;
}
