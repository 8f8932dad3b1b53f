// The generic `qemu` kind as it describes itself before a device exists (src/devices/kind-info.ts).
// Its PCI identity, BARs and IRQ are whatever the named QEMU device has: a live device reads
// them from QEMU (`muxvisor describe` on a config shows them).

import type { KindInfo } from './kind-info.ts';
import { DEFAULT_IO_BASE, DEFAULT_MMIO_BASE, DEFAULT_PCI_IRQ, DEFAULT_SLOT } from './qemu-generic-config.ts';

export const QEMU_GENERIC_KIND: KindInfo = {
  kind: 'qemu',
  summary: 'Any QEMU device model (-device NAME,ARGS) driven over qtest as the physical device: a PCI function\'s identity, BARs (I/O and memory) and INTx, or an ISA device\'s fixed regions and IRQ.',
  backend: 'qemu {binary?, memoryMiB?, extraArgs?} (extraArgs: e.g. ["-chardev", "file,id=c0,path=out.txt"] for args "chardev=c0")',
  pci: null,
  regions: [],
  irqs: [{ line: DEFAULT_PCI_IRQ, help: 'A PCI device\'s INTx, routed through the PIIX3 PIRQ registers to this ISA IRQ (the irq property moves it); an ISA device raises the irq property\'s line.' }],
  properties: [
    { name: 'device', type: 'string', default: null, help: 'The QEMU device model, as qemu-system-x86_64 -device help names it (pci-serial, isa-serial, e1000, ...); unset: the function at slot/function that the machine has built in (the PIIX3 IDE at 1/1).' },
    { name: 'args', type: 'string', default: null, help: 'More -device options after the name, comma-separated (chardev=c0); addr is set from slot and function for a PCI device.' },
    { name: 'bus', type: 'string', default: null, help: 'pci or isa; unset: isa when every region is fixed and no slot or function is given, else pci.' },
    { name: 'slot', type: 'integer', default: DEFAULT_SLOT, help: 'The PCI slot of the function on QEMU\'s bus 0 (a PCI device only).' },
    { name: 'function', type: 'integer', default: 0, help: 'The PCI function number within the slot.' },
    { name: 'regions', type: 'string', default: null, help: 'A JSON array naming the regions the MUX sees: {name, bar} picks a BAR (default: every BAR as barN); {name, space, base, size} is a fixed region: an ISA device\'s, or a PCI function\'s legacy ports (the IDE\'s 0x1F0).' },
    { name: 'irq', type: 'integer', default: DEFAULT_PCI_IRQ, help: 'The ISA IRQ: where a PCI device\'s INTx is routed, or the line an ISA device (or a PCI function in legacy mode, the IDE\'s 14) raises; unset for an ISA device: no IRQ.' },
    { name: 'ioBase', type: 'integer', default: DEFAULT_IO_BASE, help: 'The first port I/O BARs are placed at in QEMU, not what the guest sees.' },
    { name: 'mmioBase', type: 'integer', default: DEFAULT_MMIO_BASE, help: 'The first address memory BARs are placed at in QEMU, not what the guest sees.' },
    { name: 'running', type: 'boolean', default: true, help: 'Run the VM (its CPU halts in a BIOS of HLT) so QEMU\'s timers fire; false starts it stopped (-S).' },
    { name: 'machine', type: 'string', default: null, help: 'Deprecated: write devices[].mux.machine (uart16550 for a serial port); without a machine the device is passed through.' },
    { name: 'deadlineNs', type: 'number', default: null, help: 'Deprecated: write devices[].mux.deadlineNs.' },
  ],
};
