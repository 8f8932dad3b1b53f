// A kind registered without a static KindInfo is described by a device of it built with
// default properties and inert edges (no IRQ, DMA refused, a stopped clock): first without
// a backend, then on the `null` backend. A kind that needs a real host resource to exist
// cannot be described this way; the error says so and names what its factory said.

import type { Device, DeviceEdges } from '../device.ts';
import { silentLogger } from '../log.ts';
import { type KindInfo, kindInfoFromDevice } from './kind-info.ts';
import type { DeviceContext, DeviceFactory } from './device-factory.ts';

const INERT_EDGES: DeviceEdges = {
  irq: { set: () => {} },
  dma: { read: async () => null, write: async () => false },
  clock: () => 0,
};

export async function describeByInstance(kind: string, factory: DeviceFactory): Promise<KindInfo> {
  const attempts: Array<DeviceContext['backend']> = [undefined, { type: 'null' }];
  const errors: string[] = [];
  for (const backend of attempts) {
    let device: Device;
    try {
      device = await factory({ id: kind, kind, edges: INERT_EDGES, backend, properties: {}, config: { id: kind, kind }, logger: silentLogger });
    } catch (e) {
      errors.push(`${backend ? `backend ${backend.type}` : 'no backend'}: ${(e as Error).message}`);
      continue;
    }
    try {
      return kindInfoFromDevice(kind, device.describe());
    } finally {
      await device.close?.();
    }
  }
  throw new Error(`device kind ${kind} has no description and cannot be built with default properties to describe itself (${errors.join('; ')})`);
}
