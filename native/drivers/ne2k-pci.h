// An RTL8029 (NE2000 PCI) driven from user space the way Linux's ne2k-pci and lib8390 drive
// it (drivers/net/ethernet/8390/ne2k-pci.c, lib8390.c, 8390.h): found by a PCI mechanism #1
// scan, its I/O BAR reached with in/out after iopl(3), interrupts from a UIO fd. Nothing
// here knows about muxvisor: on a real machine this runs against the real card (as root).
#ifndef NE2K_PCI_H
#define NE2K_PCI_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>
#include <unistd.h>

// ---- registers (8390.h names) ----
#define NE_CMD 0x00      // command register, every page
#define NE_DATAPORT 0x10 // remote DMA data port
#define NE_RESET 0x1f    // a read resets the chip
#define E8390_STOP 0x01
#define E8390_START 0x02
#define E8390_TRANS 0x04
#define E8390_RREAD 0x08
#define E8390_RWRITE 0x10
#define E8390_NODMA 0x20
#define E8390_PAGE1 0x40
#define EN0_STARTPG 0x01 // PSTART (w)
#define EN0_STOPPG 0x02  // PSTOP (w)
#define EN0_BOUNDARY 0x03
#define EN0_TSR 0x04     // transmit status (r)
#define EN0_TPSR 0x04    // transmit page start (w)
#define EN0_TCNTLO 0x05
#define EN0_TCNTHI 0x06
#define EN0_ISR 0x07
#define EN0_RSARLO 0x08
#define EN0_RSARHI 0x09
#define EN0_RCNTLO 0x0a
#define EN0_RCNTHI 0x0b
#define EN0_RXCR 0x0c
#define EN0_TXCR 0x0d
#define EN0_COUNTER0 0x0d // (r) clear on read
#define EN0_DCFG 0x0e
#define EN0_IMR 0x0f
#define EN1_PHYS 0x01    // PAR0-5 (page 1)
#define EN1_CURPAG 0x07  // CURR (page 1)
#define EN1_MULT 0x08    // MAR0-7 (page 1)
#define ENISR_RX 0x01
#define ENISR_TX 0x02
#define ENISR_RX_ERR 0x04
#define ENISR_TX_ERR 0x08
#define ENISR_OVER 0x10
#define ENISR_COUNTERS 0x20
#define ENISR_RDC 0x40
#define ENISR_RESET 0x80
#define ENISR_ALL 0x3f
#define ENRSR_RXOK 0x01

// ne2k-pci's layout: two 6-page transmit slots at 0x40, the receive ring 0x4C-0x80.
#define NESM_START_PG 0x40
#define TX_PAGES 12
#define RX_START_PG (NESM_START_PG + TX_PAGES)
#define NESM_STOP_PG 0x80
#define E8390_RXCONFIG 0x04 // accept broadcast
#define E8390_RXOFF 0x20
#define E8390_TXCONFIG 0x00
#define E8390_TXOFF 0x02
#define DCR_WORD 0x49 // 0x48 | WTS
#define ETH_ZLEN 60
#define ETH_FRAME_MAX 1514

#define PCI_VENDOR_REALTEK 0x10ec
#define PCI_DEVICE_RTL8029 0x8029

