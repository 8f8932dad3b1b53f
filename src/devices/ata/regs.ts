// ATA/IDE register and bit names (ATA-8 ACS / ATA-ATAPI-6, Linux include/linux/ata.h),
// and the PIIX bus-master IDE registers (SFF-8038i, Intel 82371SB PIIX3 datasheet).

// Command block registers: offsets inside the `cmd` region (0x1F0..0x1F7).
export const ATA_REG_DATA = 0; // 16-bit PIO data port
export const ATA_REG_ERR = 1; // read: error
export const ATA_REG_FEATURE = 1; // write: features
export const ATA_REG_NSECT = 2; // sector count
export const ATA_REG_LBAL = 3; // LBA low (sector number)
export const ATA_REG_LBAM = 4; // LBA mid (cylinder low)
export const ATA_REG_LBAH = 5; // LBA high (cylinder high)
export const ATA_REG_DEVICE = 6; // device/head select
export const ATA_REG_STATUS = 7; // read: status (clears the pending interrupt)
export const ATA_REG_CMD = 7; // write: command

// Control block: offset 0 of the `ctl` region (0x3F6).
export const ATA_REG_ALTSTATUS = 0; // read: alternate status (does not clear the interrupt)
export const ATA_REG_DEVCTL = 0; // write: device control

// Status register bits.
export const ATA_BUSY = 0x80; // BSY: device owns the registers
export const ATA_DRDY = 0x40; // DRDY: device ready for commands
export const ATA_DF = 0x20; // DF: device fault
export const ATA_DSC = 0x10; // DSC: seek complete (obsolete, still set by drives)
export const ATA_DRQ = 0x08; // DRQ: data request, the data port is live
export const ATA_ERR = 0x01; // ERR: see the error register

// Error register bits.
export const ATA_ICRC = 0x80; // interface CRC error
export const ATA_UNC = 0x40; // uncorrectable data error
export const ATA_IDNF = 0x10; // ID not found: address outside the medium
export const ATA_ABORTED = 0x04; // ABRT: command aborted
export const ATA_AMNF = 0x01; // address mark not found; also "diagnostic passed" code 01h

// Device register bits.
export const ATA_LBA = 0x40; // LBA addressing (else CHS)
export const ATA_DEV1 = 0x10; // DEV: device 1 (slave) selected
export const ATA_DEVICE_OBS = 0xa0; // obsolete bits 7 and 5, set by tradition

// Device control register bits.
export const ATA_HOB = 0x80; // high order byte: read back the previous LBA48 values
export const ATA_SRST = 0x04; // software reset
export const ATA_NIEN = 0x02; // interrupt disable

// Commands (opcodes).
export const ATA_CMD_DSM = 0x06; // DATA SET MANAGEMENT (TRIM), DMA data-out of LBA ranges
export const ATA_CMD_DEV_RESET = 0x08; // DEVICE RESET (ATAPI only)
export const ATA_CMD_RECALIBRATE = 0x10; // 10h..1Fh: obsolete RECALIBRATE
export const ATA_CMD_PIO_READ = 0x20; // READ SECTORS
export const ATA_CMD_PIO_READ_EXT = 0x24; // READ SECTORS EXT
export const ATA_CMD_READ_EXT = 0x25; // READ DMA EXT
export const ATA_CMD_READ_NATIVE_MAX_EXT = 0x27; // READ NATIVE MAX ADDRESS EXT
export const ATA_CMD_READ_MULTI_EXT = 0x29; // READ MULTIPLE EXT
export const ATA_CMD_PIO_WRITE = 0x30; // WRITE SECTORS
export const ATA_CMD_PIO_WRITE_EXT = 0x34; // WRITE SECTORS EXT
export const ATA_CMD_WRITE_EXT = 0x35; // WRITE DMA EXT
export const ATA_CMD_WRITE_MULTI_EXT = 0x39; // WRITE MULTIPLE EXT
export const ATA_CMD_VERIFY = 0x40; // READ VERIFY SECTORS
export const ATA_CMD_VERIFY_EXT = 0x42; // READ VERIFY SECTORS EXT
export const ATA_CMD_EDD = 0x90; // EXECUTE DEVICE DIAGNOSTIC
export const ATA_CMD_INIT_DEV_PARAMS = 0x91; // INITIALIZE DEVICE PARAMETERS (CHS geometry)
export const ATA_CMD_PACKET = 0xa0; // PACKET (ATAPI only)
export const ATA_CMD_ID_ATAPI = 0xa1; // IDENTIFY PACKET DEVICE (ATAPI only)
export const ATA_CMD_READ_MULTI = 0xc4; // READ MULTIPLE
export const ATA_CMD_WRITE_MULTI = 0xc5; // WRITE MULTIPLE
export const ATA_CMD_SET_MULTI = 0xc6; // SET MULTIPLE MODE
export const ATA_CMD_READ = 0xc8; // READ DMA
export const ATA_CMD_WRITE = 0xca; // WRITE DMA
export const ATA_CMD_STANDBYNOW1 = 0xe0; // STANDBY IMMEDIATE
export const ATA_CMD_IDLEIMMEDIATE = 0xe1; // IDLE IMMEDIATE
export const ATA_CMD_STANDBY = 0xe2; // STANDBY
export const ATA_CMD_IDLE = 0xe3; // IDLE
export const ATA_CMD_CHK_POWER = 0xe5; // CHECK POWER MODE
export const ATA_CMD_FLUSH = 0xe7; // FLUSH CACHE
export const ATA_CMD_FLUSH_EXT = 0xea; // FLUSH CACHE EXT
export const ATA_CMD_ID_ATA = 0xec; // IDENTIFY DEVICE
export const ATA_CMD_SET_FEATURES = 0xef; // SET FEATURES
export const ATA_CMD_READ_NATIVE_MAX = 0xf8; // READ NATIVE MAX ADDRESS

