// NE2000 / RTL8029 register names and bits (DP8390 datasheet, Linux drivers/net/ethernet/8390/8390.h,
// RTL8029AS datasheet). Offsets are within the I/O BAR; registers 0x00-0x0F are paged by CR bits 7:6.

// ---- the I/O BAR ----
export const NE_BAR_SIZE = 0x20; // registers, data port, reset port (QEMU maps 0x100; the card decodes 32)
export const NE_CMD = 0x00; // command register, on every page
export const NE_DATAPORT = 0x10; // remote DMA data port (8/16-bit per DCR.WTS, or 32-bit as ne2k-pci uses)
export const NE_RESET = 0x1f; // reading it resets the chip

// ---- CR (command register) ----
export const E8390_STOP = 0x01; // STP: stop the NIC
export const E8390_START = 0x02; // STA: start the NIC
export const E8390_TRANS = 0x04; // TXP: transmit the frame at TPSR/TBCR
export const E8390_RREAD = 0x08; // remote DMA read
export const E8390_RWRITE = 0x10; // remote DMA write
export const E8390_NODMA = 0x20; // abort/complete remote DMA
export const E8390_DMA_MASK = 0x38; // RD2..RD0
export const E8390_PAGE_SHIFT = 6; // PS1..PS0 select the register page

// ---- page 0, read ----
export const EN0_CLDALO = 0x01; // current local DMA address, low
export const EN0_CLDAHI = 0x02; // current local DMA address, high
export const EN0_BOUNDARY = 0x03; // BNRY: last page the host has read (also written)
export const EN0_TSR = 0x04; // transmit status
export const EN0_NCR = 0x05; // number of collisions
export const EN0_FIFO = 0x06; // FIFO
export const EN0_ISR = 0x07; // interrupt status (write 1 to clear)
export const EN0_CRDALO = 0x08; // current remote DMA address, low
export const EN0_CRDAHI = 0x09; // current remote DMA address, high
export const EN0_RTL8029ID0 = 0x0a; // RTL8029 id 'P'
export const EN0_RTL8029ID1 = 0x0b; // RTL8029 id 'C'
export const EN0_RSR = 0x0c; // receive status
export const EN0_COUNTER0 = 0x0d; // CNTR0: frame alignment errors (clear on read)
export const EN0_COUNTER1 = 0x0e; // CNTR1: CRC errors (clear on read)
export const EN0_COUNTER2 = 0x0f; // CNTR2: missed frames (clear on read)
// ---- page 0, write ----
export const EN0_STARTPG = 0x01; // PSTART: first page of the receive ring
export const EN0_STOPPG = 0x02; // PSTOP: page after the receive ring
export const EN0_TPSR = 0x04; // transmit page start
export const EN0_TCNTLO = 0x05; // TBCR0: transmit byte count, low
export const EN0_TCNTHI = 0x06; // TBCR1: transmit byte count, high
export const EN0_RSARLO = 0x08; // remote start address, low
export const EN0_RSARHI = 0x09; // remote start address, high
export const EN0_RCNTLO = 0x0a; // RBCR0: remote byte count, low
export const EN0_RCNTHI = 0x0b; // RBCR1: remote byte count, high
export const EN0_RXCR = 0x0c; // RCR: receive configuration
export const EN0_TXCR = 0x0d; // TCR: transmit configuration
export const EN0_DCFG = 0x0e; // DCR: data configuration
export const EN0_IMR = 0x0f; // IMR: interrupt mask

// ---- page 1 ----
export const EN1_PHYS = 0x01; // PAR0..PAR5: station address (0x01-0x06)
export const EN1_CURPAG = 0x07; // CURR: next page the NIC writes
export const EN1_MULT = 0x08; // MAR0..MAR7: multicast hash filter (0x08-0x0F)

// ---- page 2 (reads back the page-0 write-only registers) ----
export const EN2_STARTPG = 0x01; // PSTART
export const EN2_STOPPG = 0x02; // PSTOP
export const EN2_RNPP = 0x03; // remote next packet pointer
export const EN2_TPSR = 0x04; // TPSR
export const EN2_LNPP = 0x05; // local next packet pointer
export const EN2_ACU = 0x06; // address counter, upper
export const EN2_ACL = 0x07; // address counter, lower
export const EN2_RCR = 0x0c; // RCR
export const EN2_TCR = 0x0d; // TCR
export const EN2_DCR = 0x0e; // DCR
export const EN2_IMR = 0x0f; // IMR

