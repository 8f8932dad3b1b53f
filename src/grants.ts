// What one guest may reach: port/MMIO ranges, IRQ lines, whole devices (their regions,
// IRQ and PCI function), with per-device attach options (a disk's LBA window).

import type { Access } from './access.ts';
import type { BusSpace } from './bus.ts';
import { type GuestConfig, isDeviceGrant, isIrqGrant, isRangeGrant } from './config/schema.ts';
import type { AttachOptions } from './guest-link.ts';

export interface GrantRange {
  space: BusSpace;
  start: number;
  /** Inclusive. */
  end: number;
  /** The device whose region this is, when granted through a device grant. */
  device?: string;
}

/** What the grant builder needs to know of a device. */
export interface DeviceReach {
  id: string;
  ranges: { space: BusSpace; start: number; end: number }[];
  irq?: number;
}

export class GuestGrants {
  readonly ranges: GrantRange[] = [];
  readonly irqs = new Set<number>();
  /** Devices the guest is attached to, with their options. */
  readonly devices = new Map<string, AttachOptions>();

  constructor(readonly guest: string) {}

  /** True when every byte of the access lies in one granted range of its space. */
  allows(acc: Access): boolean {
    if (acc.space === 'pcicfg') return false;
    const last = acc.addr + acc.size - 1;
    for (const r of this.ranges) if (r.space === acc.space && r.start <= acc.addr && last <= r.end) return true;
    return false;
  }

  allowsIrq(line: number): boolean {
    return this.irqs.has(line);
  }

  hasDevice(id: string): boolean {
    return this.devices.has(id);
  }
}

function intersects(a: { start: number; end: number }, b: { start: number; end: number }): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/**
 * Build a guest's grants. A device grant gives all the device's mapped regions, its IRQ
 * and (through the PCI view) its function. A raw range grant that touches a device's
 * region attaches the guest to that device too, so its router knows the guest.
 */
export function buildGrants(guest: GuestConfig, devices: ReadonlyMap<string, DeviceReach>): GuestGrants {
  const g = new GuestGrants(guest.name);
  for (const grant of guest.grants) {
    if (isDeviceGrant(grant)) {
      const dev = devices.get(grant.device);
      // The config cross-check already rejected unknown ids; a missing one here is a host bug.
      if (!dev) throw new Error(`guest ${guest.name}: grant names unknown device "${grant.device}"`);
      for (const r of dev.ranges) g.ranges.push({ ...r, device: dev.id });
      if (dev.irq !== undefined) g.irqs.add(dev.irq);
      const options: AttachOptions = {};
      if (grant.window) options.window = { ...grant.window };
      if (grant.mac !== undefined) options.mac = grant.mac;
      if (grant.promiscuous !== undefined) options.promiscuous = grant.promiscuous;
      g.devices.set(dev.id, options);
    } else if (isRangeGrant(grant)) {
      g.ranges.push({ space: grant.space, start: grant.start, end: grant.end });
      for (const dev of devices.values()) {
        if (!g.devices.has(dev.id) && dev.ranges.some((r) => r.space === grant.space && intersects(r, grant))) g.devices.set(dev.id, {});
      }
    } else if (isIrqGrant(grant)) {
      g.irqs.add(grant.irq);
    }
  }
  return g;
}
