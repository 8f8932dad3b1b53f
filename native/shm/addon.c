// N-API addon for the shared-memory access slot (src/channel/slot.ts): Node cannot mmap
// a file or wake a futex by itself.
//   map(path, size) -> ArrayBuffer over a MAP_SHARED mapping of the file (unmapped when
//                      the buffer is collected, so no JS view can outlive the mapping)
//   wake(buffer, byteOffset) -> number of waiters woken on the 32-bit word there
// The futex is a shared one (no FUTEX_PRIVATE_FLAG): the waiter is another process.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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

static void unmap(napi_env env, void *data, void *hint)
{
	(void)env;
	munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value map(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	char path[4096];
	size_t plen;
	double want;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
	    napi_get_value_double(env, argv[1], &want) != napi_ok || want <= 0 || want > (1 << 30)) {
		napi_throw_type_error(env, NULL, "map(path: string, size: number)");
		return NULL;
	}
	size_t size = (size_t)want;
	// O_NOFOLLOW: the path comes from a peer; a symlink must not redirect us elsewhere.
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail(env, "open", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return fail(env, "fstat", path);
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size < size) {
		close(fd);
		errno = EINVAL;
		return fail(env, "map: not a regular file of the announced size:", path);
	}
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); // the mapping keeps the file
	if (mem == MAP_FAILED)
		return fail(env, "mmap", path);
	napi_value ab;
	if (napi_create_external_arraybuffer(env, mem, size, unmap, (void *)(uintptr_t)size, &ab) != napi_ok) {
		munmap(mem, size);
		napi_throw_error(env, NULL, "napi_create_external_arraybuffer failed");
		return NULL;
	}
	return ab;
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
	napi_create_function(env, "map", NAPI_AUTO_LENGTH, map, NULL, &f);
	napi_set_named_property(env, exports, "map", f);
	napi_create_function(env, "wake", NAPI_AUTO_LENGTH, wake, NULL, &f);
	napi_set_named_property(env, exports, "wake", f);
	return exports;
}
