// What a device kind says about itself before any device of it exists: its PCI identity,
// regions, IRQ lines and the properties a config may set, each with a type, a default and a
// help sentence (the QEMU device-API idea of self-describing devices). `muxvisor list kinds`,
// `muxvisor describe KIND` and docs/devices.md are printed from it.

import type { DeviceDescription, PciIdentity, RegionInfo } from '../device.ts';

export interface PropertySpec {
  name: string;
  type: 'string' | 'number' | 'integer' | 'boolean';
  /** The value used when the config leaves the property out; null: none (unset). */
  default: string | number | boolean | null;
  /** One sentence. */
  help: string;
}

export interface IrqSpec {
  /** ISA IRQ line (the default; the config may move it when a property says so). */
  line: number;
  help: string;
}

export interface KindInfo {
  kind: string;
  /** One sentence: what the device is. */
  summary: string;
  /** The config's `backend` this kind opens, as a short shape; null: it takes none. */
  backend: string | null;
  pci: PciIdentity | null;
  regions: RegionInfo[];
  irqs: IrqSpec[];
  properties: PropertySpec[];
}

function typeOf(v: unknown): PropertySpec['type'] {
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return 'string';
}

/**
 * A kind's description read off a live device of it (for a kind registered without a
 * static KindInfo): the values it reports stand for the defaults.
 */
export function kindInfoFromDevice(kind: string, d: DeviceDescription): KindInfo {
  return {
    kind,
    summary: `device kind ${kind} (described by a device built with default properties)`,
    backend: null,
    pci: d.pci ?? null,
    regions: d.regions,
    irqs: d.irq === undefined ? [] : [{ line: d.irq, help: 'the line the device raises' }],
    properties: d.properties.map((p) => ({
      name: p.name,
      type: typeOf(p.value),
      default: typeof p.value === 'string' || typeof p.value === 'number' || typeof p.value === 'boolean' ? p.value : null,
      help: p.help,
    })),
  };
}
