// The connection to the supervisor, made once, when the program first reaches for
// hardware (iopl/ioperm, opening a device file, or a trapped access), so that a shell or
// helper that merely inherits LD_PRELOAD does not become the guest. Creates the DMA
// memory and the access slot (both sealed memfds, offered by descriptor number: nothing
// named that anybody could open, replace or leave behind; without a slot the socket
// carries the accesses), connects and says hello (channel.c) with the guest's token
// (MUXVISOR_TOKEN, wiped from the environment once used). Async-signal-safe: the first
// trapped access may be where it happens.
#include "muxtrap.h"
#include "slot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct mt_dma mt_dma = { .fd = -1 };

static int state; // 0 not yet, 1 connecting, 2 connected
static char sock_path[108], guest[64], token[512];
static char *token_env; // the variable's value in our environment, wiped once the token is used
static uint64_t spin_us, slot_spin_us;
static int slot_wanted, slot_always;

static void forked_child(void);

static void copy_env(char *dst, size_t n, const char *name, const char *dflt)
{
	const char *v = getenv(name);
	strncpy(dst, v && *v ? v : dflt, n - 1);
	dst[n - 1] = 0;
}

void mt_connect_prepare(void)
{
	char num[32];
	copy_env(sock_path, sizeof sock_path, "MUXVISOR_SOCKET", "");
	copy_env(guest, sizeof guest, "MUXVISOR_GUEST", "guest");
	copy_env(token, sizeof token, "MUXVISOR_TOKEN", "");
	token_env = getenv("MUXVISOR_TOKEN");
	copy_env(num, sizeof num, "MUXVISOR_SPIN_US", "0");
	spin_us = strtoull(num, NULL, 0);
	copy_env(num, sizeof num, "MUXVISOR_SLOT", "1");
	slot_wanted = strcmp(num, "0") != 0;
	slot_always = !strcmp(num, "always");
	copy_env(num, sizeof num, "MUXVISOR_SLOT_SPIN_US", "30");
	slot_spin_us = strtoull(num, NULL, 0);
	copy_env(num, sizeof num, "MUXVISOR_DMA_BASE", "0x10000000");
	mt_dma.base = strtoull(num, NULL, 0);
	copy_env(num, sizeof num, "MUXVISOR_DMA_SIZE", "0x100000");
	mt_dma.size = strtoull(num, NULL, 0);
	// The driver learns bus addresses from this (README.md): base + offset in the mapping.
	struct mt_msg m = { .n = 0 };
	msg_x(&m, mt_dma.base);
	m.b[m.n] = 0;
	setenv("MUXVISOR_DMA_BASE", m.b, 1);
	pthread_atfork(NULL, NULL, forked_child);
}

// The DMA memory is a memfd sealed against shrinking, growing and further seals, as the
// slot is (PROTOCOL.md "DMA memory"): the supervisor takes it through /proc/PID/fd/N, PID
// being what the kernel says of our socket, so nobody can swap a file in under a name.
// Where a sealed memfd cannot be made (a sandbox refusing MFD_ALLOW_SEALING), the memory is
// an unsealed memfd of our own that is not offered (said once): the supervisor then reads
// and writes it through dmar/dmaw, which channel.c answers from the same mapping.
static int dma_create(void)
{
	if (!mt_dma.size)
		return 0; // DMA memory turned off
	const char *why = NULL;
	int fd = (int)syscall(SYS_memfd_create, "muxvisor-dma", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		why = "memfd_create";
		fd = (int)syscall(SYS_memfd_create, "muxvisor-dma", MFD_CLOEXEC);
	}
	if (fd < 0) {
		mt_perror("memfd_create", "for the DMA memory");
		return -1;
	}
	if (syscall(SYS_ftruncate, fd, (long)mt_dma.size) < 0) {
		mt_perror("ftruncate", "the DMA memory");
		return -1;
	}
	if (!why && syscall(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		why = "fcntl(F_ADD_SEALS)";
	if (why) {
		struct mt_msg m = { .n = 0 };
		msg_s(&m, "muxtrap: DMA memory not shared (");
		msg_s(&m, why);
		msg_s(&m, ": ");
		msg_s(&m, strerror(errno)); // as mt_perror does: connect time, not a trapped access
		msg_s(&m, "): the supervisor reaches it through dmar/dmaw\n");
		msg_out(&m, 2);
	}
	mt_dma.shared = !why;
	void *mem = (void *)syscall(SYS_mmap, NULL, mt_dma.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		mt_perror("mmap", "the DMA memory");
		return -1;
	}
	mt_dma.mem = mem;
	mt_dma.fd = fd;
	return 0;
}

// A fork()ed child that reaches for hardware connects on its own; sharing the parent's
// socket would interleave frames. (The supervisor may refuse a second session of one guest.)
static void forked_child(void)
{
	mt_chan_forget();
	state = 0;
	if (mt_dma.mem) { // the parent's DMA memory stays the parent's
		munmap(mt_dma.mem, mt_dma.size);
		close(mt_dma.fd);
		mt_dma.mem = NULL;
		mt_dma.fd = -1;
	}
}

static void say_floating(void)
{
	static int said;
	if (__atomic_exchange_n(&said, 1, __ATOMIC_ACQ_REL))
		return;
	struct mt_msg m = { .n = 0 };
	msg_s(&m, "muxtrap: neither MUXVISOR_SOCKET nor MUXVISOR_LOCAL_ECHO is set: "
		  "port and MMIO reads return all-ones\n");
	msg_out(&m, 2);
}

// Ends the program before any welcome.
static void exit_unconnected(void)
{
	_exit(MT_EXIT_CHANNEL);
}

// The token opened the guest (it is a one-time one, or a standing secret): gone from our
// environment, so that programs started from here on do not inherit it. In place: the
// value's bytes are zeroed, which is all that is async-signal-safe.
static void forget_token(void)
{
	memset(token, 0, sizeof token);
	if (token_env)
		memset(token_env, 0, strlen(token_env));
	token_env = NULL;
}

void mt_connect(void)
{
	if (mt_mode == MT_MODE_OFF)
		say_floating();
	if (mt_mode != MT_MODE_CHANNEL || __atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2)
		return;
	int expected = 0;
	if (__atomic_compare_exchange_n(&state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (dma_create())
			_exit(MT_EXIT_CHANNEL); // the program must not go on without its hardware
		if (slot_wanted && mt_slot_create(slot_spin_us, slot_always)) {
			// The slot is only faster: without it the accesses go over the socket. Said
			// once (this runs once per connection); MUXVISOR_SLOT=always insists on it.
			struct mt_msg m = { .n = 0 };
			msg_s(&m, "muxtrap: no access slot (");
			msg_s(&m, mt_slot_why());
			msg_s(&m, ": ");
			msg_s(&m, strerror(errno)); // as mt_perror does: connect time, not a trapped access
			msg_s(&m, slot_always ? "), and MUXVISOR_SLOT=always\n" : "): accesses go over the socket\n");
			msg_out(&m, 2);
			if (slot_always)
				exit_unconnected();
		}
		if (mt_chan_open(sock_path, guest, token, spin_us))
			exit_unconnected();
		forget_token();
		__atomic_store_n(&state, 2, __ATOMIC_RELEASE);
		syscall(SYS_futex, &state, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
		return;
	}
	while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 1) // another thread is connecting
		syscall(SYS_futex, &state, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
}

void mt_disconnect(void)
{
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2)
		return;
	mt_chan_bye("exit");
}
