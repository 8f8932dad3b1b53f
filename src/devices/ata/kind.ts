// The `ata` kind as it describes itself before a device exists (src/devices/kind-info.ts):
// the same PCI function, regions and IRQ as describeAta() reports for a live one.

import type { KindInfo } from '../kind-info.ts';
import { ATA_IRQ, ATA_PCI, ATA_REGIONS } from './describe.ts';

export const ATA_KIND: KindInfo = {
  kind: 'ata',
  summary: 'Our ATA disk model behind a PIIX3 IDE function (primary channel, PIO and bus-master DMA) on a block backend.',
  backend: 'file {path, sizeMiB?, readOnly?, create?} | memory {sizeMiB} | nbd {socket | host+port, exportName?}',
  pci: ATA_PCI,
  regions: ATA_REGIONS,
  irqs: [{ line: ATA_IRQ, help: 'The primary IDE channel\'s legacy ISA interrupt.' }],
  properties: [
    { name: 'model', type: 'string', default: 'MUXVISOR HARDDISK', help: 'The IDENTIFY model string (words 27-46), at most 40 characters.' },
    { name: 'serial', type: 'string', default: 'MV0001', help: 'The IDENTIFY serial number (words 10-19), at most 20 characters.' },
    { name: 'firmware', type: 'string', default: '0.1', help: 'The IDENTIFY firmware revision (words 23-26), at most 8 characters.' },
    { name: 'writeCache', type: 'boolean', default: true, help: 'A volatile write cache at power-on; off makes every write reach the backend before it completes.' },
    { name: 'machine', type: 'string', default: 'ata', help: 'The MUX statechart: a shipped machine name or a module path (read by the MUX, not the model).' },
    { name: 'deadlineNs', type: 'number', default: null, help: 'The watchdog deadline of one unsafe span in ns; unset, the machine\'s own deadline applies.' },
  ],
};
