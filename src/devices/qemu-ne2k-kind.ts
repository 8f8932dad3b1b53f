// The `qemu-ne2k` kind as it describes itself before a device exists (src/devices/kind-info.ts):
// QEMU 7.2's ne2k_pci, the same RTL8029 function our `ne2k` model presents.

import type { KindInfo } from './kind-info.ts';
import { NE2K_PCI, NE2K_REGIONS } from './ne2k/describe.ts';
import { DEFAULT_MAC } from './ne2k/regs.ts';

export const QEMU_NE2K_KIND: KindInfo = {
  kind: 'qemu-ne2k',
  summary: 'QEMU\'s own ne2k_pci (RTL8029) driven over qtest as the physical network card, in a VM that only halts.',
  backend: 'qemu {netdev?, binary?, memoryMiB?, extraArgs?} (netdev: a QEMU -netdev value without id; default UDP on loopback)',
  pci: NE2K_PCI,
  regions: NE2K_REGIONS,
  irqs: [{ line: 11, help: 'INTA routed through the PIIX3 PIRQ registers to this ISA IRQ (the irq property moves it).' }],
  properties: [
    { name: 'mac', type: 'string', default: DEFAULT_MAC, help: 'The MAC in QEMU\'s PROM (-device ne2k_pci,mac=).' },
    { name: 'ioBase', type: 'integer', default: 0xc100, help: 'The I/O base programmed into QEMU\'s BAR0, not what the guest sees.' },
    { name: 'irq', type: 'integer', default: 11, help: 'The ISA IRQ the PIRQ lines are routed to.' },
    { name: 'machine', type: 'string', default: null, help: 'The MUX statechart: a shipped machine name or a module path (read by the MUX).' },
    { name: 'deadlineNs', type: 'number', default: null, help: 'The watchdog deadline of one unsafe span in ns (read by the MUX).' },
  ],
};
