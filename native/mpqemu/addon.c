// muxvisor_mpqemu.node: the socket and memory side of QEMU's multi-process protocol
// (x-pci-proxy-dev <-> remote; src/trap/mpqemu/ decodes and serves the messages). Node can
// neither pass descriptors over a socket, nor watch one without reading it, nor map a file:
//   socketpair() -> [ours, theirs]   AF_UNIX stream pair, both close-on-exec (spawn dup2s
//                                     `theirs` into the child under the number it is given)
//   watch(fd, cb) -> handle          frames messages off `fd` (16-byte header, then `size`
//                                     bytes) and calls cb(0, bytes, fds, flags) per message;
//                                     cb(status, header|null, fds, 0) once at the end
//                                     (EOF, truncated, oversize, -errno), then stops
//   pause(handle, paused)            stop/resume watching (while a request is served async)
//   unwatch(handle)                  stop watching and close the fd (idempotent)
//   send(fd, bytes, fds?)            one message with its descriptors (SCM_RIGHTS)
//   mapFd(fd, offset, size, seal)    ArrayBuffer over MAP_SHARED of a guest RAM fd (ram.c)
//   unmap(buffer)                    detach and munmap now
//   eventfd(), eventfdWrite(fd, n), eventfdRead(fd) -> n | 0, close(fd)   (ram.c)
//
// Watching: a uv_poll_t on the main loop calls back when the socket is readable; reads
// are MSG_DONTWAIT, a partial message is kept here until the rest arrives, so a peer that
// stalls mid-message never blocks the supervisor. Descriptors belong to the message whose
// header read brought them: the header is read alone, as QEMU's mpqemu_msg_recv does, and
// the kernel stops a stream read at the end of a segment that carried descriptors.
#include "mpqemu.h"

#define HDR_SIZE 16 // int32 cmd, 4 bytes padding, uint64 size (x86-64 MPQemuMsg)
#define MAX_BODY 192 // sizeof the data union: SyncSysmemMsg, the largest
#define MAX_FDS 8 // REMOTE_MAX_FDS
#define READS_PER_WAKE 32 // messages read per readable event before yielding to the loop
#define SEND_WAIT_MS 100 // how long a full socket may hold up one send

enum { ST_MESSAGE = 0, ST_EOF = 1, ST_TRUNCATED = 2, ST_OVERSIZE = 3 };
enum { FL_CTRUNC = 1, FL_FDS_IN_BODY = 2 }; // more fds than fit; fds after the header

napi_value mpq_fail(napi_env env, const char *what)
{
	char msg[256];
	int e = errno;
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
	napi_throw_error(env, strerrorname_np(e) ? strerrorname_np(e) : NULL, msg);
	return NULL;
}

napi_value mpq_undefined(napi_env env)
{
	napi_value u;
	napi_get_undefined(env, &u);
	return u;
}

// ---- watching a socket --------------------------------------------------------------

struct conn {
	uv_poll_t poll; // first: the uv handle's address is the conn's
	napi_env env;
	napi_ref cb;
	napi_async_context actx;
	int fd;
	int closing, finalized, poll_closed, stopped, paused;
	uint8_t buf[HDR_SIZE + MAX_BODY];
	size_t have, need; // bytes of the current message read / expected (0: header not yet read)
	int fds[MAX_FDS];
	int nfds, flags;
};

static void on_poll_closed(uv_handle_t *h)
{
	struct conn *c = (struct conn *)h;
	c->poll_closed = 1;
	if (c->finalized)
		free(c);
}

// Stop watching and close the socket; the conn is freed once libuv and JS both let go.
static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_close((uv_handle_t *)&c->poll, on_poll_closed); // removes the fd from epoll now
	close(c->fd);
	for (int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	napi_delete_reference(c->env, c->cb);
	napi_async_destroy(c->env, c->actx);
}

static void finalize_conn(napi_env env, void *data, void *hint)
{
	(void)env, (void)hint;
	struct conn *c = data;
	c->finalized = 1;
	conn_close(c);
	if (c->poll_closed)
		free(c);
}

