// The PCI function one guest QEMU's x-pci-proxy-dev stands for: its configuration space
// (src/pci/function.ts: per-byte write masks, so BAR sizing answers by itself) and the
// BARs as that guest programmed them. The proxy forwards BAR accesses by absolute address
// (QEMU's proxy.c: the BAR's base plus the offset), so the address is routed back here to
// (region, offset) of the device, as the guest's QEMU mapped it: a BAR decodes when its
// space is enabled in the command register and its base is not 0 (QEMU's pci_bar_address).

import type { Device, PciIdentity, RegionInfo } from '../../device.ts';
import { PciFunction, type PciBar } from '../../pci/function.ts';
import * as R from '../../pci/regs.ts';

/**
 * Smallest BAR. QEMU's proxy sizes every BAR with the mask 0xfffffff0 (probe_pci_info), so
 * an I/O BAR under 16 bytes would be a larger region in the guest's QEMU than here and the
 * two could disagree on the base: I/O BARs are made 16 bytes at least, as memory BARs are.
 */
const MIN_BAR = 16;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export interface MappedBar {
  index: number;
  io: boolean;
  base: number;
  /** The BAR's size (a power of two). */
  size: number;
  /** Index in the device's describe().regions. */
  region: number;
  /** Bytes the device backs from the base; the rest of the BAR is a hole. */
  regionSize: number;
}

export interface Route {
  bar: MappedBar;
  offset: number;
}

function pow2AtLeast(n: number, min: number): number {
  let p = min;
  while (p < n) p *= 2;
  return p;
}

export class ProxiedFunction {
  private config: PciFunction;
  private readonly specs: Array<{ bar: PciBar; region: number; info: RegionInfo; size: number }>;
  private mapped: MappedBar[] = [];
  private readonly identity: PciIdentity;

  constructor(device: Device) {
    const d = device.describe();
    if (!d.pci) throw new Error(`mpqemu: device ${d.kind} has no PCI identity to present over the proxy`);
    this.specs = [];
    d.regions.forEach((info, region) => {
      if (info.bar === undefined) return;
      if (this.specs.some((s) => s.bar.index === info.bar)) throw new Error(`mpqemu: device ${d.kind}: two regions claim BAR${info.bar}`);
      const size = pow2AtLeast(info.size, MIN_BAR);
      this.specs.push({ bar: { index: info.bar, io: info.space === 'pio', base: 0, size }, region, info, size });
    });
    this.identity = d.pci;
    this.config = this.fresh();
  }

  /** Power-on state: BARs unassigned, decoding off (as a PCI reset leaves them). */
  reset(): void {
    this.config = this.fresh();
    this.mapped = [];
  }

  /** Config read of 1, 2 or 4 bytes inside the 256-byte space (the caller checks the range). */
  read(addr: number, len: 1 | 2 | 4): number {
    return this.config.read(addr, len);
  }

  write(addr: number, len: 1 | 2 | 4, value: number): void {
    this.config.write(addr, len, value);
    const end = addr + len;
    if ((addr < R.PCI_COMMAND + 2 && end > R.PCI_COMMAND) || (addr < R.PCI_BASE_ADDRESS_0 + 24 && end > R.PCI_BASE_ADDRESS_0)) this.remap();
  }

  /** The BARs decoding now. */
  bars(): readonly MappedBar[] {
    return this.mapped;
  }

  /** (BAR, offset) of an access of `size` bytes at `addr`, or null when no decoding BAR holds it whole. */
  route(addr: bigint, size: number, memory: boolean): Route | null {
    if (addr > MAX_SAFE) return null;
    const a = Number(addr);
    for (const bar of this.mapped) {
      if (bar.io === memory) continue;
      if (a >= bar.base && a + size <= bar.base + bar.size) return { bar, offset: a - bar.base };
    }
    return null;
  }

  private fresh(): PciFunction {
    return new PciFunction({ identity: this.identity, bars: this.specs.map((s) => s.bar), command: 0 });
  }

  private remap(): void {
    const command = this.config.read(R.PCI_COMMAND, 2);
    this.mapped = [];
    for (const s of this.specs) {
      if (!(command & (s.bar.io ? R.PCI_COMMAND_IO : R.PCI_COMMAND_MEMORY))) continue;
      const reg = this.config.read(R.PCI_BASE_ADDRESS_0 + 4 * s.bar.index, 4);
      const base = (reg & (s.bar.io ? R.PCI_BASE_ADDRESS_IO_MASK : R.PCI_BASE_ADDRESS_MEM_MASK)) >>> 0;
      // As QEMU's pci_bar_address: 0 is unmapped, and so is a BAR reaching 0xffffffff (all ones while it is sized).
      if (base === 0 || base + s.size >= 2 ** 32) continue;
      this.mapped.push({ index: s.bar.index, io: s.bar.io, base, size: s.size, region: s.region, regionSize: s.info.size });
    }
  }
}
