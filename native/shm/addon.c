// N-API addon for the shared-memory access slot (src/channel/slot.ts): Node cannot mmap
// a peer's memfd, ask a socket for its peer or wake a futex by itself.
//   peerCred(fd) -> {pid, uid, gid} of a Unix socket's peer (SO_PEERCRED)
//   mapFd(pid, fd, size) -> ArrayBuffer over a MAP_SHARED mapping of /proc/PID/fd/FD, which
//                      must be a memfd sealed against shrinking, growing and more seals,
//                      of exactly `size` bytes (unmapped when the buffer is collected...)
//   unmap(buffer) -> detaches the buffer and unmaps it now (...or here, whichever is first)
//   wake(buffer, byteOffset) -> number of waiters woken on the 32-bit word there
// The futex is a shared one (no FUTEX_PRIVATE_FLAG): the waiter is another process.
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static napi_value fail(napi_env env, const char *what, const char *detail)
{
	char msg[4700];
	snprintf(msg, sizeof msg, "%s %s: %s", what, detail, strerror(errno));
	napi_throw_error(env, NULL, msg);
	return NULL;
}

// Live mappings: unmap() finds a buffer's here, and the finalizer of a buffer already
// unmapped only frees its record. Only the main JS thread touches the list.
struct mapping {
	void *mem;
	size_t size;
	int unmapped;
	struct mapping *next;
};
static struct mapping *mappings;

static void finalize(napi_env env, void *data, void *hint)
{
	(void)env, (void)data;
	struct mapping *m = hint;
	if (!m->unmapped)
		munmap(m->mem, m->size);
	for (struct mapping **p = &mappings; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			break;
		}
	free(m);
}

static napi_value refuse(napi_env env, int fd, const char *why, const char *what)
{
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return fail(env, why, what);
}

// mapFd(pid, fd, size): the peer's sealed memfd, reopened through /proc/PID/fd/FD. The
// peer cannot name another process's file (the caller takes PID from SO_PEERCRED), and
// the seals mean no SIGBUS however the peer treats its fd afterwards: it can neither
// shrink the memfd under our mapping nor lift the seals. A plain file, an unsealed memfd
// or one of another size is refused.
static napi_value map_fd(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3];
	int32_t pid, nfd;
	double want;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
	    napi_get_value_int32(env, argv[0], &pid) != napi_ok || napi_get_value_int32(env, argv[1], &nfd) != napi_ok ||
	    napi_get_value_double(env, argv[2], &want) != napi_ok || pid <= 0 || nfd < 0 || want <= 0 || want > (1 << 30)) {
		napi_throw_type_error(env, NULL, "mapFd(pid: number > 0, fd: number >= 0, size: number)");
		return NULL;
	}
	size_t size = (size_t)want;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, nfd);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail(env, "open", path);
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return refuse(env, fd, "fcntl(F_GET_SEALS) (not a memfd?) on", path);
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if ((seals & need) != need) {
		errno = EPERM;
		return refuse(env, fd, "memfd without the seals shrink, grow and seal:", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return refuse(env, fd, "fstat", path);
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != size) {
		errno = EINVAL;
		return refuse(env, fd, "memfd not of the announced size:", path);
	}
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); // the mapping keeps the memfd
	if (mem == MAP_FAILED)
		return fail(env, "mmap", path);
	struct mapping *m = malloc(sizeof *m);
	napi_value ab;
	if (!m || napi_create_external_arraybuffer(env, mem, size, finalize, m, &ab) != napi_ok) {
		munmap(mem, size);
		free(m);
		napi_throw_error(env, NULL, "napi_create_external_arraybuffer failed");
		return NULL;
	}
	*m = (struct mapping){ mem, size, 0, mappings };
	mappings = m;
	return ab;
}

// unmap(buffer): detaches a buffer of mapFd (its views read nothing from then on) and
// unmaps it now rather than when it is collected. A second call does nothing.
static napi_value unmap(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	void *data;
	size_t len;
	bool is_ab = false;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab ||
	    napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "unmap(buffer: ArrayBuffer from mapFd)");
		return NULL;
	}
	struct mapping *m = mappings;
	while (m && (m->unmapped || m->mem != data || !data))
		m = m->next;
	if (m) {
		if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) {
			napi_throw_error(env, NULL, "napi_detach_arraybuffer failed");
			return NULL;
		}
		m->unmapped = 1; // before the finalizer, which detaching may bring
		munmap(m->mem, m->size);
	}
	napi_value r;
	napi_get_boolean(env, m != NULL, &r);
	return r;
}

// peerCred(fd) -> {pid, uid, gid} of the process at the other end of a Unix socket.
static napi_value peer_cred(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	int32_t fd;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
		napi_throw_type_error(env, NULL, "peerCred(fd: number >= 0)");
		return NULL;
	}
	struct ucred c;
	socklen_t n = sizeof c;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &n) < 0)
		return fail(env, "getsockopt(SO_PEERCRED)", "on the peer's socket");
	napi_value r, v;
	napi_create_object(env, &r);
	napi_create_int32(env, c.pid, &v), napi_set_named_property(env, r, "pid", v);
	napi_create_uint32(env, c.uid, &v), napi_set_named_property(env, r, "uid", v);
	napi_create_uint32(env, c.gid, &v), napi_set_named_property(env, r, "gid", v);
	return r;
}

static napi_value wake(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	void *data;
	size_t len;
	uint32_t off;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok ||
	    napi_get_value_uint32(env, argv[1], &off) != napi_ok || off % 4 || (size_t)off + 4 > len) {
		napi_throw_type_error(env, NULL, "wake(buffer: ArrayBuffer, byteOffset: number) with an aligned offset inside the buffer");
		return NULL;
	}
	long n = syscall(SYS_futex, (uint32_t *)((uint8_t *)data + off), FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
	if (n < 0)
		return fail(env, "futex(FUTEX_WAKE)", "on the access slot");
	napi_value r;
	napi_create_int32(env, (int32_t)n, &r);
	return r;
}

NAPI_MODULE_INIT()
{
	napi_value f;
	napi_create_function(env, "mapFd", NAPI_AUTO_LENGTH, map_fd, NULL, &f);
	napi_set_named_property(env, exports, "mapFd", f);
	napi_create_function(env, "unmap", NAPI_AUTO_LENGTH, unmap, NULL, &f);
	napi_set_named_property(env, exports, "unmap", f);
	napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &f);
	napi_set_named_property(env, exports, "peerCred", f);
	napi_create_function(env, "wake", NAPI_AUTO_LENGTH, wake, NULL, &f);
	napi_set_named_property(env, exports, "wake", f);
	return exports;
}
