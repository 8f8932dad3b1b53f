// Interrupts the UIO way: opening the UIO device (MUXVISOR_UIO_PATH, default /dev/uio0)
// gives an eventfd that `irq` messages signal. read() of 4 bytes blocks until the next
// interrupt and returns the total interrupt count, as Linux's uio driver does
// (drivers/uio/uio.c uio_read); write() of a 4-byte 0/1 (irq mask) is accepted.
// An interrupt is a rising edge of any granted virtual IRQ line.
#include "muxtrap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_LINES 64

static int efd = -1;
static uint32_t count;            // interrupts so far (uio's event count)
static uint8_t levels[MAX_LINES];
static uint8_t is_uio[1024];      // fds the program got from opening the UIO device

static int track(int fd)
{
	if (fd < 0)
		mt_perror("dup(uio eventfd)", NULL);
	else if (fd < (int)sizeof is_uio)
		is_uio[fd] = 1;
	return fd;
}

int mt_uio_open(int flags)
{
	if (efd < 0) {
		int fd = eventfd(0, EFD_CLOEXEC | (flags & O_NONBLOCK ? EFD_NONBLOCK : 0));
		if (fd < 0) {
			mt_perror("eventfd(uio)", NULL);
			return -1;
		}
		int expected = -1;
		if (!__atomic_compare_exchange_n(&efd, &expected, fd, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			close(fd); // another thread won
		mt_chan_start_reader(); // irqs must arrive while no access is in flight
	}
	return track(dup(efd));
}

void mt_uio_forget(int fd)
{
	if (fd >= 0 && fd < (int)sizeof is_uio)
		is_uio[fd] = 0;
}

int mt_uio_is(int fd)
{
	return fd >= 0 && fd < (int)sizeof is_uio && is_uio[fd];
}

ssize_t mt_uio_read(int fd, void *buf, size_t n)
{
	uint64_t events;
	if (n < 4) {
		errno = EINVAL;
		return -1;
	}
	ssize_t k = syscall(SYS_read, fd, &events, sizeof events);
	if (k < 0)
		return -1;
	uint32_t c = __atomic_load_n(&count, __ATOMIC_ACQUIRE);
	memcpy(buf, &c, 4);
	return 4;
}

// Called from the channel (signal handler or reader thread) for each `irq` message.
void mt_irq_level(uint32_t line, int level)
{
	if (line >= MAX_LINES)
		return;
	int was = levels[line];
	levels[line] = (uint8_t)level;
	if (level && !was) {
		__atomic_add_fetch(&count, 1, __ATOMIC_ACQ_REL);
		uint64_t one = 1;
		if (efd >= 0)
			syscall(SYS_write, efd, &one, sizeof one);
	}
}
