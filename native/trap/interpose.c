// The libc functions the shim replaces (LD_PRELOAD), and its constructor.
//  - iopl/ioperm succeed and grant nothing, so every in/out faults into handler.c;
//  - open of /dev/mem, /sys/bus/pci/devices/*/resourceN or MUXVISOR_MMIO_PATH gives a
//    BAR fd whose mmap is a PROT_NONE region that traps (handler.c forwards it as mmio);
//  - open of MUXVISOR_UIO_PATH (/dev/uio0) gives the interrupt fd (irq.c);
//  - open of MUXVISOR_DMA_PATH (/dev/muxvisor-dma) gives the shared DMA memory;
//  - sigaction/signal(SIGSEGV) are recorded, so the program's own handler still runs
//    for faults that are not ours.
#include "muxtrap.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PCI_CONFIG_ADDRESS 0xCF8 // conf1 mechanism: address latch
#define PCI_CONFIG_DATA 0xCFC    // conf1 mechanism: data window
#define PCI_BASE_ADDRESS_0 0x10  // config offset of BAR0

int (*mt_real_sigaction)(int, const struct sigaction *, struct sigaction *);
static int (*real_openat)(int, const char *, int, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int (*real_close)(int);

// What an intercepted BAR fd stands for: bus address of file offset 0.
enum bar_kind { BAR_NONE, BAR_PHYS, BAR_RESOURCE };
static struct {
	uint8_t kind;
	uint64_t bus;
} bar_fds[1024];

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

static void resolve(void)
{
	if (real_openat)
		return;
	mt_real_sigaction = dlsym(RTLD_NEXT, "sigaction");
	real_mmap = dlsym(RTLD_NEXT, "mmap");
	real_munmap = dlsym(RTLD_NEXT, "munmap");
	real_close = dlsym(RTLD_NEXT, "close");
	real_openat = dlsym(RTLD_NEXT, "openat");
}

// Bus address of BAR n of a function, read through the conf1 ports like a driver would;
// the program's own CONFIG_ADDRESS latch is put back afterwards.
static uint64_t bar_address(unsigned bus, unsigned dev, unsigned fn, unsigned n)
{
	uint32_t lo, hi = 0;
	struct mt_acc a = { MT_PIO, PCI_CONFIG_ADDRESS, 4, 0, 0, 1, NULL };
	struct mt_rep r = { 0, NULL, 0 };
	mt_access(&a, &r);
	uint32_t latch = (uint32_t)r.value;
	a.write = 1;
	uint32_t cfg = 0x80000000u | bus << 16 | dev << 11 | fn << 8;
	a.value = cfg | (PCI_BASE_ADDRESS_0 + 4 * n);
	mt_access(&a, &r);
	a = (struct mt_acc){ MT_PIO, PCI_CONFIG_DATA, 4, 0, 0, 1, NULL };
	mt_access(&a, &r);
	lo = (uint32_t)r.value;
	if ((lo & 0x7) == 0x4 && n < 5) { // 64-bit memory BAR: the next BAR holds the high half
		a = (struct mt_acc){ MT_PIO, PCI_CONFIG_ADDRESS, 4, 1, cfg | (PCI_BASE_ADDRESS_0 + 4 * (n + 1)), 1, NULL };
		mt_access(&a, &r);
		a = (struct mt_acc){ MT_PIO, PCI_CONFIG_DATA, 4, 0, 0, 1, NULL };
		mt_access(&a, &r);
		hi = (uint32_t)r.value;
	}
	a = (struct mt_acc){ MT_PIO, PCI_CONFIG_ADDRESS, 4, 1, latch, 1, NULL };
	mt_access(&a, &r);
	return ((uint64_t)hi << 32 | lo) & ~0xfull;
}

// Which device file a path names; *bus receives the bus address of offset 0.
static enum bar_kind bar_path(const char *path, uint64_t *bus)
{
	unsigned dom, b, d, f, n;
	char tail;
	*bus = 0;
	const char *mmio = getenv("MUXVISOR_MMIO_PATH");
	if (!strcmp(path, "/dev/mem") || (mmio && *mmio && !strcmp(path, mmio)))
		return BAR_PHYS; // offset = bus address
	if (sscanf(path, "/sys/bus/pci/devices/%x:%x:%x.%x/resource%u%c", &dom, &b, &d, &f, &n, &tail) == 5 &&
	    n < 6) {
		*bus = bar_address(b, d, f, n);
		return BAR_RESOURCE;
	}
	return BAR_NONE;
}

static int open_special(const char *path, int flags, int *handled)
{
	uint64_t bus;
	enum bar_kind kind;
	*handled = 1;
	if (!strcmp(path, env_or("MUXVISOR_UIO_PATH", "/dev/uio0"))) {
		mt_connect();
		return mt_uio_open(flags);
	}
	if (!strcmp(path, env_or("MUXVISOR_DMA_PATH", "/dev/muxvisor-dma"))) {
		mt_connect();
		if (mt_dma.fd >= 0)
			return fcntl(mt_dma.fd, F_DUPFD_CLOEXEC, 0);
		errno = ENOENT; // no supervisor, or DMA memory turned off
		return -1;
	}
	if ((kind = bar_path(path, &bus)) != BAR_NONE) {
		int fd = memfd_create("muxtrap-bar", MFD_CLOEXEC); // a real fd that stands for the BAR
		if (fd < 0 || fd >= (int)(sizeof bar_fds / sizeof bar_fds[0])) {
			mt_perror("memfd_create for", path);
			return -1;
		}
		bar_fds[fd].kind = (uint8_t)kind;
		bar_fds[fd].bus = bus;
		return fd;
	}
	*handled = 0;
	return -1;
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int handled, fd;
	resolve();
	if (path && path[0] == '/') {
		fd = open_special(path, flags, &handled);
		if (handled)
			return fd;
	}
	return real_openat(dirfd, path, flags, mode);
}

#define MODE_ARG(flags) \
	mode_t mode = 0; \
	if ((flags) & (O_CREAT | O_TMPFILE)) { \
		va_list ap; \
		va_start(ap, flags); \
		mode = va_arg(ap, mode_t); \
		va_end(ap); \
	}

int open(const char *path, int flags, ...) { MODE_ARG(flags); return do_openat(AT_FDCWD, path, flags, mode); }
int open64(const char *path, int flags, ...) { MODE_ARG(flags); return do_openat(AT_FDCWD, path, flags, mode); }
int openat(int dirfd, const char *path, int flags, ...) { MODE_ARG(flags); return do_openat(dirfd, path, flags, mode); }
int openat64(int dirfd, const char *path, int flags, ...) { MODE_ARG(flags); return do_openat(dirfd, path, flags, mode); }
int __open_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	resolve();
	if (fd < 0 || fd >= (int)(sizeof bar_fds / sizeof bar_fds[0]) || !bar_fds[fd].kind)
		return real_mmap(addr, len, prot, flags, fd, off);
	// The BAR: inaccessible memory, so every load and store faults into the handler.
	int keep = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	void *p = real_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | keep, -1, 0);
	if (p == MAP_FAILED)
		return p;
	size_t pages = (len + 4095) & ~(size_t)4095;
	mt_region_remove((uintptr_t)p, pages); // MAP_FIXED over an older region replaces it
	if (mt_region_add((uintptr_t)p, pages, bar_fds[fd].bus + (uint64_t)off)) {
		mt_perror("mmap of a device BAR: too many regions, max", "32");
		real_munmap(p, len);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	resolve();
	mt_region_remove((uintptr_t)addr, len);
	return real_munmap(addr, len);
}

