// What a device kind's factory is handed and returns (src/devices/registry.ts keeps the kinds).

import type { Device, DeviceEdges } from '../device.ts';
import type { Logger } from '../log.ts';

export interface DeviceContext {
  id: string;
  kind: string;
  /** The router's edges: the device's IRQ line and DMA go through its router. */
  edges: DeviceEdges;
  /** The config's `backend` (its `type` and that type's fields); the kind checks its own shape. */
  backend?: { type: string; [field: string]: unknown };
  properties: Record<string, unknown>;
  /** The whole `devices[i]` entry of the configuration. */
  config: { id: string; kind: string; [field: string]: unknown };
  logger: Logger;
}

export type DeviceFactory = (ctx: DeviceContext) => Device | Promise<Device>;
