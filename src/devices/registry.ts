// Device kinds: the config's `kind` names a factory that builds a device model from its
// edges, backend config and properties. Built-in kinds load their module lazily, so a
// config naming one kind does not load every device model.

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

/**
 * Built-in kinds -> a loader of their factory. The lead extends this table as device
 * models land (ata, ne2k, uart16550, qemu, ...); each module exports a DeviceFactory.
 */
const BUILTIN_KINDS: Record<string, () => Promise<DeviceFactory>> = {
  scratch: async () => (await import('./scratch.ts')).createScratch,
  'qemu-ide': async () => (await import('./qemu-ide.ts')).createQemuIde,
  ata: async () => (await import('./ata/factory.ts')).createAta,
};

export class DeviceRegistry {
  private readonly loaders = new Map<string, () => Promise<DeviceFactory>>(Object.entries(BUILTIN_KINDS));

  /** Add or replace a kind (tests and plug-ins). */
  register(kind: string, factory: DeviceFactory): this {
    this.loaders.set(kind, async () => factory);
    return this;
  }

  has(kind: string): boolean {
    return this.loaders.has(kind);
  }

  kinds(): string[] {
    return [...this.loaders.keys()].sort();
  }

  async create(ctx: DeviceContext): Promise<Device> {
    const load = this.loaders.get(ctx.kind);
    if (!load) throw new Error(`device ${ctx.id}: unknown kind "${ctx.kind}"; known kinds: ${this.kinds().join(', ')}`);
    const factory = await load();
    return factory(ctx);
  }
}

/** The built-in kinds, for config validation. */
export function builtinKinds(): string[] {
  return Object.keys(BUILTIN_KINDS).sort();
}
