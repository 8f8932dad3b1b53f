// Shared by the user-mode ATA drivers (ata-pio.c, ata-dma.c): registers of the legacy
// primary channel, waiting for BSY and for interrupts through the UIO-style fd,
// IDENTIFY, and the verification pattern. Written the way an ordinary Linux user-mode
// driver is: <sys/io.h> port I/O after ioperm(), interrupts from /dev/uio0.
#ifndef ATA_COMMON_H
#define ATA_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>
#include <unistd.h>

// Command block registers (ATA/ATAPI-6, Linux include/linux/ata.h names).
#define ATA_REG_DATA 0x1F0    // 16-bit data port
#define ATA_REG_ERR 0x1F1     // error (read)
#define ATA_REG_NSECT 0x1F2   // sector count
#define ATA_REG_LBAL 0x1F3    // LBA bits 0-7
#define ATA_REG_LBAM 0x1F4    // LBA bits 8-15
#define ATA_REG_LBAH 0x1F5    // LBA bits 16-23
#define ATA_REG_DEVICE 0x1F6  // drive select, LBA bits 24-27
#define ATA_REG_STATUS 0x1F7  // status (read; clears the interrupt)
#define ATA_REG_CMD 0x1F7     // command (write)
#define ATA_REG_CTL 0x3F6     // device control (write); alternate status (read)

#define ATA_BUSY 0x80 // status: BSY
#define ATA_DRDY 0x40 // status: device ready
#define ATA_DF 0x20   // status: device fault
#define ATA_DRQ 0x08  // status: data request
#define ATA_ERR 0x01  // status: error
#define ATA_LBA 0x40  // device register: LBA addressing
#define ATA_DEVICE_OBS 0xA0 // device register: obsolete bits set by convention
#define ATA_NIEN 0x02 // device control: interrupts disabled when set

#define ATA_CMD_ID_ATA 0xEC
#define ATA_CMD_PIO_READ 0x20
#define ATA_CMD_PIO_WRITE 0x30
#define ATA_CMD_FLUSH 0xE7

#define SECTOR_WORDS 256
#define TIMEOUT_MS 20000

static int uio_fd = -1;     // the UIO-style interrupt fd, or -1 to poll
static uint32_t irq_count; // interrupts so far, as /dev/uio0 reports them

