// Device kinds: the config's `kind` names a factory that builds a device model from its
// edges, backend config and properties. Built-in kinds load their module lazily, so a
// config naming one kind does not load every device model.

import type { Device } from '../device.ts';
import { describeByInstance } from './describe-by-instance.ts';
import type { DeviceContext, DeviceFactory } from './device-factory.ts';
import type { KindInfo } from './kind-info.ts';

export type { DeviceContext, DeviceFactory } from './device-factory.ts';

/**
 * Built-in kinds -> a loader of their factory. The lead extends this table as device
 * models land (ata, ne2k, uart16550, qemu, ...); each module exports a DeviceFactory.
 */
const BUILTIN_KINDS: Record<string, () => Promise<DeviceFactory>> = {
  scratch: async () => (await import('./scratch.ts')).createScratch,
  'qemu-ide': async () => (await import('./qemu-ide.ts')).createQemuIde,
  ata: async () => (await import('./ata/factory.ts')).createAta,
  ne2k: async () => {
    const factory = await import('./ne2k/factory.ts');
    // The network backends (switch, udp, tap); a backend type registered already (a plug-in) stays.
    const { NET_WIRE_OPENERS } = await import('../backends/nic/index.ts');
    for (const [type, opener] of Object.entries(NET_WIRE_OPENERS)) factory.registerWireOpenerIfAbsent(type, opener);
    return factory.createNe2k;
  },
  'qemu-ne2k': async () => (await import('./qemu-ne2k.ts')).createQemuNe2k,
  qemu: async () => (await import('./qemu-generic.ts')).createQemuGeneric,
};

/**
 * Built-in kinds -> a loader of their self-description (src/devices/kind-info.ts). A kind
 * missing here is described by a device of it built with default properties.
 */
const BUILTIN_INFO: Record<string, () => Promise<KindInfo>> = {
  scratch: async () => (await import('./scratch-kind.ts')).SCRATCH_KIND,
  'qemu-ide': async () => (await import('./qemu-ide-kind.ts')).QEMU_IDE_KIND,
  ata: async () => (await import('./ata/kind.ts')).ATA_KIND,
  ne2k: async () => (await import('./ne2k/kind.ts')).NE2K_KIND,
  'qemu-ne2k': async () => (await import('./qemu-ne2k-kind.ts')).QEMU_NE2K_KIND,
  qemu: async () => (await import('./qemu-generic-kind.ts')).QEMU_GENERIC_KIND,
};

export class DeviceRegistry {
  private readonly loaders = new Map<string, () => Promise<DeviceFactory>>(Object.entries(BUILTIN_KINDS));

  private readonly infos = new Map<string, () => Promise<KindInfo>>(Object.entries(BUILTIN_INFO));

  /** Add or replace a kind (tests and plug-ins), with its self-description if it has one. */
  register(kind: string, factory: DeviceFactory, info?: KindInfo): this {
    this.loaders.set(kind, async () => factory);
    if (info) this.infos.set(kind, async () => info);
    else this.infos.delete(kind);
    return this;
  }

  /** What `kind` says about itself: its static KindInfo, else what a default device of it reports. */
  async describe(kind: string): Promise<KindInfo> {
    const load = this.loaders.get(kind);
    if (!load) throw new Error(`unknown device kind "${kind}"; known kinds: ${this.kinds().join(', ')}`);
    const info = this.infos.get(kind);
    return info ? info() : describeByInstance(kind, await load());
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
