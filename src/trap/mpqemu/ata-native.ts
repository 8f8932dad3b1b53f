// The shared ATA disk as a guest QEMU's proxied PCI function sees it: a PIIX3 IDE function
// (8086:7010) in PCI native mode. A proxied function reaches the guest through its BARs only
// (the legacy ports 0x1F0/0x3F6 and IRQ 14 stay QEMU's own PIIX), so the programming
// interface says "native" for both channels (0x85: bits 0 and 2, bus master bit 7) and libata
// takes the command block from BAR0, the control block from BAR1 + 2 (ATA_PCI_CTL_OFS) and the
// function's INTx as its interrupt (drivers/ata/libata-sff.c ata_pci_sff_init_host,
// ata_pci_sff_activate_host). BAR2/BAR3 are absent: the secondary channel becomes a dummy port.
//
// ata_piix binds 8086:7010 whatever the mode: piix_init_one hands the host to
// ata_pci_bmdma_prepare_host / ata_pci_sff_activate_host, which follow the prog-if. Its
// prereset refuses a channel whose IDETIM decode bit is clear (piix_enable_bits: config 0x41
// bit 7, 0x43 bit 7), so both are set, as QEMU's PIIX leaves them after reset.
//
// The MUX and its window translation see the device's own regions (cmd, ctl, bmide), so each
// BAR region here names the device region and the offset shift it stands for.

import type { DeviceDescription, RegionInfo } from '../../device.ts';

/** ATA_PCI_CTL_OFS: the control register sits at offset 2 of a native-mode control BAR. */
export const ATA_PCI_CTL_OFS = 2;

/** Where an access to a presented region lands on the device: its region name and offset. */
export interface FaceRoute {
  /** The device region the presented region stands for. */
  target: string;
  /** Presented offset minus this = device offset; outside [0, target size) is a hole. */
  shift: number;
}

export interface PciFace {
  description: DeviceDescription;
  /** One per description.regions entry. */
  routes: FaceRoute[];
}

/** The native-mode presentation of an ATA device description (src/devices/ata/describe.ts). */
export function ataNativeFace(device: DeviceDescription): PciFace {
  const need = (name: string): RegionInfo => {
    const r = device.regions.find((x) => x.name === name);
    if (!r) throw new Error(`ata native face: device ${device.kind} has no region "${name}"`);
    return r;
  };
  const cmd = need('cmd');
  need('ctl');
  const bmide = need('bmide');
  if (!device.pci) throw new Error(`ata native face: device ${device.kind} has no PCI identity`);
  const regions: RegionInfo[] = [
    { name: 'cmd', space: 'pio', size: cmd.size, bar: 0 },
    { name: 'ctl', space: 'pio', size: ATA_PCI_CTL_OFS + 2, bar: 1 },
    { name: 'bmide', space: 'pio', size: bmide.size, bar: 4 },
  ];
  return {
    description: {
      kind: device.kind,
      regions,
      properties: device.properties,
      pci: {
        ...device.pci,
        classCode: 0x010185, // mass storage, IDE; prog-if: bus master, both channels native
        interruptPin: 1, // INTA: native mode uses the function's INTx
        config: [
          // IDETIM primary (0x40) and secondary (0x42): bit 15 = IDE decode enable (0x41/0x43 bit 7).
          { offset: 0x40, size: 2, value: 0x8000, writable: 0xffff },
          { offset: 0x42, size: 2, value: 0x8000, writable: 0xffff },
        ],
      },
    },
    routes: [
      { target: 'cmd', shift: 0 },
      { target: 'ctl', shift: ATA_PCI_CTL_OFS },
      { target: 'bmide', shift: 0 },
    ],
  };
}
