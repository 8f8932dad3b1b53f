// The peer side of the channel protocol (src/channel/PROTOCOL.md) over a Unix stream
// socket (framing in frame.c): hello/welcome at load time, then one `acc` frame per
// trapped access, answered by `rep`, or, when the supervisor accepted the access slot,
// one request in shared memory (slot.c). `irq`, `dmar`, `dmaw`, `reset`, `err` and `bye`
// are handled wherever they arrive: inside an access, or in the reader thread when no
// access is in flight. A futex lock keeps frames whole and serializes accesses of all
// threads; everything here is async-signal-safe.
#include "muxtrap.h"
#include "msgpack.h"
#include "wire.h"
#include "frame.h"
#include "slot.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t seq;
static int closing; // set by mt_chan_bye: the end of the connection is expected
static int lockw; // 0 free, 1 held, 2 held with waiters ("Futexes Are Tricky", mutex 2)

static void lock(void)
{
	int c = 0;
	if (__atomic_compare_exchange_n(&lockw, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(&lockw, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		syscall(SYS_futex, &lockw, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = __atomic_exchange_n(&lockw, 2, __ATOMIC_ACQUIRE);
	}
}

static void unlock(void)
{
	if (__atomic_fetch_sub(&lockw, 1, __ATOMIC_RELEASE) != 1) {
		__atomic_store_n(&lockw, 0, __ATOMIC_RELEASE);
		syscall(SYS_futex, &lockw, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

void mt_chan_lost(const char *why)
{
	struct mt_msg m = { .n = 0 };
	msg_s(&m, "muxtrap: channel to the supervisor lost (");
	msg_s(&m, why);
	msg_s(&m, "); exiting\n");
	msg_out(&m, 2);
	_exit(MT_EXIT_CHANNEL);
}

static void say_remote_error(const struct mt_wire *m)
{
	struct mt_msg o = { .n = 0 };
	char code[64] = "", text[400] = "";
	memcpy(code, m->code, m->codelen < 63 ? m->codelen : 63);
	memcpy(text, m->text, m->textlen < 399 ? m->textlen : 399);
	msg_s(&o, "muxtrap: supervisor refused us: ");
	msg_s(&o, code);
	msg_s(&o, ": ");
	msg_s(&o, text);
	msg_s(&o, "\n");
	msg_out(&o, 2);
}

// DMA requests name bus addresses inside our shared DMA region.
static uint8_t *dma_at(uint64_t a, uint64_t n)
{
	if (!mt_dma.mem || a < mt_dma.base || n > mt_dma.size || a - mt_dma.base > mt_dma.size - n)
		return NULL;
	return mt_dma.mem + (a - mt_dma.base);
}

// Messages that are not the `rep` an access waits for. Returns -1 when the
// connection must end (err, bye, or a failed answer).
static int handle_async(const struct mt_wire *m)
{
	if (!strcmp(m->t, "irq")) {
		mt_irq_level((uint32_t)m->line, m->level != 0);
		return 0;
	}
	if (!strcmp(m->t, "dmar") || !strcmp(m->t, "dmaw")) {
		int read = m->t[3] == 'r';
		// A read answer must fit one frame; the supervisor splits larger ones.
		uint8_t *mem = read && m->n > MT_MAX_FRAME - 64 ? NULL : dma_at(m->a, read ? m->n : m->blen);
		struct mp_w w = mt_frame_begin();
		mp_map(&w, !mem || read ? 3 : 2);
		mp_str(&w, "t");
		mp_str(&w, read ? "dmad" : "dmak");
		mp_str(&w, "id");
		mp_uint(&w, m->id);
		if (!mem) {
			mp_str(&w, "e");
			mp_str(&w, "outside the peer's DMA memory");
		} else if (read) {
			mp_str(&w, "b");
			mp_bin(&w, mem, (uint32_t)m->n);
		} else {
			memcpy(mem, m->b, m->blen);
		}
		return mt_frame_send(&w);
	}
	if (!strcmp(m->t, "err")) {
		say_remote_error(m);
		return -1;
	}
	if (!strcmp(m->t, "bye"))
		return -1;
	return 0; // reset, welcome repeats, unknown types: nothing to do here
}

int mt_chan_open(const char *path, const char *guest, const char *token, uint64_t spin_us)
{
	mt_frame_spin_ns = spin_us * 1000;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		mt_perror("MUXVISOR_SOCKET too long:", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	mt_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (mt_sock < 0) {
		mt_perror("socket(AF_UNIX)", NULL);
		return -1;
	}
	while (connect(mt_sock, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINTR)
			continue;
		mt_perror("connect", path);
		return -1;
	}
	struct mp_w w = mt_frame_begin();
	int dma = mt_dma.mem != NULL, slot = mt_slot_file.mem != NULL, tok = token[0] != 0;
	mp_map(&w, (uint32_t)(4 + dma + slot + tok));
	mp_str(&w, "t"), mp_str(&w, "hello");
	mp_str(&w, "v"), mp_uint(&w, 1);
	mp_str(&w, "guest"), mp_str(&w, guest);
	mp_str(&w, "caps"), mp_arr(&w, (uint32_t)(4 + dma + slot));
	mp_str(&w, "pio"), mp_str(&w, "mmio"), mp_str(&w, "irq"), mp_str(&w, "string");
	if (dma)
		mp_str(&w, "dma");
	if (slot)
		mp_str(&w, "slot");
	if (slot) {
		mp_str(&w, "slot");
		mp_map(&w, 2);
		mp_str(&w, "fd"), mp_uint(&w, (uint64_t)mt_slot_fd());
		mp_str(&w, "size"), mp_uint(&w, MT_SLOT_SIZE);
	}
	if (tok)
		mp_str(&w, "token"), mp_str(&w, token);
	if (dma) {
		mp_str(&w, "dma");
		mp_map(&w, mt_dma.shared ? 3 : 2);
		if (mt_dma.shared)
			mp_str(&w, "fd"), mp_uint(&w, (uint64_t)mt_dma.fd);
		mp_str(&w, "base"), mp_uint(&w, mt_dma.base);
		mp_str(&w, "size"), mp_uint(&w, mt_dma.size);
	}
	if (mt_frame_send(&w)) {
		mt_perror("send hello to", path);
		return -1;
	}
	for (;;) {
		struct mt_wire m;
		if (mt_frame_recv(&m)) {
			mt_perror("waiting for welcome from", path);
			return -1;
		}
		if (!strcmp(m.t, "welcome")) {
			mt_slot_settle(m.slot != 0); // a supervisor without the fast path says nothing
			return 0;
		}
		if (handle_async(&m))
			return -1;
	}
}

// Reads and handles one frame that is not an awaited `rep`: NULL, or why the channel ends.
static const char *take_frame(void)
{
	struct mt_wire m;
	if (mt_frame_recv(&m))
		return mt_frame_why();
	if (handle_async(&m))
		return !strcmp(m.t, "err") ? "error from the supervisor" : "bye from the supervisor";
	return NULL;
}

// The socket path: one `acc` frame, then frames until its `rep`.
static void socket_access(const struct mt_acc *a, struct mt_rep *r)
{
	static const char *const spaces[] = { "pio", "mmio", "pcicfg" };
	uint64_t id = ++seq;
	struct mp_w w = mt_frame_begin();
	int string = a->count > 1, bytes = a->write && string;
	mp_map(&w, (uint32_t)(7 + string + bytes));
	mp_str(&w, "t"), mp_str(&w, "acc");
	mp_str(&w, "id"), mp_uint(&w, id);
	mp_str(&w, "sp"), mp_str(&w, spaces[a->space]);
	mp_str(&w, "a"), mp_uint(&w, a->addr);
	mp_str(&w, "s"), mp_uint(&w, a->size);
	mp_str(&w, "d"), mp_str(&w, a->write ? "w" : "r");
	mp_str(&w, "v"), mp_uint(&w, a->write && !string ? a->value : 0);
	if (string)
		mp_str(&w, "n"), mp_uint(&w, a->count);
	if (bytes)
		mp_str(&w, "b"), mp_bin(&w, a->data, a->count * a->size);
	if (mt_frame_send(&w))
		mt_chan_lost("send failed");
	for (;;) {
		struct mt_wire m;
		if (mt_frame_recv(&m))
			mt_chan_lost(mt_frame_why());
		if (!strcmp(m.t, "rep") && m.id == id) {
			r->value = m.v;
			r->refused = m.e != NULL;
			if (r->data) {
				uint32_t want = a->count * a->size;
				memset(r->data, 0xff, want); // a refused or short answer reads all-ones
				memcpy(r->data, m.b, m.blen < want ? m.blen : want);
			}
			return;
		}
		if (handle_async(&m))
			mt_chan_lost(!strcmp(m.t, "err") ? "error from the supervisor" : "bye from the supervisor");
	}
}

int mt_chan_access(const struct mt_acc *a, struct mt_rep *r)
{
	lock();
	if (!mt_slot_on() || mt_slot_access(a, r))
		socket_access(a, r);
	// Frames that came behind the answer in the same read: the reader thread would not
	// wake for them, since the socket holds no more data.
	uint32_t n;
	while (mt_frame_buffered(&n))
		if (take_frame())
			mt_chan_lost("bad frame after a reply");
	unlock();
	return 0;
}

// Feeds irq (and dma) messages that arrive while no access is in flight.
static void *reader(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = { .fd = mt_sock, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			mt_chan_lost("poll failed");
		}
		if (__atomic_load_n(&closing, __ATOMIC_ACQUIRE))
			return NULL;
		lock();
		// An access may have consumed the data while we waited for the lock.
		p.revents = 0;
		uint32_t n;
		const char *why = mt_frame_buffered(&n) || poll(&p, 1, 0) == 1 ? take_frame() : NULL;
		if (why && __atomic_load_n(&closing, __ATOMIC_ACQUIRE)) {
			unlock();
			return NULL;
		}
		if (why)
			mt_chan_lost(why);
		unlock();
	}
	return NULL;
}

uint32_t mt_chan_frames(void)
{
	return mt_frames;
}

void mt_chan_pump(void)
{
	const char *why = take_frame();
	if (why)
		mt_chan_lost(why);
}

void mt_chan_pump_if_readable(void)
{
	uint32_t n;
	struct pollfd p = { .fd = mt_sock, .events = POLLIN };
	if (mt_frame_buffered(&n) || poll(&p, 1, 0) == 1)
		mt_chan_pump();
}

void mt_chan_ring(void)
{
	struct mp_w w = mt_frame_begin();
	mp_map(&w, 1);
	mp_str(&w, "t"), mp_str(&w, "ring");
	if (mt_frame_send(&w))
		mt_chan_lost("send failed");
}

static int reader_started;

// In a fork()ed child: the parent's connection, lock and reader thread are not ours.
void mt_chan_forget(void)
{
	if (mt_sock >= 0)
		close(mt_sock);
	mt_sock = -1;
	lockw = 0;
	mt_slot_forget();
	mt_frame_reset();
	reader_started = 0;
	closing = 0;
}

void mt_chan_start_reader(void)
{
	int *started = &reader_started;
	if (mt_sock < 0 || __atomic_exchange_n(started, 1, __ATOMIC_ACQ_REL))
		return;
	pthread_t t;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); // the thread inherits it: signals go elsewhere
	int err = pthread_create(&t, NULL, reader, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		errno = err;
		mt_perror("pthread_create(irq reader)", NULL);
		return;
	}
	pthread_detach(t);
}

void mt_chan_bye(const char *reason)
{
	if (mt_sock < 0)
		return;
	__atomic_store_n(&closing, 1, __ATOMIC_RELEASE);
	lock();
	struct mp_w w = mt_frame_begin();
	mp_map(&w, 2);
	mp_str(&w, "t"), mp_str(&w, "bye");
	mp_str(&w, "reason"), mp_str(&w, reason);
	mt_frame_send(&w);
	unlock();
}
