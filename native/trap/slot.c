// The shared-memory fast path (README.md "Fast path"): an access is written into a slot
// of a sealed memfd the supervisor has mapped, and answered there. While the supervisor
// polls the slot (it does for a while after each access it served) no system call is
// made on either side; when it has gone back to its event loop (`asleep`) the access
// goes as an `acc` frame instead (a request posted just as it fell asleep rings the
// doorbell, a `ring` frame). We spin for the answer only briefly, then sleep on a futex
// in the slot that the supervisor wakes: on two cores a spinning shim starves it.
//
// The socket still carries irq/dmar/dmaw/err/bye. The supervisor counts the frames it
// sends (`sent`); we count those we read. Before taking an answer we read every frame
// the supervisor sent before it, so an irq raised by an access is delivered before the
// access returns, as on the socket path. Called with the channel lock held.
// Async-signal-safe: raw system calls, static memory.
#include "muxtrap.h"
#include "slot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct mt_slot_file mt_slot_file;
static struct mt_slot *slot; // non-NULL once the supervisor accepted the slot
static uint32_t seq;
static uint64_t spin_ns;
static int always; // MUXVISOR_SLOT=always: the slot even while the supervisor sleeps (tests)
#define GAP_NS 500000             // a spin iteration this long: we lost the core for a slice
#define CALM_MIN_NS 5000000ull    // acc frames this long after such a gap, doubling...
#define CALM_MAX_NS 100000000ull  // ...up to this while it recurs
static int gap_seen;
static int slot_fd = -1;      // the memfd, open while the slot is offered or in use
static const char *slot_why; // what failed in mt_slot_create

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t); // vDSO, async-signal-safe
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// The slot is a sealed memfd: it has no name anybody else could open or replace, and
// the seals (no shrinking, no growing, no more seals) let the supervisor map it without
// fearing a SIGBUS from a peer that truncates it later. The hello announces the fd
// number; the supervisor opens it as /proc/PID/fd/N, PID being what the kernel says of
// the socket's peer (SO_PEERCRED), so a peer can only offer a memfd of its own.
// -1 with errno set (nothing is left open) when the slot cannot be made: the caller then
// goes on over the socket.
int mt_slot_create(uint64_t spin_us, int use_always)
{
	spin_ns = spin_us * 1000;
	always = use_always;
	int fd = (int)syscall(SYS_memfd_create, "muxvisor-slot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		slot_why = "memfd_create";
		return -1;
	}
	const char *why = NULL;
	void *mem = MAP_FAILED;
	if (syscall(SYS_ftruncate, fd, (long)MT_SLOT_SIZE) < 0)
		why = "ftruncate";
	else if (syscall(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		why = "fcntl(F_ADD_SEALS)";
	else if ((mem = (void *)syscall(SYS_mmap, NULL, MT_SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		why = "mmap";
	if (why) {
		int e = errno;
		syscall(SYS_close, fd);
		errno = e;
		slot_why = why;
		return -1;
	}
	struct mt_slot *s = mem;
	s->asleep = 1; // until the supervisor polls, every request rings
	__atomic_store_n(&s->magic, MT_SLOT_MAGIC, __ATOMIC_RELEASE);
	mt_slot_file.mem = s;
	slot_fd = fd;
	return 0;
}

const char *mt_slot_why(void)
{
	return slot_why;
}

int mt_slot_fd(void)
{
	return slot_fd;
}

// After the welcome: the supervisor mapped the slot (or refused it). The fd stays open
// for the life of the connection (the supervisor has its own mapping by now; the fd is
// what the hello named).
void mt_slot_settle(int accepted)
{
	if (!mt_slot_file.mem)
		return;
	if (accepted) {
		slot = mt_slot_file.mem;
		return;
	}
	mt_slot_forget();
}

int mt_slot_on(void)
{
	return slot != NULL;
}

// In a fork()ed child: the parent's slot is the parent's.
void mt_slot_forget(void)
{
	if (mt_slot_file.mem)
		syscall(SYS_munmap, mt_slot_file.mem, MT_SLOT_SIZE);
	if (slot_fd >= 0)
		syscall(SYS_close, slot_fd);
	slot_fd = -1;
	mt_slot_file.mem = NULL;
	slot = NULL;
	seq = 0;
}

// Frames the supervisor sent before its last store that we have not read yet.
static int frames_behind(void)
{
	return __atomic_load_n(&slot->sent, __ATOMIC_SEQ_CST) != mt_chan_frames();
}

// Whether this thread lost its core lately (a gap of GAP_NS while it spun for an answer):
// then the cores are contended, and for a while we send `acc` frames, which block, since
// the scheduler favours a sleeper over a spinner (or a hog). A try of the fast path on
// contended cores costs scheduler slices, so the while doubles (up to CALM_MAX_NS) when
// the gap comes back soon after. Short preemptions (a kernel worker) do not count.
static int calm(struct mt_slot *s, uint64_t now)
{
	static uint64_t calm_until, calm_ns = CALM_MIN_NS;
	if (gap_seen && now >= calm_until) {
		calm_ns = now - calm_until < 4 * calm_ns ? calm_ns * 2 : CALM_MIN_NS;
		if (calm_ns > CALM_MAX_NS)
			calm_ns = CALM_MAX_NS;
		calm_until = now + calm_ns;
	}
	gap_seen = 0;
	int on = now < calm_until;
	if (__atomic_load_n(&s->calm, __ATOMIC_RELAXED) != (uint32_t)on)
		__atomic_store_n(&s->calm, (uint32_t)on, __ATOMIC_RELAXED); // tells the supervisor not to poll for us
	return on;
}

int mt_slot_access(const struct mt_acc *a, struct mt_rep *r)
{
	struct mt_slot *s = slot;
	uint64_t last = now_ns();
	// Not polling (idle, or the cores are contended): an `acc` frame costs the same two
	// wake-ups as a doorbell would, and the supervisor polls again after answering it.
	if (!always && (calm(s, last) || __atomic_load_n(&s->asleep, __ATOMIC_SEQ_CST)))
		return 1;
	uint32_t bytes = a->count * a->size, id = ++seq;
	s->space = (uint8_t)a->space, s->size = a->size, s->write = a->write;
	s->count = a->count, s->addr = a->addr;
	s->value = a->write && a->count == 1 ? a->value : 0;
	if (a->write && a->count > 1)
		memcpy(s->data, a->data, bytes);
	// Publish, then look again whether the supervisor is polling: it sets `asleep` before
	// its last look at `req` (both sequentially consistent), so one of us sees the other;
	// if it went to sleep meanwhile, the doorbell wakes it.
	__atomic_store_n(&s->req, id, __ATOMIC_SEQ_CST);
	int rang = 0;
	if (__atomic_load_n(&s->asleep, __ATOMIC_SEQ_CST) && __atomic_exchange_n(&s->asleep, 0, __ATOMIC_SEQ_CST))
		mt_chan_ring(), rang = 1;
	// Spin only where it pays: the supervisor polls and few peers compete for the cores.
	int spin = spin_ns && !rang && __atomic_load_n(&s->spin, __ATOMIC_RELAXED);
	uint64_t until = spin ? last + spin_ns : 0;
	for (;;) {
		if (frames_behind()) { // an irq (or dmar, err) came first: handle it as the socket path would
			mt_chan_pump();
			continue;
		}
		if (__atomic_load_n(&s->rep, __ATOMIC_SEQ_CST) == id) {
			if (frames_behind()) // sent before the answer: they count as before it
				continue;
			break;
		}
		uint64_t t = until ? now_ns() : 0;
		if (t && t - last >= GAP_NS) { // we lost the core meanwhile: see calm()
			gap_seen = 1;
			until = 0;
		} else if (t && t < until) {
			last = t;
			__builtin_ia32_pause();
			continue;
		}
		// Sleep until the supervisor rings the bell: it bumps `bell` after storing
		// `rep` or `sent` whenever it sees `waiting`, so a wake-up cannot be missed.
		// The timeout is for a supervisor that died (it stores nothing more, but the socket
		// then reads EOF, and pumping it ends the program as the socket path would) and for
		// a request it did not see: each timeout rings the doorbell again.
		static const struct timespec check = { 0, 200 * 1000 * 1000 };
		uint32_t b = __atomic_load_n(&s->bell, __ATOMIC_SEQ_CST);
		__atomic_store_n(&s->waiting, 1, __ATOMIC_SEQ_CST);
		long k = 0;
		if (__atomic_load_n(&s->rep, __ATOMIC_SEQ_CST) != id && !frames_behind())
			k = syscall(SYS_futex, &s->bell, FUTEX_WAIT, b, &check, NULL, 0);
		__atomic_store_n(&s->waiting, 0, __ATOMIC_SEQ_CST);
		if (k < 0 && errno == ETIMEDOUT) {
			mt_chan_pump_if_readable();
			// Still unanswered after a whole check: ring again. A request the supervisor
			// holds (the MUX stalls us) makes this a stray ring it counts and drops; one it
			// never saw (a wake-up lost anywhere between us) is taken now instead of never.
			if (__atomic_load_n(&s->rep, __ATOMIC_SEQ_CST) != id && !frames_behind())
				mt_chan_ring();
		}
		else if (k < 0 && errno != EAGAIN && errno != EINTR)
			mt_chan_lost("futex(FUTEX_WAIT) on the access slot failed");
	}
	r->value = s->result;
	r->refused = s->refused != 0;
	if (r->data) {
		if (r->refused)
			memset(r->data, 0xff, bytes); // a refused string read reads all-ones
		else
			memcpy(r->data, s->data, bytes);
	}
	return 0;
}
