// How a shared device is presented to a guest QEMU as its proxied PCI function. The ATA disk
// needs a face of its own (native-mode PIIX3 IDE, ata-native.ts); a device that already is a
// PCI function with BARs for all its regions (the NE2000: RTL8029, 10ec:8029, one I/O BAR,
// INTA) is presented as it describes itself, each BAR standing for the region of that name.

import type { DeviceDescription } from '../../device.ts';
import { ataNativeFace, type PciFace } from './ata-native.ts';

/** The device's own PCI function: every region behind its BAR, offsets unchanged. */
export function ownPciFace(device: DeviceDescription): PciFace {
  if (!device.pci) throw new Error(`pci face: device ${device.kind} has no PCI identity to present over the proxy`);
  const without = device.regions.filter((r) => r.bar === undefined).map((r) => r.name);
  if (without.length) throw new Error(`pci face: device ${device.kind}: region${without.length > 1 ? 's' : ''} ${without.join(', ')} ha${without.length > 1 ? 've' : 's'} no BAR; a proxied function reaches the guest through its BARs only`);
  if (device.regions.length === 0) throw new Error(`pci face: device ${device.kind} has no region to present`);
  return {
    description: { ...device, regions: device.regions.map(({ legacyBase: _legacy, ...r }) => r) },
    routes: device.regions.map((r) => ({ target: r.name, shift: 0 })),
  };
}

/** Device kinds a guest QEMU can be given, and the face each gets. */
export function pciFaceFor(device: DeviceDescription): PciFace {
  if (device.kind === 'ata') return ataNativeFace(device);
  return ownPciFace(device);
}
