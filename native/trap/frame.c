// Framing of the channel (src/channel/PROTOCOL.md "Framing") over the connected Unix
// socket: a 4-byte little-endian length, then one msgpack map. Sending is one static
// buffer, receiving a buffered reader, so that one recv() usually brings a whole `rep`
// and any irq before it. Callers hold the channel lock; async-signal-safe.
#include "muxtrap.h"
#include "frame.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_FRAME MT_MAX_FRAME

int mt_sock = -1;
uint32_t mt_frames;
uint64_t mt_frame_spin_ns;
static uint8_t rx[2 * (MAX_FRAME + 4)];
static uint8_t tx[MAX_FRAME + 4];

// A frame: 4-byte little-endian length, then the msgpack map. w writes after the header.
struct mp_w mt_frame_begin(void)
{
	return (struct mp_w){ tx + 4, tx + sizeof tx, 0 };
}

int mt_frame_send(struct mp_w *w)
{
	if (w->overflow)
		return -1;
	uint32_t n = (uint32_t)(w->p - (tx + 4));
	tx[0] = (uint8_t)n, tx[1] = (uint8_t)(n >> 8), tx[2] = (uint8_t)(n >> 16), tx[3] = (uint8_t)(n >> 24);
	// send, not write: a closed socket must give EPIPE and our message, not a silent SIGPIPE.
	const uint8_t *p = tx;
	size_t left = n + 4;
	while (left) {
		ssize_t k = send(mt_sock, p, left, MSG_NOSIGNAL);
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

int mt_frame_buffered(uint32_t *n)
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
		ssize_t k = recv(mt_sock, rx + rb_end, sizeof rx - rb_end, spin ? MSG_DONTWAIT : 0);
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


int mt_frame_recv(struct mt_wire *m)
{
	uint32_t n = 0;
	while (!mt_frame_buffered(&n)) {
		if (rb_end - rb_start >= 4 && (n == 0 || n > MAX_FRAME)) {
			errno = EPROTO;
			return -1;
		}
		if (fill(mt_frame_spin_ns))
			return -1;
	}
	const uint8_t *body = rx + rb_start + 4;
	rb_start += 4 + (size_t)n;
	mt_frames++;
	if (mt_wire_parse(body, n, m)) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

const char *mt_frame_why(void)
{
	return errno == ECONNRESET ? "closed by the supervisor"
		: errno == EBADMSG ? "malformed frame from the supervisor"
		: errno == EPROTO ? "frame length out of range" : "receive failed";
}

// In a fork()ed child, or after the connection ended: nothing buffered, nothing counted.
void mt_frame_reset(void)
{
	rb_start = rb_end = 0;
	mt_frames = 0;
}
