// How the card presents itself: the RTL8029 PCI function (10ec:8029, Ethernet, INTA), one
// 32-byte I/O BAR.

import type { DeviceDescription, PciIdentity, RegionInfo } from '../../device.ts';
import { NE_BAR_SIZE, NE_PMEM_SIZE, PCI_CLASS_ETHERNET, PCI_DEVICE_RTL8029, PCI_VENDOR_REALTEK } from './regs.ts';

export const NE2K_PCI: PciIdentity = {
  vendor: PCI_VENDOR_REALTEK,
  device: PCI_DEVICE_RTL8029,
  revision: 0,
  classCode: PCI_CLASS_ETHERNET,
  interruptPin: 1, // INTA
};

export const NE2K_REGIONS: RegionInfo[] = [{ name: 'regs', space: 'pio', size: NE_BAR_SIZE, bar: 0 }];
export const NE2K_DEFAULT_IRQ = 11;

export function describeNe2k(info: { mac: string; irq: number }): DeviceDescription {
  return {
    kind: 'ne2k',
    regions: NE2K_REGIONS,
    irq: info.irq,
    pci: NE2K_PCI,
    properties: [
      { name: 'mac', value: info.mac, help: 'station address in the PROM (bytes 0-11, each doubled); the driver copies it to PAR0-5' },
      { name: 'irq', value: info.irq, help: 'ISA IRQ proposed for INTA' },
      { name: 'bufferBytes', value: NE_PMEM_SIZE, help: 'buffer memory at 0x4000-0xBFFF (receive ring and transmit pages)' },
    ],
  };
}
