// N-API addon for the shared-memory access slot (src/channel/slot.ts): Node cannot mmap
// a peer's memfd, ask a socket for its peer or wake a futex by itself.
//   peerCred(fd) -> {pid, uid, gid} of a Unix socket's peer (SO_PEERCRED)
//   mapFd(pid, fd, size) -> ArrayBuffer over a MAP_SHARED mapping of /proc/PID/fd/FD, which
//                      must be a memfd sealed against shrinking, growing and more seals,
//                      of exactly `size` bytes (unmapped when the buffer is collected...)
//   unmap(buffer) -> detaches the buffer and unmaps it now (...or here, whichever is first)
//   wake(buffer, byteOffset) -> number of waiters woken on the 32-bit word there
//   openPeerFd(socketFd, fd) -> {fd, pid, uid, gid, seals}: the peer's descriptor `fd`
//                      (an anonymous regular file: a memfd), opened read-write for us; the
//                      caller checks the rest (src/channel/dma-memory.ts) and closes `fd`
//   memfd(name, size, seals) -> fd of a new memfd of `size` bytes with those seals added,
//                      for TypeScript peers and tests (Node has no memfd_create)
// The futex is a shared one (no FUTEX_PRIVATE_FLAG): the waiter is another process.
// A descriptor a peer names is never opened as such: see open_peer_file.
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

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 // Linux 6.5
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

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

static const char *file_kind(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a regular file";
}

// The file behind descriptor `nfd` of process `pid`, opened read-write for us; -1 with the
// reason in `why`. Reopening /proc/PID/fd/N read-write as such would run the open of
// whatever it is (a FIFO, a tape drive, a tty) with our rights, on a file the peer may only
// read. So it is opened O_PATH first (which opens nothing), checked with fstat, and only an
// anonymous regular file (no name anywhere: a memfd, or an unlinked file) is reopened,
// through /proc/self/fd of that O_PATH descriptor: the same inode whatever the peer does to
// its fd table meanwhile. `pidfd` (or -1): the peer as the socket knows it; alive after the
// open, its pid cannot have been reused by another process in between.
static int open_peer_file(pid_t pid, int pidfd, int nfd, char *why, size_t n)
{
	char path[64], self[64], name[256];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, nfd);
	int opath = open(path, O_PATH | O_CLOEXEC);
	if (opath < 0) {
		snprintf(why, n, "open %s: %s (the peer has no descriptor %d)", path, strerror(errno), nfd);
		return -1;
	}
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno == ESRCH) {
		snprintf(why, n, "the peer process %d exited while its descriptor was opened", pid);
		close(opath);
		return -1;
	}
	struct stat st, st2;
	if (fstat(opath, &st) < 0) {
		snprintf(why, n, "fstat %s: %s", path, strerror(errno));
		close(opath);
		return -1;
	}
	snprintf(self, sizeof self, "/proc/self/fd/%d", opath);
	if (!S_ISREG(st.st_mode) || st.st_nlink != 0) {
		ssize_t k = readlink(self, name, sizeof name - 1);
		name[k > 0 ? k : 0] = 0;
		if (!S_ISREG(st.st_mode))
			snprintf(why, n, "%s is %s (%s), not a memfd", path, file_kind(st.st_mode), name);
		else
			snprintf(why, n, "%s is a file with a name (%s, %lu link%s), not a memfd", path, name,
				 (unsigned long)st.st_nlink, st.st_nlink == 1 ? "" : "s");
		close(opath);
		return -1;
	}
	int fd = open(self, O_RDWR | O_CLOEXEC | O_NOCTTY);
	int e = errno;
	close(opath);
	if (fd < 0) {
		snprintf(why, n, "reopen %s read-write: %s", path, strerror(e));
		return -1;
	}
	if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
		snprintf(why, n, "reopen %s: not the same file", path); // cannot happen: the O_PATH fd pins the inode
		close(fd);
		return -1;
	}
	return fd;
}

