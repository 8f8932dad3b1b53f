// The `scratch` kind as it describes itself before a device exists (src/devices/kind-info.ts).

import type { KindInfo } from './kind-info.ts';
import { SCR_MEM_SIZE, SCR_REGS_SIZE } from './scratch.ts';

export const SCRATCH_KIND: KindInfo = {
  kind: 'scratch',
  summary: 'A small test device (QEMU\'s pci-testdev identity): scratch registers, a doorbell IRQ, a DMA engine and an MMIO memory.',
  backend: null,
  pci: { vendor: 0x1b36, device: 0x0005, revision: 0, classCode: 0x00ff00, subsystemVendor: 0x1af4, subsystem: 0x1100, interruptPin: 1 },
  regions: [
    { name: 'regs', space: 'pio', size: SCR_REGS_SIZE, bar: 0 },
    { name: 'mem', space: 'mmio', size: SCR_MEM_SIZE, bar: 1 },
  ],
  irqs: [{ line: 10, help: 'Raised by the doorbell and by the end of a DMA; the irq property moves it.' }],
  properties: [{ name: 'irq', type: 'integer', default: 10, help: 'The ISA IRQ line the doorbell and the DMA engine raise.' }],
};