// SET FEATURES subcommands (features register).
export const SETFEATURES_WC_ON = 0x02; // enable volatile write cache
export const SETFEATURES_XFER = 0x03; // set transfer mode (mode in sector count)
export const SETFEATURES_RA_OFF = 0x55; // disable read look-ahead
export const SETFEATURES_DEFAULTS_OFF = 0x66; // keep current settings over a reset
export const SETFEATURES_WC_OFF = 0x82; // disable volatile write cache
export const SETFEATURES_RA_ON = 0xaa; // enable read look-ahead
export const SETFEATURES_DEFAULTS_ON = 0xcc; // revert to power-on defaults over a reset

// DATA SET MANAGEMENT features register.
export const ATA_DSM_TRIM = 0x01; // the ranges are to be trimmed

// Transfer mode values for SETFEATURES_XFER (sector count register).
export const XFER_PIO_DEFAULT = 0x00; // PIO default mode
export const XFER_PIO_DEFAULT_NO_IORDY = 0x01; // PIO default mode, IORDY disabled
export const XFER_PIO_0 = 0x08; // 08h | n: PIO flow-control mode n
export const XFER_MW_DMA_0 = 0x20; // 20h | n: multiword DMA mode n
export const XFER_UDMA_0 = 0x40; // 40h | n: Ultra DMA mode n

// PIIX bus-master IDE registers: offsets inside one channel's 8-byte bank of `bmide`.
export const ATA_DMA_CMD = 0; // command: start/stop, direction
export const ATA_DMA_STATUS = 2; // status
export const ATA_DMA_TABLE_OFS = 4; // PRD table pointer, dword aligned
export const BMIDE_CHANNEL_STRIDE = 8; // secondary channel bank at offset 8

// Bus-master command bits.
export const ATA_DMA_START = 0x01; // start/stop bus master
export const ATA_DMA_WR = 0x08; // 1 = write to memory: device -> memory (a disk READ)

// Bus-master status bits.
export const ATA_DMA_ACTIVE = 0x01; // bus master active
export const ATA_DMA_ERR = 0x02; // error (write 1 to clear)
export const ATA_DMA_INTR = 0x04; // IDE interrupt seen (write 1 to clear)
export const ATA_DMA_DRV0_CAP = 0x20; // drive 0 is DMA capable (set by BIOS/driver)
export const ATA_DMA_DRV1_CAP = 0x40; // drive 1 is DMA capable
export const ATA_DMA_SIMPLEX = 0x80; // simplex only (read-only, 0 on PIIX)

// PRD entry: dword 0 = physical address (bit 0 zero), dword 1 = byte count in bits 15:1
// (0 means 64 KiB) and end-of-table in bit 31.
export const ATA_PRD_SZ = 8; // bytes per entry
export const ATA_PRD_EOT = 0x8000_0000; // end of table
export const ATA_PRD_MAX_ENTRIES = 512; // our walk bound (QEMU reads at most one 4 KiB page)
