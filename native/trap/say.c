// Async-signal-safe message building and whole-buffer I/O (write/read loops that
// tolerate EINTR and short transfers). No stdio: the SIGSEGV handler uses these.
#include "muxtrap.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void msg_s(struct mt_msg *m, const char *s)
{
	while (*s && m->n < sizeof m->b)
		m->b[m->n++] = *s++;
}

void msg_x(struct mt_msg *m, uint64_t v)
{
	char t[19];
	int k = 18;
	t[k] = 0;
	do {
		t[--k] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	t[--k] = 'x';
	t[--k] = '0';
	msg_s(m, t + k);
}

void msg_u(struct mt_msg *m, uint64_t v)
{
	char t[21];
	int k = 20;
	t[k] = 0;
	do {
		t[--k] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	msg_s(m, t + k);
}

void msg_bytes(struct mt_msg *m, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char t[4] = { "0123456789abcdef"[b[i] >> 4], "0123456789abcdef"[b[i] & 15], ' ', 0 };
		if (i + 1 == n)
			t[2] = 0;
		msg_s(m, t);
	}
}

void msg_out(struct mt_msg *m, int fd)
{
	int saved = errno;
	mt_write_all(fd, m->b, m->n);
	m->n = 0;
	errno = saved;
}

void mt_perror(const char *what, const char *detail)
{
	struct mt_msg m = { .n = 0 };
	const char *why = strerror(errno); // constructor/interposer context only
	msg_s(&m, "muxtrap: ");
	msg_s(&m, what);
	if (detail) {
		msg_s(&m, " ");
		msg_s(&m, detail);
	}
	msg_s(&m, ": ");
	msg_s(&m, why);
	msg_s(&m, "\n");
	msg_out(&m, 2);
}

int mt_write_all(int fd, const void *b, size_t n)
{
	const uint8_t *p = b;
	while (n) {
		// raw syscalls: the shim interposes read/write itself
		ssize_t k = syscall(SYS_write, fd, p, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int mt_read_all(int fd, void *b, size_t n)
{
	uint8_t *p = b;
	while (n) {
		ssize_t k = syscall(SYS_read, fd, p, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k == 0)
			errno = ECONNRESET;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}