struct ne2k {
	uint16_t io;          // BAR0
	uint8_t irq_line;     // PCI config 0x3C
	uint8_t mac[6];       // from the PROM
	uint8_t current_page; // where ei_receive expects the next frame
	int tx_slot;          // 0 or 1: which 6-page slot the next transmit uses
	unsigned rx_errors;   // frames ei_receive refused (bad header, size, status)
	unsigned overruns;
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static uint32_t conf1_read(unsigned dev, unsigned fn, unsigned reg)
{
	outl(0x80000000u | dev << 11 | fn << 8 | reg, 0xcf8);
	return inl(0xcfc);
}

// A bus-0 scan for 10ec:8029; fills io and irq_line. 0 when found.
static int ne2k_find(struct ne2k *nic)
{
	for (unsigned d = 0; d < 32; d++) {
		for (unsigned f = 0; f < 8; f++) {
			uint32_t id = conf1_read(d, f, 0);
			if (id == 0xffffffffu) {
				if (f == 0)
					break; // no device: no other functions either
				continue;
			}
			if (id != ((uint32_t)PCI_DEVICE_RTL8029 << 16 | PCI_VENDOR_REALTEK))
				continue;
			uint32_t bar0 = conf1_read(d, f, 0x10);
			if (!(bar0 & 1))
				return -1; // not an I/O BAR: not an RTL8029
			nic->io = (uint16_t)(bar0 & ~3u);
			nic->irq_line = (uint8_t)conf1_read(d, f, 0x3c);
			return 0;
		}
	}
	return -1;
}

static inline uint8_t ne_in(struct ne2k *nic, unsigned reg) { return inb(nic->io + reg); }
static inline void ne_out(struct ne2k *nic, uint8_t v, unsigned reg) { outb(v, nic->io + reg); }

// Polls ISR for `bit` as Linux does for 2 jiffies (here: a bounded count), then acknowledges.
static int ne2k_wait_isr(struct ne2k *nic, uint8_t bit)
{
	for (int i = 0; i < 100000; i++)
		if (ne_in(nic, EN0_ISR) & bit) {
			ne_out(nic, bit, EN0_ISR);
			return 0;
		}
	return -1;
}

// ne2k_pci_init_one's probe: the 8390 check, a reset, the PROM's first 32 bytes in word mode.
static int ne2k_probe(struct ne2k *nic)
{
	if (ne_in(nic, NE_CMD) == 0xff)
		return -1;
	ne_out(nic, E8390_NODMA | E8390_PAGE1 | E8390_STOP, NE_CMD);
	uint8_t regd = ne_in(nic, 0x0d);
	ne_out(nic, 0xff, 0x0d);
	ne_out(nic, E8390_NODMA, NE_CMD);
	ne_in(nic, EN0_COUNTER0); // clear the counter by reading
	if (ne_in(nic, EN0_COUNTER0) != 0) {
		ne_out(nic, regd, 0x0d);
		return -1;
	}
	ne_out(nic, ne_in(nic, NE_RESET), NE_RESET);
	if (ne2k_wait_isr(nic, ENISR_RESET))
		return -1;
	ne_out(nic, 0xff, EN0_ISR);
	static const uint8_t seq[][2] = {
		{ E8390_NODMA | E8390_STOP, NE_CMD }, { DCR_WORD, EN0_DCFG }, { 0, EN0_RCNTLO }, { 0, EN0_RCNTHI },
		{ 0, EN0_IMR }, { 0xff, EN0_ISR }, { E8390_RXOFF, EN0_RXCR }, { E8390_TXOFF, EN0_TXCR },
		{ 32, EN0_RCNTLO }, { 0, EN0_RCNTHI }, { 0, EN0_RSARLO }, { 0, EN0_RSARHI },
		{ E8390_RREAD | E8390_START, NE_CMD },
	};
	for (unsigned i = 0; i < sizeof seq / sizeof seq[0]; i++)
		ne_out(nic, seq[i][0], seq[i][1]);
	uint8_t prom[32];
	for (int i = 0; i < 32; i++)
		prom[i] = inb(nic->io + NE_DATAPORT); // word mode: one byte of each doubled pair
	memcpy(nic->mac, prom, 6);
	return 0;
}

// NS8390_init(dev, 1) with ne2k-pci's ring, then ei_open's start (RCR accepts broadcast).
static int ne2k_init(struct ne2k *nic)
{
	ne_out(nic, E8390_NODMA | E8390_STOP, NE_CMD);
	ne_out(nic, DCR_WORD, EN0_DCFG);
	ne_out(nic, 0, EN0_RCNTLO);
	ne_out(nic, 0, EN0_RCNTHI);
	ne_out(nic, E8390_RXOFF, EN0_RXCR);
	ne_out(nic, E8390_TXOFF, EN0_TXCR);
	ne_out(nic, NESM_START_PG, EN0_TPSR);
	ne_out(nic, RX_START_PG, EN0_STARTPG);
	ne_out(nic, NESM_STOP_PG - 1, EN0_BOUNDARY);
	ne_out(nic, NESM_STOP_PG, EN0_STOPPG);
	ne_out(nic, 0xff, EN0_ISR);
	ne_out(nic, 0, EN0_IMR);
	ne_out(nic, E8390_NODMA | E8390_PAGE1 | E8390_STOP, NE_CMD);
	for (int i = 0; i < 6; i++) {
		ne_out(nic, nic->mac[i], EN1_PHYS + i);
		if (ne_in(nic, EN1_PHYS + i) != nic->mac[i])
			return -1; // "Hw. address read/write mismap"
	}
	ne_out(nic, RX_START_PG, EN1_CURPAG);
	ne_out(nic, E8390_NODMA | E8390_STOP, NE_CMD);
	nic->current_page = RX_START_PG;
	nic->tx_slot = 0;
	ne_out(nic, 0xff, EN0_ISR);
	ne_out(nic, ENISR_ALL, EN0_IMR);
	ne_out(nic, E8390_NODMA | E8390_START, NE_CMD);
	ne_out(nic, E8390_TXCONFIG, EN0_TXCR);
	// do_set_multicast_list: MAR all zero (read back), then RCR.
	ne_out(nic, E8390_NODMA | E8390_PAGE1, NE_CMD);
	for (int i = 0; i < 8; i++) {
		ne_out(nic, 0, EN1_MULT + i);
		if (ne_in(nic, EN1_MULT + i) != 0)
			return -1;
	}
	ne_out(nic, E8390_NODMA, NE_CMD);
	ne_out(nic, E8390_RXCONFIG, EN0_RXCR);
	return 0;
}

// Starts ne2k_pci_block_output: remote write of `count` bytes at `page`; the caller sends the data.
static void ne2k_remote_write_setup(struct ne2k *nic, unsigned count, uint8_t page)
{
	ne_out(nic, E8390_NODMA | E8390_START, NE_CMD);
	ne_out(nic, (uint8_t)count, EN0_RCNTLO);
	ne_out(nic, (uint8_t)(count >> 8), EN0_RCNTHI);
	ne_out(nic, 0, EN0_RSARLO);
	ne_out(nic, page, EN0_RSARHI);
	ne_out(nic, E8390_RWRITE | E8390_START, NE_CMD);
}

// ne2k_pci_block_output: outsl plus a 16-bit tail, then RDC. `buf` has room for count rounded up.
static int ne2k_block_output(struct ne2k *nic, const uint8_t *buf, unsigned count, uint8_t page)
{
	if (count & 1)
		count++;
	ne2k_remote_write_setup(nic, count, page);
	outsl(nic->io + NE_DATAPORT, buf, count >> 2);
	if (count & 3)
		outw((uint16_t)(buf[count & ~3u] | buf[(count & ~3u) + 1] << 8), nic->io + NE_DATAPORT);
	return ne2k_wait_isr(nic, ENISR_RDC);
}

// ei_start_xmit: pad to ETH_ZLEN, upload to the free slot with IMR masked, trigger the send.
// PTX or TXE then arrives as an interrupt (or in ISR when polling). 0 when triggered.
static int ne2k_start_xmit(struct ne2k *nic, const uint8_t *frame, unsigned len)
{
	uint8_t buf[ETH_FRAME_MAX + 4] = { 0 };
	if (len > ETH_FRAME_MAX)
		return -1;
	memcpy(buf, frame, len);
	unsigned send_len = len < ETH_ZLEN ? ETH_ZLEN : len;
	uint8_t page = (uint8_t)(NESM_START_PG + (nic->tx_slot ? TX_PAGES / 2 : 0));
	nic->tx_slot ^= 1;
	ne_out(nic, 0, EN0_IMR);
	if (ne2k_block_output(nic, buf, send_len, page)) {
		fprintf(stderr, "ne2k: timeout waiting for Tx RDC\n");
		ne_out(nic, ENISR_ALL, EN0_IMR);
		return -1;
	}
	ne_out(nic, E8390_NODMA, NE_CMD); // NS8390_trigger_send
	if (ne_in(nic, NE_CMD) & E8390_TRANS) {
		fprintf(stderr, "ne2k: trigger_send() called with the transmitter busy\n");
		ne_out(nic, ENISR_ALL, EN0_IMR);
		return -1;
	}
	ne_out(nic, (uint8_t)send_len, EN0_TCNTLO);
	ne_out(nic, (uint8_t)(send_len >> 8), EN0_TCNTHI);
	ne_out(nic, page, EN0_TPSR);
	ne_out(nic, E8390_NODMA | E8390_TRANS | E8390_START, NE_CMD);
	ne_out(nic, ENISR_ALL, EN0_IMR);
	return 0;
}

// ne2k_pci_get_8390_hdr: the 4-byte ring header at `page` through one inl.
static uint32_t ne2k_get_hdr(struct ne2k *nic, uint8_t page)
{
	ne_out(nic, E8390_NODMA | E8390_START, NE_CMD);
	ne_out(nic, 4, EN0_RCNTLO);
	ne_out(nic, 0, EN0_RCNTHI);
	ne_out(nic, 0, EN0_RSARLO);
	ne_out(nic, page, EN0_RSARHI);
	ne_out(nic, E8390_RREAD | E8390_START, NE_CMD);
	uint32_t h = inl(nic->io + NE_DATAPORT);
	ne_out(nic, ENISR_RDC, EN0_ISR);
	return h;
}

// ne2k_pci_block_input: insl plus a 16-bit and an 8-bit tail; the remote DMA wraps at PSTOP.
static void ne2k_block_input(struct ne2k *nic, uint8_t *out, unsigned count, unsigned ring_offset)
{
	ne_out(nic, E8390_NODMA | E8390_START, NE_CMD);
	ne_out(nic, (uint8_t)count, EN0_RCNTLO);
	ne_out(nic, (uint8_t)(count >> 8), EN0_RCNTHI);
	ne_out(nic, (uint8_t)ring_offset, EN0_RSARLO);
	ne_out(nic, (uint8_t)(ring_offset >> 8), EN0_RSARHI);
	ne_out(nic, E8390_RREAD | E8390_START, NE_CMD);
	insl(nic->io + NE_DATAPORT, out, count >> 2);
	asm volatile("" : : : "memory"); // glibc's insl has no memory clobber
	unsigned at = count & ~3u;
	if (count & 2) {
		uint16_t w = inw(nic->io + NE_DATAPORT);
		out[at++] = (uint8_t)w;
		out[at++] = (uint8_t)(w >> 8);
	}
	if (count & 1)
		out[at] = inb(nic->io + NE_DATAPORT);
	ne_out(nic, ENISR_RDC, EN0_ISR);
}

typedef void (*ne2k_rx_fn)(const uint8_t *frame, unsigned len);

// ei_receive: every frame from BNRY+1 up to CURR (at most 9 per call, as Linux), then PRX/RXE
// acked. Returns 1 when it stopped at CURR, 0 when frames are left (the caller comes back: a
// full ring sets no new PRX on a card that drops when full, as QEMU's does).
static int ne2k_receive(struct ne2k *nic, ne2k_rx_fn deliver)
{
	int drained = 0;
	static uint8_t frame[ETH_FRAME_MAX + 8];
	const unsigned num_pages = NESM_STOP_PG - RX_START_PG;
	for (int n = 1; n < 10; n++) {
		ne_out(nic, E8390_NODMA | E8390_PAGE1, NE_CMD);
		uint8_t rxing = ne_in(nic, EN1_CURPAG);
		ne_out(nic, E8390_NODMA, NE_CMD);
		unsigned this_frame = ne_in(nic, EN0_BOUNDARY) + 1u;
		if (this_frame >= NESM_STOP_PG)
			this_frame = RX_START_PG;
		if (this_frame == rxing) {
			drained = 1;
			break;
		}
		uint32_t h = ne2k_get_hdr(nic, (uint8_t)this_frame);
		unsigned status = h & 0xff, hnext = (h >> 8) & 0xff, pkt_len = (h >> 16) - 4;
		unsigned next = this_frame + 1 + ((pkt_len + 4) >> 8);
		if (hnext != next && hnext != next + 1 && hnext != next - num_pages && hnext != next + 1 - num_pages) {
			// "mismatched read page pointers": resynchronise at CURR.
			nic->rx_errors++;
			nic->current_page = rxing;
			ne_out(nic, (uint8_t)(nic->current_page - 1), EN0_BOUNDARY);
			continue;
		}
		if (pkt_len < 60 || pkt_len > 1518)
			nic->rx_errors++; // bogus packet size
		else if ((status & 0x0f) == ENRSR_RXOK) {
			ne2k_block_input(nic, frame, pkt_len, (this_frame << 8) + 4);
			deliver(frame, pkt_len);
		} else
			nic->rx_errors++;
		if (hnext >= NESM_STOP_PG)
			hnext = RX_START_PG;
		nic->current_page = (uint8_t)hnext;
		ne_out(nic, (uint8_t)(hnext - 1), EN0_BOUNDARY);
	}
	ne_out(nic, ENISR_RX | ENISR_RX_ERR, EN0_ISR);
	return drained;
}

#endif
