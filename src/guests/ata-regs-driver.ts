// Register names a guest ATA driver uses (ATA-8 ACS, Linux include/linux/ata.h).
// Kept apart from the device model's own names so the driver is written "from the outside".

export const ATA_PRIMARY_CMD = 0x1f0; // legacy primary command block
export const ATA_PRIMARY_CTL = 0x3f6; // legacy primary control block

export const ATA_REG_DATA = 0; // 16-bit data port
export const ATA_REG_ERR = 1; // error (read)
export const ATA_REG_FEATURE = 1; // features (write)
export const ATA_REG_NSECT = 2; // sector count
export const ATA_REG_LBAL = 3; // LBA low
export const ATA_REG_LBAM = 4; // LBA mid
export const ATA_REG_LBAH = 5; // LBA high
export const ATA_REG_DEVICE = 6; // device/head
export const ATA_REG_STATUS = 7; // status (read)
export const ATA_REG_CMD = 7; // command (write)

export const ATA_BUSY = 0x80;
export const ATA_DRDY = 0x40;
export const ATA_DF = 0x20;
export const ATA_DRQ = 0x08;
export const ATA_ERR = 0x01;

export const ATA_ABORTED = 0x04; // error register: ABRT
export const ATA_IDNF = 0x10; // error register: ID not found

export const ATA_LBA = 0x40; // device register: LBA addressing
export const ATA_DEVICE_OBS = 0xa0; // obsolete bits set by old drivers
export const ATA_NIEN = 0x02; // device control: interrupts off
export const ATA_SRST = 0x04; // device control: software reset

export const ATA_CMD_READ = 0x20;
export const ATA_CMD_READ_EXT = 0x24;
export const ATA_CMD_WRITE = 0x30;
export const ATA_CMD_WRITE_EXT = 0x34;
export const ATA_CMD_READ_MULTI = 0xc4;
export const ATA_CMD_WRITE_MULTI = 0xc5;
export const ATA_CMD_READ_MULTI_EXT = 0x29;
export const ATA_CMD_WRITE_MULTI_EXT = 0x39;
export const ATA_CMD_SET_MULTI = 0xc6;
export const ATA_CMD_READ_DMA = 0xc8;
export const ATA_CMD_READ_DMA_EXT = 0x25;
export const ATA_CMD_WRITE_DMA = 0xca;
export const ATA_CMD_WRITE_DMA_EXT = 0x35;
export const ATA_CMD_FLUSH = 0xe7;
export const ATA_CMD_FLUSH_EXT = 0xea;
export const ATA_CMD_ID_ATA = 0xec;
export const ATA_CMD_SET_FEATURES = 0xef;

export const SETFEATURES_WC_ON = 0x02;
export const SETFEATURES_WC_OFF = 0x82;

// PIIX bus-master IDE (BAR4), primary channel.
export const ATA_DMA_CMD = 0; // command: start, direction
export const ATA_DMA_STATUS = 2; // status: active, error, interrupt
export const ATA_DMA_TABLE_OFS = 4; // PRD table address (dword)
export const ATA_DMA_START = 0x01;
export const ATA_DMA_WR = 0x08; // "write to memory": device -> memory (an ATA read)
export const ATA_DMA_ACTIVE = 0x01;
export const ATA_DMA_ERR = 0x02;
export const ATA_DMA_INTR = 0x04;
export const ATA_PRD_EOT = 0x8000_0000; // last PRD entry

// PCI configuration mechanism #1.
export const PCI_CONFIG_ADDRESS = 0xcf8;
export const PCI_CONFIG_DATA = 0xcfc;
