// The harness of the NE2000 differential tests: the same async script runs on our model
// (a LoopWire) and on QEMU's ne2k_pci (src/devices/qemu-ne2k.ts), each read recorded as an
// observation; injected frames reach QEMU through its UDP netdev, and the QEMU side waits
// until its CURR reaches what the model's did, so both rings saw the same frames.

import { expect } from 'vitest';
import type { Device, DeviceEdges } from '../../src/device.ts';
import { LoopWire, Ne2kDevice, ne2kRegs as R } from '../../src/devices/ne2k/index.ts';
import { QemuNe2kDevice } from '../../src/devices/qemu-ne2k.ts';
import { Ne2kDriver } from './ne2k-driver.ts';

export const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

export interface Side {
  dev: Device;
  drv: Ne2kDriver;
  irq: { level: boolean };
  sent: () => Uint8Array[];
  /** Deliver frames; resolves once the card has taken them (QEMU: CURR reached `expectCurr`). */
  inject: (frames: Uint8Array[], expectCurr: number | null) => Promise<void>;
  close: () => Promise<void>;
}

export function edgesWith(irq: { level: boolean }): DeviceEdges {
  return { irq: { set: (l) => (irq.level = l) }, dma: { read: async () => null, write: async () => false }, clock: () => 0 };
}

export function modelSide(): Side {
  const irq = { level: false };
  const wire = new LoopWire();
  const dev = new Ne2kDevice(edgesWith(irq), wire, { mac: MAC });
  return {
    dev, irq, drv: new Ne2kDriver(dev), sent: () => wire.sent,
    inject: async (frames) => void frames.forEach((f) => wire.inject(f)),
    close: async () => {},
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function qemuSide(): Promise<Side> {
  const irq = { level: false };
  const sent: Uint8Array[] = [];
  let receiver: ((f: Uint8Array) => unknown) | null = null;
  const wire = { send: (f: Uint8Array) => void sent.push(f.slice()), attach: (r: ((f: Uint8Array) => never) | null) => void (receiver = r) };
  const dev = await QemuNe2kDevice.open(edgesWith(irq), wire, { mac: '52:54:00:12:34:56' });
  const rd = (o: number) => Promise.resolve(dev.read(0, o, 1));
  const wr = (o: number, v: number) => Promise.resolve(dev.write(0, o, 1, v));
  return {
    dev, irq, drv: new Ne2kDriver(dev), sent: () => sent,
    inject: async (frames, expectCurr) => {
      for (const f of frames) receiver!(f);
      if (expectCurr === null) {
        await sleep(300); // nothing visible to wait for (a full ring, or the cards differ on purpose)
        return;
      }
      const cr = await rd(R.NE_CMD);
      if ((cr & R.E8390_DMA_MASK) !== R.E8390_NODMA) throw new Error(`inject with a remote DMA selected (CR 0x${cr.toString(16)})`);
      // Poll CURR on page 1, then put CR back exactly (NODMA: rewriting it has no side effect).
      for (let i = 0; i < 500; i++) {
        await wr(R.NE_CMD, (cr & 0x3f & ~R.E8390_TRANS) | 0x40);
        const curr = await rd(R.EN1_CURPAG);
        await wr(R.NE_CMD, cr & ~R.E8390_TRANS);
        if (curr === expectCurr) return;
        await sleep(10);
      }
      throw new Error(`QEMU's CURR did not reach 0x${expectCurr.toString(16)}`);
    },
    close: () => dev.close(),
  };
}

export type Obs = Map<string, string>;
/** `inject(frames, true)`: the two cards may differ in what they store, so wait a fixed time instead of for CURR. */
export type Script = (s: Side, o: (key: string, v: unknown) => void, inject: (frames: Uint8Array[], blind?: boolean) => Promise<void>) => Promise<void>;

export const hex = (v: unknown): string =>
  typeof v === 'number' ? `0x${v.toString(16)}` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : Array.isArray(v) ? v.map(hex).join(',') : String(v);

/** Runs a script on the model, then on QEMU (injects wait for the CURR the model reached), and compares. */
export async function compare(script: Script): Promise<{ ours: Obs; qemu: Obs }> {
  const expectCurrs: Array<number | null> = [];
  const run = async (side: Side, isModel: boolean): Promise<Obs> => {
    const obs: Obs = new Map();
    let n = 0;
    const o = (key: string, v: unknown) => {
      if (obs.has(key)) throw new Error(`observation ${key} twice`);
      obs.set(key, hex(v));
    };
    const inject = async (frames: Uint8Array[], blind = false) => {
      if (isModel) {
        const before = (side.dev as Ne2kDevice).registers().curr;
        await side.inject(frames, null);
        const after = (side.dev as Ne2kDevice).registers().curr;
        expectCurrs.push(after === before || blind ? null : after);
      } else await side.inject(frames, expectCurrs[n++]);
    };
    await script(side, o, inject);
    return obs;
  };
  const model = modelSide();
  const ours = await run(model, true);
  const q = await qemuSide();
  try {
    const qemu = await run(q, false);
    return { ours, qemu };
  } finally {
    await q.close();
  }
}

export function check({ ours, qemu }: { ours: Obs; qemu: Obs }, deviations: Record<string, string> = {}): void {
  expect([...qemu.keys()]).toEqual([...ours.keys()]);
  const diffs: string[] = [];
  for (const [k, v] of ours) {
    const q = qemu.get(k);
    if (k in deviations) {
      if (v === q) diffs.push(`${k}: listed as a deviation (${deviations[k]}) but both read ${v}`);
    } else if (v !== q) diffs.push(`${k}: ours ${v}, QEMU ${q}`);
  }
  expect(diffs).toEqual([]);
}