// Hands one message (or the end) to JS. The conn may be closed by the callback.
static void deliver(struct conn *c, int status, size_t len)
{
	napi_env env = c->env;
	napi_handle_scope scope;
	napi_value cb, argv[4], recv, result;
	if (napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	napi_get_reference_value(env, c->cb, &cb);
	napi_create_int32(env, status, &argv[0]);
	if (len)
		napi_create_buffer_copy(env, len, c->buf, NULL, &argv[1]);
	else
		napi_get_null(env, &argv[1]);
	napi_create_array_with_length(env, c->nfds, &argv[2]);
	for (int i = 0; i < c->nfds; i++) {
		napi_value v;
		napi_create_int32(env, c->fds[i], &v);
		napi_set_element(env, argv[2], i, v);
	}
	napi_create_int32(env, c->flags, &argv[3]);
	c->have = c->need = 0; // the fds are JS's from here on
	c->nfds = c->flags = 0;
	napi_get_global(env, &recv);
	// make_callback runs the microtasks the callback queued, as a native event would.
	if (napi_make_callback(env, c->actx, recv, cb, 4, argv, &result) == napi_pending_exception) {
		napi_value err;
		napi_get_and_clear_last_exception(env, &err);
		napi_fatal_exception(env, err);
	}
	napi_close_handle_scope(env, scope);
}

// The end of the stream: report it once and stop watching (JS closes with unwatch).
static void finish(struct conn *c, int status)
{
	c->stopped = 1;
	uv_poll_stop(&c->poll);
	deliver(c, status, status == ST_OVERSIZE ? HDR_SIZE : 0);
}

// One recvmsg into the current message: >0 bytes read, 0 EOF, -EAGAIN, or -errno.
static ssize_t read_part(struct conn *c)
{
	size_t want = c->need ? c->need - c->have : HDR_SIZE - c->have;
	union {
		char b[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { c->buf + c->have, want };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
	ssize_t n;
	do
		n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (m.msg_flags & MSG_CTRUNC)
		c->flags |= FL_CTRUNC; // the kernel closed the ones that did not fit
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
			if (c->nfds < MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				close(fd), c->flags |= FL_CTRUNC;
		}
		if (k && c->need)
			c->flags |= FL_FDS_IN_BODY;
	}
	return n;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct conn *c = (struct conn *)h;
	if (status < 0) {
		errno = -status;
		return finish(c, -errno);
	}
	int messages = 0;
	while (!c->closing && !c->stopped && !c->paused && messages < READS_PER_WAKE) {
		ssize_t n = read_part(c);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return;
		if (n < 0)
			return finish(c, (int)n);
		if (n == 0)
			return finish(c, c->have || c->nfds ? ST_TRUNCATED : ST_EOF);
		c->have += n;
		if (!c->need) {
			if (c->have < HDR_SIZE)
				continue;
			uint64_t size;
			memcpy(&size, c->buf + 8, sizeof size);
			if (size > MAX_BODY)
				return finish(c, ST_OVERSIZE); // JS decodes the header and says why
			c->need = HDR_SIZE + size;
		}
		if (c->have == c->need) {
			messages++;
			deliver(c, ST_MESSAGE, c->need);
		}
	}
}

static struct conn *arg_conn(napi_env env, napi_value v)
{
	struct conn *c = NULL;
	if (napi_get_value_external(env, v, (void **)&c) != napi_ok || !c) {
		napi_throw_type_error(env, NULL, "expected a handle from watch()");
		return NULL;
	}
	return c;
}

static napi_value watch(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2], name, handle;
	int32_t fd;
	napi_valuetype t = napi_undefined;
	CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
	    napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
		napi_throw_type_error(env, NULL, "watch(fd: number >= 0, cb: function)");
		return NULL;
	}
	uv_loop_t *loop;
	CHECK(napi_get_uv_event_loop(env, (struct uv_loop_s **)&loop));
	CHECK(napi_create_string_utf8(env, "muxvisor.mpqemu", NAPI_AUTO_LENGTH, &name));
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return mpq_fail(env, "calloc");
	c->env = env;
	c->fd = fd;
	if (napi_create_reference(env, argv[1], 1, &c->cb) != napi_ok) {
		free(c);
		napi_throw_error(env, NULL, "napi_create_reference failed");
		return NULL;
	}
	if (napi_async_init(env, NULL, name, &c->actx) != napi_ok) {
		napi_delete_reference(env, c->cb);
		free(c);
		napi_throw_error(env, NULL, "napi_async_init failed");
		return NULL;
	}
	int r = uv_poll_init(loop, &c->poll, fd); // also makes our end O_NONBLOCK (not QEMU's)
	if (r == 0)
		r = uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_readable);
	if (r < 0) {
		napi_delete_reference(env, c->cb);
		napi_async_destroy(env, c->actx);
		if (c->poll.loop) { // initialised: libuv frees it through the close callback
			c->finalized = c->closing = 1;
			uv_close((uv_handle_t *)&c->poll, on_poll_closed);
		} else {
			free(c);
		}
		char msg[160];
		snprintf(msg, sizeof msg, "uv_poll on fd %d: %s", fd, uv_strerror(r));
		napi_throw_error(env, NULL, msg);
		return NULL;
	}
	CHECK(napi_create_external(env, c, finalize_conn, NULL, &handle));
	return handle;
}

