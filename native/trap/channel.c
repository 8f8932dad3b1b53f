// The peer side of the channel protocol (src/channel/PROTOCOL.md) over a Unix stream
// socket: hello/welcome at load time, then one `acc` frame per trapped access, answered
// by `rep`. `irq`, `dmar`, `dmaw`, `reset`, `err` and `bye` are handled wherever they
// arrive: inside an access round trip, or in the reader thread when no access is in
// flight. A futex lock keeps frames whole; everything here is async-signal-safe.
#include "muxtrap.h"
#include "msgpack.h"
#include "wire.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (1u << 20) // PROTOCOL.md: 1..1 MiB

static int sock = -1;
static uint64_t seq;
static int closing; // set by mt_chan_bye: the end of the connection is expected
static int lockw; // 0 free, 1 held, 2 held with waiters ("Futexes Are Tricky", mutex 2)
static uint8_t rx[2 * (MAX_FRAME + 4)];
static uint8_t tx[MAX_FRAME + 4];

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

static void lost(const char *why)
{
	struct mt_msg m = { .n = 0 };
	msg_s(&m, "muxtrap: channel to the supervisor lost (");
	msg_s(&m, why);
	msg_s(&m, "); exiting\n");
	msg_out(&m, 2);
	_exit(MT_EXIT_CHANNEL);
}

// A frame: 4-byte little-endian length, then the msgpack map. w writes after the header.
static struct mp_w frame_begin(void)
{
	return (struct mp_w){ tx + 4, tx + sizeof tx, 0 };
}

static int frame_send(struct mp_w *w)
{
	if (w->overflow)
		return -1;
	uint32_t n = (uint32_t)(w->p - (tx + 4));
	tx[0] = (uint8_t)n, tx[1] = (uint8_t)(n >> 8), tx[2] = (uint8_t)(n >> 16), tx[3] = (uint8_t)(n >> 24);
	// send, not write: a closed socket must give EPIPE and our message, not a silent SIGPIPE.
	const uint8_t *p = tx;
	size_t left = n + 4;
	while (left) {
		ssize_t k = send(sock, p, left, MSG_NOSIGNAL);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return -1;
		p += k;
		left -= (size_t)k;
	}
	return 0;
}

// Buffered receive: one recv() usually brings a whole `rep` (and any irq before it).
static size_t rb_start, rb_end;

