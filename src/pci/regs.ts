// PCI configuration header registers (type 0), names as in Linux include/uapi/linux/pci_regs.h.

export const PCI_VENDOR_ID = 0x00; // 16 bits
export const PCI_DEVICE_ID = 0x02; // 16 bits
export const PCI_COMMAND = 0x04; // 16 bits
export const PCI_COMMAND_IO = 0x1; // enable response in I/O space
export const PCI_COMMAND_MEMORY = 0x2; // enable response in memory space
export const PCI_COMMAND_MASTER = 0x4; // enable bus mastering
export const PCI_COMMAND_PARITY = 0x40; // enable parity checking
export const PCI_COMMAND_SERR = 0x100; // enable SERR
export const PCI_COMMAND_INTX_DISABLE = 0x400; // INTx emulation disable
export const PCI_STATUS = 0x06; // 16 bits
export const PCI_REVISION_ID = 0x08; // 8 bits
export const PCI_CLASS_PROG = 0x09; // 24-bit class code starts here: prog-if, subclass, class
export const PCI_CACHE_LINE_SIZE = 0x0c; // 8 bits
export const PCI_LATENCY_TIMER = 0x0d; // 8 bits
export const PCI_HEADER_TYPE = 0x0e; // 8 bits; bit 7: multi-function device
export const PCI_HEADER_TYPE_MFD = 0x80;
export const PCI_BASE_ADDRESS_0 = 0x10; // 32 bits each, six of them
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01; // BAR bit 0: I/O space
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c; // 16 bits
export const PCI_SUBSYSTEM_ID = 0x2e; // 16 bits
export const PCI_ROM_ADDRESS = 0x30; // 32 bits; 0 here: no expansion ROM
export const PCI_CAPABILITY_LIST = 0x34; // 8 bits; 0 here: no capabilities
export const PCI_INTERRUPT_LINE = 0x3c; // 8 bits: the ISA IRQ the firmware routed
export const PCI_INTERRUPT_PIN = 0x3d; // 8 bits: 1 = INTA
export const PCI_CONFIG_SPACE_SIZE = 256;

/** Configuration mechanism #1 ports (PCI Local Bus spec 3.2.2.3.2). */
export const PCI_CONF1_ADDRESS_PORT = 0xcf8; // 32-bit CONFIG_ADDRESS
export const PCI_CONF1_DATA_PORT = 0xcfc; // CONFIG_DATA window, bytes 0xcfc-0xcff
export const PCI_CONF1_ENABLE = 0x8000_0000; // CONFIG_ADDRESS bit 31

/** The host bridge every guest sees at 00:00.0: an Intel 440FX, as QEMU's `pc` machine has. */
export const HOST_BRIDGE = { vendor: 0x8086, device: 0x1237, revision: 0x02, classCode: 0x060000, subsystemVendor: 0x1af4, subsystem: 0x1100, interruptPin: 0 };