static napi_value pause_conn(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	bool paused;
	CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	struct conn *c = argc >= 2 ? arg_conn(env, argv[0]) : NULL;
	if (!c || napi_get_value_bool(env, argv[1], &paused) != napi_ok)
		return c ? (napi_throw_type_error(env, NULL, "pause(handle, paused: boolean)"), NULL) : NULL;
	if (c->closing || c->stopped || c->paused == paused)
		return mpq_undefined(env);
	c->paused = paused;
	int r = paused ? uv_poll_stop(&c->poll) : uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_readable);
	if (r < 0) {
		napi_throw_error(env, NULL, uv_strerror(r));
		return NULL;
	}
	return mpq_undefined(env);
}

static napi_value unwatch(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	struct conn *c = argc >= 1 ? arg_conn(env, argv[0]) : NULL;
	if (!c)
		return NULL;
	conn_close(c);
	return mpq_undefined(env);
}

// ---- sending ------------------------------------------------------------------------

// Waits (bounded) for room in the socket: the proxy reads our reply at once, so a full
// socket means a peer that stopped reading; it is not allowed to hold the loop.
static int wait_writable(int fd)
{
	struct pollfd p = { fd, POLLOUT, 0 };
	int r;
	do
		r = poll(&p, 1, SEND_WAIT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = EAGAIN;
	return r > 0 ? 0 : -1;
}

static napi_value send_msg(napi_env env, napi_callback_info info)
{
	size_t argc = 3, len;
	napi_value argv[3];
	int32_t fd;
	void *data;
	uint32_t nfds = 0;
	bool is_array = false;
	CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
	    napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len == 0 ||
	    (argc >= 3 && napi_is_array(env, argv[2], &is_array) == napi_ok && is_array &&
	     (napi_get_array_length(env, argv[2], &nfds) != napi_ok || nfds > MAX_FDS + 1))) {
		napi_throw_type_error(env, NULL, "send(fd: number, bytes: Buffer (not empty), fds?: number[] (at most 9))");
		return NULL;
	}
	int more[MAX_FDS + 1]; // one more than QEMU ever sends, so tests can send too many
	for (uint32_t i = 0; i < nfds; i++) {
		napi_value v;
		if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_value_int32(env, v, &more[i]) != napi_ok || more[i] < 0) {
			napi_throw_type_error(env, NULL, "send: fds must be descriptor numbers");
			return NULL;
		}
	}
	union {
		char b[CMSG_SPACE(sizeof(int) * (MAX_FDS + 1))];
		struct cmsghdr align;
	} ctl;
	size_t off = 0;
	while (off < len) {
		struct iovec iov = { (char *)data + off, len - off };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (off == 0 && nfds) { // descriptors ride on the first byte, as QEMU sends them
			memset(&ctl, 0, sizeof ctl);
			m.msg_control = ctl.b;
			m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			struct cmsghdr *h = CMSG_FIRSTHDR(&m);
			h->cmsg_level = SOL_SOCKET;
			h->cmsg_type = SCM_RIGHTS;
			h->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(h), more, sizeof(int) * nfds);
		}
		ssize_t n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_writable(fd) < 0)
				return mpq_fail(env, off ? "sendmsg (the rest of a message; the peer stopped reading)" : "sendmsg (the peer stopped reading)");
			continue;
		}
		if (n < 0)
			return mpq_fail(env, "sendmsg");
		off += (size_t)n;
	}
	return mpq_undefined(env);
}

// ---- descriptors --------------------------------------------------------------------

static napi_value make_socketpair(napi_env env, napi_callback_info info)
{
	(void)info;
	int sv[2];
	napi_value r, v;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return mpq_fail(env, "socketpair");
	CHECK(napi_create_array_with_length(env, 2, &r));
	for (int i = 0; i < 2; i++) {
		napi_create_int32(env, sv[i], &v);
		napi_set_element(env, r, i, v);
	}
	return r;
}

NAPI_MODULE_INIT()
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "socketpair", make_socketpair }, { "watch", watch }, { "pause", pause_conn }, { "unwatch", unwatch },
		{ "send", send_msg }, { "mapFd", mpq_map_fd }, { "unmap", mpq_unmap }, { "eventfd", mpq_eventfd },
		{ "eventfdWrite", mpq_eventfd_write }, { "eventfdRead", mpq_eventfd_read }, { "close", mpq_close },
	};
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		napi_value f;
		napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
		napi_set_named_property(env, exports, fns[i].name, f);
	}
	return exports;
}