// mapFd(pid, fd, size): the peer's sealed memfd, reopened through /proc/PID/fd/FD. The
// peer cannot name another process's file (the caller takes PID from SO_PEERCRED), and
// the seals mean no SIGBUS however the peer treats its fd afterwards: it can neither
// shrink the memfd under our mapping nor lift the seals. A plain file, an unsealed memfd
// or one of another size is refused; anything but an anonymous regular file is not even
// opened (open_peer_file).
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
	char path[64], why[512];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, nfd);
	int fd = open_peer_file(pid, -1, nfd, why, sizeof why);
	if (fd < 0) {
		napi_throw_error(env, NULL, why);
		return NULL;
	}
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

// openPeerFd(socketFd, fd) -> {fd, pid, uid, gid, seals}: the peer of a connected Unix
// socket (SO_PEERCRED; SO_PEERPIDFD when the kernel has it) and its descriptor `fd`, opened
// read-write for us by open_peer_file (an anonymous regular file only). `seals`: F_GET_SEALS,
// or -1 when the file cannot carry seals (not a memfd). The caller owns the returned fd.
static napi_value open_peer_fd(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	int32_t sock, nfd;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_get_value_int32(env, argv[1], &nfd) != napi_ok ||
	    sock < 0 || nfd < 0) {
		napi_throw_type_error(env, NULL, "openPeerFd(socketFd: number >= 0, fd: number >= 0)");
		return NULL;
	}
	struct ucred c;
	socklen_t len = sizeof c;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
		return fail(env, "getsockopt(SO_PEERCRED)", "on the peer's socket");
	if (c.pid <= 0) {
		napi_throw_error(env, NULL, "the socket's peer has no process (SO_PEERCRED pid 0)");
		return NULL;
	}
	int pidfd = -1;
	len = sizeof pidfd;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		pidfd = -1; // an older kernel: the pid alone
	char why[512];
	int fd = open_peer_file(c.pid, pidfd, nfd, why, sizeof why);
	if (pidfd >= 0)
		close(pidfd);
	if (fd < 0) {
		napi_throw_error(env, NULL, why);
		return NULL;
	}
	int seals = fcntl(fd, F_GET_SEALS);
	napi_value r, v;
	napi_create_object(env, &r);
	napi_create_int32(env, fd, &v), napi_set_named_property(env, r, "fd", v);
	napi_create_int32(env, c.pid, &v), napi_set_named_property(env, r, "pid", v);
	napi_create_uint32(env, c.uid, &v), napi_set_named_property(env, r, "uid", v);
	napi_create_uint32(env, c.gid, &v), napi_set_named_property(env, r, "gid", v);
	napi_create_int32(env, seals < 0 ? -1 : seals, &v), napi_set_named_property(env, r, "seals", v);
	return r;
}

// memfd(name, size, seals) -> fd: a memfd of `size` bytes (MFD_CLOEXEC | MFD_ALLOW_SEALING)
// with `seals` added (F_SEAL_* bits; 0 for none).
static napi_value memfd(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3];
	char name[64];
	size_t nlen;
	double size;
	int32_t seals;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
	    napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nlen) != napi_ok ||
	    napi_get_value_double(env, argv[1], &size) != napi_ok || napi_get_value_int32(env, argv[2], &seals) != napi_ok ||
	    size < 0 || size > 0x1p40) {
		napi_throw_type_error(env, NULL, "memfd(name: string, size: number >= 0, seals: number)");
		return NULL;
	}
	int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return fail(env, "memfd_create", name);
	if (ftruncate(fd, (off_t)size) < 0)
		return refuse(env, fd, "ftruncate", name);
	if (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)
		return refuse(env, fd, "fcntl(F_ADD_SEALS)", name);
	napi_value r;
	napi_create_int32(env, fd, &r);
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
	napi_create_function(env, "openPeerFd", NAPI_AUTO_LENGTH, open_peer_fd, NULL, &f);
	napi_set_named_property(env, exports, "openPeerFd", f);
	napi_create_function(env, "memfd", NAPI_AUTO_LENGTH, memfd, NULL, &f);
	napi_set_named_property(env, exports, "memfd", f);
	return exports;
}