// ---- page 3 (RTL8029) ----
export const EN3_9346CR = 0x01; // EEPROM command: 0xC0 unlocks CONFIG3 writes
export const EN3_CONFIG0 = 0x03; // media: 0 = 10BASE-T
export const EN3_CONFIG2 = 0x05; // 0x40: 10BASE-T link active (as QEMU)
export const EN3_CONFIG3 = 0x06; // 0x40: full duplex (FUDUP; set_realtek_fdx writes it)
export const RTL_9346CR_CONFIG_WRITE = 0xc0; // EEM1|EEM0: config registers writable
export const RTL_CONFIG3_FUDUP = 0x40;

// ---- ISR / IMR bits ----
export const ENISR_RX = 0x01; // PRX: frame received
export const ENISR_TX = 0x02; // PTX: frame transmitted
export const ENISR_RX_ERR = 0x04; // RXE: receive error
export const ENISR_TX_ERR = 0x08; // TXE: transmit error (aborted)
export const ENISR_OVER = 0x10; // OVW: ring overwrite
export const ENISR_COUNTERS = 0x20; // CNT: a tally counter's MSB is set
export const ENISR_RDC = 0x40; // RDC: remote DMA complete
export const ENISR_RESET = 0x80; // RST: the NIC is stopped/reset (not cleared by writing 1)
export const ENISR_IRQ_MASK = 0x7f; // RST never raises the line

// ---- RSR / receive header status ----
export const ENRSR_RXOK = 0x01; // good frame
export const ENRSR_MPA = 0x10; // missed packet
export const ENRSR_PHY = 0x20; // multicast/broadcast destination
export const ENRSR_DIS = 0x40; // receiver disabled (monitor mode)

// ---- TSR ----
export const ENTSR_PTX = 0x01; // transmitted without error
export const ENTSR_ABT = 0x08; // transmit aborted

// ---- RCR ----
export const ENRCR_SEP = 0x01; // accept errored frames
export const ENRCR_AR = 0x02; // accept runts
export const ENRCR_AB = 0x04; // accept broadcast
export const ENRCR_AM = 0x08; // accept multicast (hashed through MAR)
export const ENRCR_PRO = 0x10; // promiscuous physical
export const ENRCR_MON = 0x20; // monitor: check addresses, buffer nothing

// ---- TCR ----
export const ENTCR_LOOPBACK = 0x06; // LB1..LB0: any loopback mode keeps frames off the wire

// ---- DCR ----
export const ENDCFG_WTS = 0x01; // word-wide remote DMA

// ---- buffer memory ----
export const NE_PROM_SIZE = 32; // station address PROM at 0x0000 (each byte doubled)
export const NE_PMEM_START = 0x4000; // 32 KiB of buffer memory at 0x4000-0xBFFF
export const NE_PMEM_END = 0xc000;
export const NE_PMEM_SIZE = NE_PMEM_END - NE_PMEM_START;
export const NE_PAGE_SIZE = 256;
export const NE_FIRST_PAGE = NE_PMEM_START >> 8; // 0x40
export const NE_END_PAGE = NE_PMEM_END >> 8; // 0xC0
export const NE_RX_HEADER = 4; // status, next page, count low, count high

// ---- frames ----
export const ETH_ALEN = 6;
export const ETH_ZLEN = 60; // shorter frames are padded with zeros before the ring (as QEMU)
export const ETH_FRAME_MAX = 1514; // untagged frame without FCS
export const ETH_FRAME_MAX_TAGGED = 1518; // with an 802.1Q tag: the largest frame the card takes
/** QEMU's ring-full test: fewer free bytes than this and the frame is dropped. */
export const RX_ROOM_NEEDED = ETH_FRAME_MAX + 4;

// ---- PCI identity (RTL8029) ----
export const PCI_VENDOR_REALTEK = 0x10ec;
export const PCI_DEVICE_RTL8029 = 0x8029;
export const PCI_CLASS_ETHERNET = 0x020000;

/** QEMU's default MAC for the first NIC. */
export const DEFAULT_MAC = '52:54:00:12:34:56';
