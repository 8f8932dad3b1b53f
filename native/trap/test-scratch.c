// A user-mode driver for muxvisor's scratch device (src/devices/scratch.ts, PCI
// 1b36:0005), written the ordinary way: find it by a conf1 scan, port I/O on BAR0, MMIO
// by mapping its sysfs resource1, interrupts through /dev/uio0, DMA from the memory of
// /dev/muxvisor-dma. Run by test/trap-supervisor.test.ts against the real supervisor.
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <unistd.h>

#define SCR_ID 0x00          // ro: "SCR1"
#define SCR_DATA0 0x04       // rw: scratch; fill byte for DMA fill
#define SCR_DOORBELL 0x0c    // w: latch cookie, raise the IRQ
#define SCR_COOKIE 0x10      // ro: last doorbell value
#define SCR_IRQ_STATUS 0x14  // r: pending; w: acknowledge
#define SCR_DMA_ADDR 0x18    // rw: bus address
#define SCR_DMA_LEN 0x1c     // rw: byte count
#define SCR_DMA_CMD 0x20     // w: 1 sum, 2 fill
#define SCR_DMA_RESULT 0x24  // ro: sum / 1 / all-ones
#define SCRATCH_MAGIC 0x53435231u

static int failures, uio;

static void check(const char *what, uint64_t got, uint64_t want)
{
	printf("%s %s: got 0x%llx want 0x%llx\n", got == want ? "ok" : "FAIL", what, (unsigned long long)got,
	       (unsigned long long)want);
	failures += got != want;
}

static uint32_t conf1_read(unsigned dev, unsigned reg)
{
	outl(0x80000000u | dev << 11 | reg, 0xcf8);
	return inl(0xcfc);
}

static uint32_t wait_irq(void)
{
	uint32_t count = 0;
	struct pollfd p = { .fd = uio, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1 || read(uio, &count, 4) != 4) {
		fprintf(stderr, "test-scratch: no interrupt\n");
		exit(1);
	}
	return count;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (iopl(3)) {
		perror("iopl");
		return 1;
	}
	unsigned dev = 32;
	for (unsigned d = 0; d < 32 && dev == 32; d++)
		if (conf1_read(d, 0) == (0x0005u << 16 | 0x1b36))
			dev = d;
	if (dev == 32) {
		fprintf(stderr, "test-scratch: no 1b36:0005 on bus 0\n");
		return 1;
	}
	uint16_t io = (uint16_t)(conf1_read(dev, 0x10) & ~3u); // BAR0: I/O
	printf("scratch at 00:%02x.0, io 0x%x\n", dev, io);
	check("ID register", inl(io + SCR_ID), SCRATCH_MAGIC);

	char path[80];
	snprintf(path, sizeof path, "/sys/bus/pci/devices/0000:00:%02x.0/resource1", dev);
	int fd = open(path, O_RDWR | O_SYNC);
	volatile uint8_t *mem = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if ((void *)mem == MAP_FAILED) {
		perror(path);
		return 1;
	}
	*(volatile uint32_t *)(mem + 0x40) = 0xdeadbeef;
	*(volatile uint16_t *)(mem + 0x44) = 0x1234;
	mem[0x46] = 0x56;
	check("MMIO dword", *(volatile uint32_t *)(mem + 0x40), 0xdeadbeef);
	check("MMIO bytes", *(volatile uint32_t *)(mem + 0x44) & 0xffffff, 0x561234);

	uio = open("/dev/uio0", O_RDWR);
	if (uio < 0) {
		perror("/dev/uio0");
		return 1;
	}
	outl(0xc0ffee, io + SCR_DOORBELL);
	check("doorbell interrupt count", wait_irq(), 1);
	check("cookie", inl(io + SCR_COOKIE), 0xc0ffee);
	outl(1, io + SCR_IRQ_STATUS);

	int dfd = open("/dev/muxvisor-dma", O_RDWR);
	uint8_t *dma = dfd < 0 ? MAP_FAILED : mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	if (dma == MAP_FAILED || !getenv("MUXVISOR_DMA_BASE")) {
		perror("/dev/muxvisor-dma");
		return 1;
	}
	uint64_t base = strtoull(getenv("MUXVISOR_DMA_BASE"), NULL, 0);
	uint32_t sum = 0;
	for (int i = 0; i < 1000; i++)
		sum += dma[0x1000 + i] = (uint8_t)(i * 7);
	outl((uint32_t)(base + 0x1000), io + SCR_DMA_ADDR);
	outl(1000, io + SCR_DMA_LEN);
	outl(1, io + SCR_DMA_CMD);
	check("DMA sum interrupt count", wait_irq(), 2);
	check("DMA sum of our memory", inl(io + SCR_DMA_RESULT), sum);
	outl(1, io + SCR_IRQ_STATUS);
	outl(0xab, io + SCR_DATA0);
	outl((uint32_t)(base + 0x100), io + SCR_DMA_ADDR);
	outl(16, io + SCR_DMA_LEN);
	outl(2, io + SCR_DMA_CMD);
	check("DMA fill interrupt count", wait_irq(), 3);
	check("DMA fill result", inl(io + SCR_DMA_RESULT), 1);
	check("DMA fill reached our memory", dma[0x100] | (uint64_t)dma[0x10f] << 8 | (uint64_t)dma[0x110] << 16, 0xabab);
	printf("%d failures\n", failures);
	return failures ? 1 : 0;
}