static int buffered_frame(uint32_t *n)
{
	size_t have = rb_end - rb_start;
	if (have < 4)
		return 0;
	const uint8_t *h = rx + rb_start;
	*n = h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24;
	return have >= 4 + (size_t)*n;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t); // vDSO, async-signal-safe
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Reads more bytes; spins with non-blocking reads for up to spin_ns first, since the
// answer usually comes within microseconds and a sleeping thread wakes up slowly.
static int fill(uint64_t spin_ns)
{
	if (rb_start == rb_end)
		rb_start = rb_end = 0;
	if (sizeof rx - rb_end < MAX_FRAME + 4 - (rb_end - rb_start)) { // make room for a whole frame
		memmove(rx, rx + rb_start, rb_end - rb_start);
		rb_end -= rb_start;
		rb_start = 0;
	}
	uint64_t until = spin_ns ? now_ns() + spin_ns : 0;
	for (;;) {
		int spin = until && now_ns() < until;
		ssize_t k = recv(sock, rx + rb_end, sizeof rx - rb_end, spin ? MSG_DONTWAIT : 0);
		if (k > 0) {
			rb_end += (size_t)k;
			return 0;
		}
		if (k == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (errno != EINTR && errno != EAGAIN)
			return -1;
	}
}

static uint64_t spin_ns;

static int recv_frame(struct mt_wire *m)
{
	uint32_t n = 0;
	while (!buffered_frame(&n)) {
		if (rb_end - rb_start >= 4 && (n == 0 || n > MAX_FRAME)) {
			errno = EPROTO;
			return -1;
		}
		if (fill(spin_ns))
			return -1;
	}
	const uint8_t *body = rx + rb_start + 4;
	rb_start += 4 + (size_t)n;
	if (mt_wire_parse(body, n, m)) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

static const char *recv_why(void)
{
	return errno == ECONNRESET ? "closed by the supervisor"
		: errno == EBADMSG ? "malformed frame from the supervisor"
		: errno == EPROTO ? "frame length out of range" : "receive failed";
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
		uint8_t *mem = read && m->n > MAX_FRAME - 64 ? NULL : dma_at(m->a, read ? m->n : m->blen);
		struct mp_w w = frame_begin();
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
		return frame_send(&w);
	}
	if (!strcmp(m->t, "err")) {
		say_remote_error(m);
		return -1;
	}
	if (!strcmp(m->t, "bye"))
		return -1;
	return 0; // reset, welcome repeats, unknown types: nothing to do here
}

int mt_chan_open(const char *path, const char *guest, uint64_t spin_us)
{
	spin_ns = spin_us * 1000;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		mt_perror("MUXVISOR_SOCKET too long:", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		mt_perror("socket(AF_UNIX)", NULL);
		return -1;
	}
	while (connect(sock, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINTR)
			continue;
		mt_perror("connect", path);
		return -1;
	}
	struct mp_w w = frame_begin();
	mp_map(&w, mt_dma.mem ? 5 : 4);
	mp_str(&w, "t"), mp_str(&w, "hello");
	mp_str(&w, "v"), mp_uint(&w, 1);
	mp_str(&w, "guest"), mp_str(&w, guest);
	mp_str(&w, "caps"), mp_arr(&w, mt_dma.mem ? 5 : 4);
	mp_str(&w, "pio"), mp_str(&w, "mmio"), mp_str(&w, "irq"), mp_str(&w, "string");
	if (mt_dma.mem)
		mp_str(&w, "dma"); // fifth cap
	if (mt_dma.mem) {
		mp_str(&w, "dma");
		mp_map(&w, 3);
		mp_str(&w, "path"), mp_str(&w, mt_dma.path);
		mp_str(&w, "base"), mp_uint(&w, mt_dma.base);
		mp_str(&w, "size"), mp_uint(&w, mt_dma.size);
	}
	if (frame_send(&w)) {
		mt_perror("send hello to", path);
		return -1;
	}
	for (;;) {
		struct mt_wire m;
		if (recv_frame(&m)) {
			mt_perror("waiting for welcome from", path);
			return -1;
		}
		if (!strcmp(m.t, "welcome"))
			return 0;
		if (handle_async(&m))
			return -1;
	}
}

int mt_chan_access(const struct mt_acc *a, struct mt_rep *r)
{
	static const char *const spaces[] = { "pio", "mmio", "pcicfg" };
	lock();
	uint64_t id = ++seq;
	struct mp_w w = frame_begin();
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
	if (frame_send(&w))
		lost("send failed");
	for (;;) {
		struct mt_wire m;
		if (recv_frame(&m))
			lost(recv_why());
		if (!strcmp(m.t, "rep") && m.id == id) {
			r->value = m.v;
			r->refused = m.e != NULL;
			if (r->data) {
				uint32_t want = a->count * a->size;
				memset(r->data, 0xff, want); // a refused or short answer reads all-ones
				memcpy(r->data, m.b, m.blen < want ? m.blen : want);
			}
			break;
		}
		if (handle_async(&m))
			lost(!strcmp(m.t, "err") ? "error from the supervisor" : "bye from the supervisor");
	}
	// Frames that came behind the rep in the same read: the reader thread would not
	// wake for them, since the socket holds no more data.
	uint32_t n;
	while (buffered_frame(&n)) {
		struct mt_wire m;
		if (recv_frame(&m) || handle_async(&m))
			lost("bad frame after a reply");
	}
	unlock();
	return 0;
}

// Feeds irq (and dma) messages that arrive while no access is in flight.
static void *reader(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			lost("poll failed");
		}
		if (__atomic_load_n(&closing, __ATOMIC_ACQUIRE))
			return NULL;
		lock();
		// An access may have consumed the data while we waited for the lock.
		p.revents = 0;
		uint32_t n;
		if (buffered_frame(&n) || poll(&p, 1, 0) == 1) {
			struct mt_wire m;
			int bad = recv_frame(&m) ? 1 : handle_async(&m) ? 2 : 0;
			if (bad && __atomic_load_n(&closing, __ATOMIC_ACQUIRE)) {
				unlock();
				return NULL;
			}
			if (bad == 1)
				lost(recv_why());
			if (bad == 2)
				lost(!strcmp(m.t, "err") ? "error from the supervisor" : "bye from the supervisor");
		}
		unlock();
	}
	return NULL;
}

static int reader_started;

// In a fork()ed child: the parent's connection, lock and reader thread are not ours.
void mt_chan_forget(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	lockw = 0;
	rb_start = rb_end = 0;
	reader_started = 0;
	closing = 0;
}

void mt_chan_start_reader(void)
{
	int *started = &reader_started;
	if (sock < 0 || __atomic_exchange_n(started, 1, __ATOMIC_ACQ_REL))
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
	if (sock < 0)
		return;
	__atomic_store_n(&closing, 1, __ATOMIC_RELEASE);
	lock();
	struct mp_w w = frame_begin();
	mp_map(&w, 2);
	mp_str(&w, "t"), mp_str(&w, "bye");
	mp_str(&w, "reason"), mp_str(&w, reason);
	frame_send(&w);
	unlock();
}
