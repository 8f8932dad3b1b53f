// The `ne2k` kind as it describes itself before a device exists (src/devices/kind-info.ts):
// the same PCI function, region and IRQ as describeNe2k() reports for a live card.

import type { KindInfo } from '../kind-info.ts';
import { NE2K_DEFAULT_IRQ, NE2K_PCI, NE2K_REGIONS } from './describe.ts';
import { DEFAULT_MAC } from './regs.ts';

export const NE2K_KIND: KindInfo = {
  kind: 'ne2k',
  summary: 'Our NE2000 network card model (RTL8029 PCI): paged registers, remote DMA, a 32 KiB receive ring, and a wire edge for frames.',
  backend: 'none (transmitted frames go nowhere), switch (guests reach only each other), udp {local, remote} (one datagram per frame), tap {ifname, netns?}, or a backend that registered a wire opener (src/mux/nic/README.md)',
  pci: NE2K_PCI,
  regions: NE2K_REGIONS,
  irqs: [{ line: NE2K_DEFAULT_IRQ, help: 'INTA, raised while ISR & IMR & 0x7F is not zero; the irq property moves it.' }],
  properties: [
    { name: 'mac', type: 'string', default: DEFAULT_MAC, help: 'The station address in the PROM (unicast); the driver copies it to PAR0-5.' },
    { name: 'irq', type: 'integer', default: NE2K_DEFAULT_IRQ, help: 'The ISA IRQ proposed for INTA.' },
    { name: 'machine', type: 'string', default: null, help: 'The MUX statechart: a shipped machine name or a module path (read by the MUX, not the model); "ne2k" (machines/ne2k) time-slices the card among guests, switching only when it is started, on page 0, with no remote DMA, transmit or loopback in progress. Without it the card is shared by the NIC router: a virtual card per guest, each with the MAC of its grant.' },
    { name: 'capture', type: 'string', default: null, help: 'A folder for pcap files: wire.pcap (frames on the wire) and GUEST.pcap (what each guest sent and received); read by the NIC router.' },
    { name: 'deadlineNs', type: 'number', default: null, help: 'The watchdog deadline of one unsafe span in ns (read by the MUX).' },
  ],
};
