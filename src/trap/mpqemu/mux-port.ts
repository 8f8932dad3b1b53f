// A guest QEMU's proxied function as a MUX guest: the Device the mpqemu connection serves
// (server.ts) is this adapter, which turns each BAR access (presented region, offset) into
// the supervisor's per-guest access at the device region's bus address (grants, the MUX,
// windows, context switches all apply, as for any other guest). The IRQ the MUX delivers to
// this guest drives the guest QEMU's interrupt pin; an access that changed the level is
// answered only after the pin took it, so a driver never sees its interrupt still pending
// after the access that cleared it.

import type { Access } from '../../access.ts';
import type { DevSize, Device, DeviceDescription, DeviceMetrics } from '../../device.ts';
import type { LocalGuest } from '../../supervisor.ts';
import type { PciFace } from './ata-native.ts';

/** A device region as the supervisor placed it on its bus. */
export interface PlacedRegion {
  regionName: string;
  space: 'pio' | 'mmio';
  start: number;
  end: number;
}

const ALL_ONES: Record<DevSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

export class MuxPortDevice implements Device {
  private readonly targets: Array<{ space: 'pio' | 'mmio'; start: number; size: number; shift: number }>;
  private readonly counts = { accesses: 0, holes: 0, errors: 0 };
  /** The pin's answer for the last level change, awaited before an access is answered. */
  private settle: Promise<void> | null = null;

  constructor(
    private readonly face: PciFace,
    placed: readonly PlacedRegion[],
    private readonly guest: LocalGuest,
  ) {
    this.targets = face.routes.map((r) => {
      const p = placed.find((x) => x.regionName === r.target);
      if (!p) throw new Error(`mux port: the device has no placed region "${r.target}"`);
      return { space: p.space, start: p.start, size: p.end - p.start + 1, shift: r.shift };
    });
  }

  /** Called with the promise of each pin change (the guest's onIrq): answers wait for it. */
  pinChanged(p: Promise<void>): void {
    const mine = p.catch(() => undefined);
    this.settle = mine;
    void mine.then(() => {
      if (this.settle === mine) this.settle = null;
    });
  }

  describe(): DeviceDescription {
    return this.face.description;
  }

  read(region: number, offset: number, size: DevSize): number | Promise<number> {
    const acc = this.accessOf(region, offset, size, 'read');
    if (!acc) return ALL_ONES[size];
    return this.guest.access(acc).then(async (rep) => {
      if (this.settle) await this.settle;
      return Number(rep.value);
    });
  }

  write(region: number, offset: number, size: DevSize, value: number): void | Promise<void> {
    const acc = this.accessOf(region, offset, size, 'write');
    if (!acc) return;
    acc.value = value;
    return this.guest.access(acc).then(async () => {
      if (this.settle) await this.settle;
    });
  }

  /** A proxy DEVICE_RESET is not the shared disk's reset: the MUX decides what a guest may reset. */
  reset(): void {}

  metrics(): DeviceMetrics {
    return { ...this.counts };
  }

  private accessOf(region: number, offset: number, size: DevSize, dir: 'read' | 'write'): Access | null {
    this.counts.accesses++;
    const t = this.targets[region];
    const at = offset - (t?.shift ?? 0);
    if (!t || at < 0 || at + size > t.size) {
      // Bytes of a BAR the device does not back (the control BAR's first two): a hole.
      this.counts.holes++;
      return null;
    }
    return { space: t.space, addr: t.start + at, size, dir };
  }
}
