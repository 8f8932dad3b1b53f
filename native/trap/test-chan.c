// Exercises the shim's channel to a supervisor (test/trap-channel.test.ts runs it
// against a scripted peer): interrupts through the UIO fd, DMA memory shared with the
// supervisor, a BAR mapped from sysfs, long string I/O, a 64-bit MMIO read.
// Ports 0x510.. are the test peer's control registers.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PEER_IRQ_LATER 0x510  // outb: raise the IRQ line after a while (no access in flight)
#define PEER_IRQ_INSIDE 0x511 // inb: toggle the IRQ line before answering
#define PEER_DMA_CHECK 0x520  // outl bus address: the peer reads 9 bytes there, writes at +0x100
#define PEER_DMA_MSGS 0x524   // inl: the peer uses dmaw/dmar messages before answering

static int failures;

static void check(const char *what, uint64_t got, uint64_t want)
{
	printf("%s %s: got 0x%llx want 0x%llx\n", got == want ? "ok" : "FAIL", what, (unsigned long long)got,
	       (unsigned long long)want);
	failures += got != want;
}

static int uio(void)
{
	uint32_t count = 0, one = 1;
	int fd = open("/dev/uio0", O_RDWR);
	if (fd < 0) {
		perror("open /dev/uio0");
		return 2;
	}
	check("uio irq enable write", (uint64_t)write(fd, &one, 4), 4);
	outb(1, PEER_IRQ_LATER);
	check("uio read returns 4 bytes", (uint64_t)read(fd, &count, 4), 4);
	check("first interrupt count", count, 1);
	check("irq toggled inside an access", inb(PEER_IRQ_INSIDE), 0x11);
	// The edge came before the answer, so it is pending when the access returns (no wait).
	struct pollfd p = { .fd = fd, .events = POLLIN };
	check("irq inside an access pending at once", (uint64_t)poll(&p, 1, 0), 1);
	check("uio read after irq inside access", (uint64_t)read(fd, &count, 4), 4);
	check("second interrupt count", count, 2);
	return 0;
}

static int dma(void)
{
	const char *base_s = getenv("MUXVISOR_DMA_BASE");
	int fd = open("/dev/muxvisor-dma", O_RDWR);
	if (fd < 0 || !base_s) {
		perror("open /dev/muxvisor-dma");
		return 2;
	}
	uint8_t *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		perror("mmap DMA memory");
		return 2;
	}
	uint64_t base = strtoull(base_s, NULL, 0);
	memcpy(mem + 0x100, "hello dma", 9);
	outl((uint32_t)(base + 0x100), PEER_DMA_CHECK);
	check("peer wrote at +0x200", (uint64_t)memcmp(mem + 0x200, "from peer", 9), 0);
	check("dmaw/dmar answered", inl(PEER_DMA_MSGS), 1);
	check("dmaw wrote at +0x300", (uint64_t)memcmp(mem + 0x300, "via dmaw", 8), 0);
	return 0;
}

static int resource(void)
{
	int fd = open("/sys/bus/pci/devices/0000:00:03.0/resource0", O_RDWR | O_SYNC);
	if (fd < 0) {
		perror("open resource0");
		return 2;
	}
	volatile uint8_t *bar = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if ((void *)bar == MAP_FAILED) {
		perror("mmap resource0");
		return 2;
	}
	check("readl BAR0+0x10", *(volatile uint32_t *)(bar + 0x10), 0x12345678);
	check("readq BAR0+0x18", *(volatile uint64_t *)(bar + 0x18), 0x8877665544332211ull);
	*(volatile uint32_t *)(bar + 0x40) = 0xabcd;
	check("readl BAR0+0x40 after write", *(volatile uint32_t *)(bar + 0x40), 0xabcd);
	if (munmap((void *)bar, 4096))
		perror("munmap");
	return 0;
}

static int string(void)
{
	static uint16_t words[5000];
	for (int i = 0; i < 5000; i++)
		words[i] = (uint16_t)(i * 7 + 1);
	outsw(0x1f0, words, 5000); // split over several accesses by the shim
	memset(words, 0, sizeof words);
	insw(0x1f0, words, 5000);
	asm volatile("" : : : "memory"); // glibc's insw asm has no memory clobber
	int bad = 0;
	for (int i = 0; i < 5000; i++)
		bad += words[i] != (uint16_t)(i * 3);
	check("insw of 5000 words", (uint64_t)bad, 0);
	return 0;
}

// Parent and child each reach the supervisor over their own connection.
static int forked(void)
{
	check("parent before fork", inb(PEER_IRQ_INSIDE), 0x11);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0)
		_exit(inb(PEER_IRQ_INSIDE) == 0x11 ? 0 : 1);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	check("child exit status", (uint64_t)status, 0);
	check("parent after fork", inb(PEER_IRQ_INSIDE), 0x11);
	return 0;
}

// Several threads trap at once: every access must get its own answer.
static void *hammer(void *arg __attribute__((unused)))
{
	long bad = 0;
	for (int i = 0; i < 300; i++)
		bad += inb(PEER_IRQ_INSIDE) != 0x11;
	return (void *)bad;
}

static int threads(void)
{
	pthread_t t[4];
	long bad = 0;
	if (open("/dev/uio0", O_RDWR) < 0) { // starts the shim's irq reader thread as a rival
		perror("open /dev/uio0");
		return 2;
	}
	for (int i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, hammer, NULL)) {
			perror("pthread_create");
			return 2;
		}
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (long)r;
	}
	check("wrong answers over 4 threads x 300 inb", (uint64_t)bad, 0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ioperm(0x1f0, 8, 1) || iopl(3))
		check("ioperm/iopl", (uint64_t)errno, 0);
	const char *mode = argc > 1 ? argv[1] : "";
	int rc = !strcmp(mode, "uio") ? uio() : !strcmp(mode, "dma") ? dma() : !strcmp(mode, "resource") ? resource()
		: !strcmp(mode, "string") ? string() : !strcmp(mode, "fork") ? forked() : !strcmp(mode, "threads") ? threads() : !strcmp(mode, "inb") ? (printf("inb 0x%x\n", inb(0x80)), 0) : 2;
	if (rc == 2)
		fprintf(stderr, "usage: test-chan uio|dma|resource|string|inb\n");
	printf("%d failures\n", failures);
	return rc ? rc : failures ? 1 : 0;
}