int close(int fd)
{
	resolve();
	if (fd >= 0 && fd < (int)(sizeof bar_fds / sizeof bar_fds[0]))
		bar_fds[fd].kind = BAR_NONE;
	mt_uio_forget(fd);
	return real_close(fd);
}

ssize_t read(int fd, void *buf, size_t n)
{
	if (mt_uio_is(fd))
		return mt_uio_read(fd, buf, n);
	return syscall(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (mt_uio_is(fd)) // irq enable/disable (uio_pci_generic): always on here
		return n == 4 ? 4 : (errno = EINVAL, -1);
	return syscall(SYS_write, fd, buf, n);
}

int iopl(int level)
{
	(void)level; // pretend: the handler emulates every port access instead
	mt_connect();
	return 0;
}

int ioperm(unsigned long from, unsigned long num, int turn_on)
{
	(void)from, (void)num, (void)turn_on;
	mt_connect();
	return 0;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	resolve();
	if (sig == SIGSEGV)
		return mt_app_sigaction(act, old);
	return mt_real_sigaction(sig, act, old);
}

sighandler_t signal(int sig, sighandler_t h)
{
	struct sigaction sa = { .sa_handler = h, .sa_flags = SA_RESTART }, old;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

__attribute__((constructor)) static void muxtrap_init(void)
{
	resolve();
	const char *fd = getenv("MUXVISOR_TRACE_FD");
	if (fd && *fd)
		mt_trace_fd = atoi(fd);
	const char *sock = getenv("MUXVISOR_SOCKET");
	if (getenv("MUXVISOR_LOCAL_ECHO") && strcmp(getenv("MUXVISOR_LOCAL_ECHO"), "0")) {
		mt_mode = MT_MODE_ECHO;
	} else if (sock && *sock) {
		// Connect when the program first reaches for hardware (connect.c), so that
		// shells and helpers that inherit LD_PRELOAD do not each become the guest.
		mt_connect_prepare();
		mt_mode = MT_MODE_CHANNEL;
	}
	mt_install_handler();
}

__attribute__((destructor)) static void muxtrap_fini(void)
{
	mt_disconnect();
}
