// How the ATA controller presents itself: the PIIX3 IDE PCI function, its regions, IRQ 14.

import type { BlockBackend } from '../../backends/block.ts';
import type { DeviceDescription, PciIdentity, RegionInfo } from '../../device.ts';

export interface DescribeInfo {
  model: string;
  serial: string;
  firmware: string;
  blk: BlockBackend;
  writeCache: boolean;
}

/** Command block, device control, bus-master IDE (both channels). */
export const ATA_REGIONS: RegionInfo[] = [
  { name: 'cmd', space: 'pio', size: 8, legacyBase: 0x1f0 }, // command block
  { name: 'ctl', space: 'pio', size: 1, legacyBase: 0x3f6 }, // device control / alternate status
  { name: 'bmide', space: 'pio', size: 16, bar: 4 }, // bus-master IDE, both channels
];

/** The primary channel's ISA IRQ. */
export const ATA_IRQ = 14;

// PIIX3 IDE: prog-if 80h = bus master, both channels in legacy mode; QEMU's piix.c
// sets no interrupt pin (legacy IDE uses ISA IRQ 14/15).
export const ATA_PCI: PciIdentity = {
  vendor: 0x8086,
  device: 0x7010,
  revision: 0,
  classCode: 0x010180,
  interruptPin: 0,
  // PIIX IDETIM (primary 40h, secondary 42h): bit 15 enables the channel's decode. Linux's
  // ata_piix probes a channel only when it is set; the secondary channel has no drive here.
  config: [
    { offset: 0x40, size: 2, value: 0x8000, writable: 0xffff },
    { offset: 0x42, size: 2, value: 0x0000, writable: 0xffff },
  ],
};

export function describeAta(info: DescribeInfo): DeviceDescription {
  return {
    kind: 'ata',
    // Copies: a caller may adjust its description; the constants stay as they are.
    regions: ATA_REGIONS.map((r) => ({ ...r })),
    irq: ATA_IRQ,
    pci: structuredClone(ATA_PCI),
    properties: [
      { name: 'model', value: info.model, help: 'IDENTIFY model string (words 27-46)' },
      { name: 'serial', value: info.serial, help: 'IDENTIFY serial number (words 10-19)' },
      { name: 'firmware', value: info.firmware, help: 'IDENTIFY firmware revision (words 23-26)' },
      { name: 'sectors', value: info.blk.sectors, help: 'capacity in 512-byte sectors' },
      { name: 'backend', value: info.blk.name, help: 'host resource behind the disk' },
      { name: 'readOnly', value: info.blk.readOnly, help: 'writes abort with ABRT' },
      { name: 'writeCache', value: info.writeCache, help: 'volatile write cache; off = every write is FUA' },
    ],
  };
}