static void die(const char *what)
{
	fprintf(stderr, "ata: %s\n", what);
	exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

// Waits for the device to leave BSY, reading the alternate status (no interrupt ack).
static uint8_t wait_not_busy(const char *during)
{
	uint64_t until = now_ms() + TIMEOUT_MS;
	for (;;) {
		uint8_t st = inb(ATA_REG_CTL);
		if (!(st & ATA_BUSY))
			return st;
		if (now_ms() > until) {
			fprintf(stderr, "ata: device stays busy (status 0x%02x) during %s\n", st, during);
			exit(1);
		}
	}
}

// Waits for the next interrupt (a no-op when polling).
static void wait_irq_only(const char *during)
{
	if (uio_fd < 0)
		return;
	struct pollfd p = { .fd = uio_fd, .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		fprintf(stderr, "ata: no interrupt within %d ms during %s (status 0x%02x)\n", TIMEOUT_MS, during,
			inb(ATA_REG_CTL));
		exit(1);
	}
	if (r < 0 || read(uio_fd, &irq_count, 4) != 4) {
		perror("ata: read /dev/uio0");
		exit(1);
	}
}

// Waits for the next interrupt, then reads STATUS, which acknowledges it.
static uint8_t wait_irq(const char *during)
{
	wait_irq_only(during);
	wait_not_busy(during);
	return inb(ATA_REG_STATUS);
}

static void check_status(uint8_t st, int want_drq, const char *during)
{
	if (st & (ATA_ERR | ATA_DF) || (want_drq && !(st & ATA_DRQ))) {
		fprintf(stderr, "ata: %s failed: status 0x%02x error 0x%02x\n", during, st, inb(ATA_REG_ERR));
		exit(1);
	}
}

static void command(uint8_t cmd, uint32_t lba, unsigned count)
{
	wait_not_busy("command setup");
	outb((uint8_t)(ATA_DEVICE_OBS | ATA_LBA | ((lba >> 24) & 0x0f)), ATA_REG_DEVICE);
	outb((uint8_t)count, ATA_REG_NSECT); // 0 means 256
	outb((uint8_t)lba, ATA_REG_LBAL);
	outb((uint8_t)(lba >> 8), ATA_REG_LBAM);
	outb((uint8_t)(lba >> 16), ATA_REG_LBAH);
	outb(cmd, ATA_REG_CMD);
}

static uint16_t pattern(uint32_t seed, uint32_t pass, uint32_t lba, unsigned i)
{
	uint32_t x = lba * 2654435761u + i * 40503u + seed * 97u + pass * 7919u;
	return (uint16_t)(x ^ (x >> 16));
}

static void identify(uint32_t *sectors, char *model)
{
	uint16_t id[SECTOR_WORDS];
	wait_not_busy("identify setup");
	outb(ATA_DEVICE_OBS, ATA_REG_DEVICE);
	outb(ATA_CMD_ID_ATA, ATA_REG_CMD);
	check_status(wait_irq("IDENTIFY"), 1, "IDENTIFY");
	insw(ATA_REG_DATA, id, SECTOR_WORDS);
	asm volatile("" : : : "memory"); // glibc's insw has no memory clobber
	for (int i = 0; i < 20; i++) { // words 27-46: model, two characters per word, high byte first
		model[2 * i] = (char)(id[27 + i] >> 8);
		model[2 * i + 1] = (char)id[27 + i];
	}
	model[40] = 0;
	for (int i = 39; i >= 0 && model[i] == ' '; i--)
		model[i] = 0;
	*sectors = id[60] | (uint32_t)id[61] << 16; // words 60-61: LBA28 capacity
}


// READ SECTORS of n sectors from lba, compared with the pattern; returns bad sectors.
static unsigned read_verify(uint32_t lba, unsigned n, uint32_t seed, uint32_t pass)
{
	uint16_t buf[SECTOR_WORDS];
	unsigned bad = 0;
	command(ATA_CMD_PIO_READ, lba, n);
	for (unsigned s = 0; s < n; s++) {
		check_status(wait_irq("READ SECTORS"), 1, "READ SECTORS");
		insw(ATA_REG_DATA, buf, SECTOR_WORDS);
		asm volatile("" : : : "memory");
		for (unsigned i = 0; i < SECTOR_WORDS; i++) {
			if (buf[i] != pattern(seed, pass, lba + s, i)) {
				if (bad < 5)
					fprintf(stderr, "ata: LBA %u word %u: read 0x%04x, wrote 0x%04x\n", lba + s, i, buf[i],
						pattern(seed, pass, lba + s, i));
				bad++;
				break;
			}
		}
	}
	// Final status after the last block: the command must have ended cleanly (no DRQ left).
	wait_not_busy("READ SECTORS end");
	uint8_t st = inb(ATA_REG_STATUS);
	if (st & ATA_DRQ) {
		fprintf(stderr, "ata: READ SECTORS: DRQ still set after the last block (status 0x%02x)\n", st);
		exit(1);
	}
	check_status(st, 0, "READ SECTORS end");
	return bad;
}

// Opens the interrupt fd (or not, with polling) and enables the device's interrupt.
static void open_irq(int use_irq)
{
	if (use_irq) {
		const char *uio = getenv("MUXVISOR_UIO_PATH");
		uio_fd = open(uio ? uio : "/dev/uio0", O_RDWR | O_CLOEXEC);
		if (uio_fd < 0) {
			perror("ata: open /dev/uio0 (use --no-irq to poll)");
			exit(1);
		}
	}
	outb(use_irq ? 0 : ATA_NIEN, ATA_REG_CTL);
}

#endif
