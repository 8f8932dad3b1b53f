// The `qemu-ide` kind as it describes itself before a device exists (src/devices/kind-info.ts).
// The live device reads its class and revision from QEMU; these are QEMU 7.2's PIIX3 values.

import type { KindInfo } from './kind-info.ts';
import { ATA_PRIMARY_CMD, ATA_PRIMARY_CTL, PIIX3_IDE_DEVICE, PIIX3_IDE_VENDOR } from './qemu-ide.ts';

export const QEMU_IDE_KIND: KindInfo = {
  kind: 'qemu-ide',
  summary: 'QEMU\'s own PIIX3 IDE model driven over qtest as the physical disk (the primary master drive on a raw image).',
  backend: 'qemu {image, binary?, memoryMiB?, extraArgs?}',
  pci: { vendor: PIIX3_IDE_VENDOR, device: PIIX3_IDE_DEVICE, revision: 0, classCode: 0x010180, interruptPin: 0 },
  regions: [
    { name: 'cmd', space: 'pio', size: 8, legacyBase: ATA_PRIMARY_CMD },
    { name: 'ctl', space: 'pio', size: 1, legacyBase: ATA_PRIMARY_CTL },
    { name: 'bmide', space: 'pio', size: 16, bar: 4 },
  ],
  irqs: [{ line: 14, help: 'The primary IDE channel\'s legacy ISA interrupt, as QEMU raises it.' }],
  properties: [
    { name: 'bmBase', type: 'integer', default: 0xc000, help: 'The I/O base programmed into QEMU\'s BAR4 (bus master), not what the guest sees.' },
    { name: 'machine', type: 'string', default: 'ata', help: 'The MUX statechart: a shipped machine name or a module path (read by the MUX).' },
    { name: 'deadlineNs', type: 'number', default: null, help: 'The watchdog deadline of one unsafe span in ns; unset, the machine\'s own deadline applies.' },
  ],
};
