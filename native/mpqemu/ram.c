// Guest RAM, eventfds and descriptors for muxvisor_mpqemu.node (addon.c): the RAM a
// guest QEMU hands over in SYNC_SYSMEM, mapped so devices can DMA into it by guest
// physical address; the irqfd pair of SET_IRQFD; close() for both.
#include "mpqemu.h"

// ---- guest RAM ----------------------------------------------------------------------

struct mapping {
	void *base;
	size_t len;
	int unmapped;
	struct mapping *next;
};
static struct mapping *mappings; // only the JS thread touches it

static void finalize_mapping(napi_env env, void *data, void *hint)
{
	(void)env, (void)data;
	struct mapping *m = hint;
	if (!m->unmapped)
		munmap(m->base, m->len);
	for (struct mapping **p = &mappings; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			break;
		}
	free(m);
}

// mapFd(fd, offset, size, requireSeal): `size` bytes of the file from `offset`. The file
// must be a regular file that holds them; with requireSeal it must also be sealed against
// shrinking (memory-backend-memfd's default), since a peer that shrinks a file under our
// mapping would turn the next DMA into SIGBUS in the supervisor.
napi_value mpq_map_fd(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value argv[4], ab;
	int32_t fd;
	double off_d, size_d;
	bool seal;
	CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &off_d) != napi_ok ||
	    napi_get_value_double(env, argv[2], &size_d) != napi_ok || napi_get_value_bool(env, argv[3], &seal) != napi_ok || fd < 0 ||
	    off_d < 0 || off_d > 0x1p52 || size_d <= 0 || size_d > 0x1p31) {
		napi_throw_type_error(env, NULL, "mapFd(fd: number, offset: number >= 0, size: number in 1..2^31, requireSeal: boolean)");
		return NULL;
	}
	off_t offset = (off_t)off_d;
	size_t size = (size_t)size_d;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return mpq_fail(env, "fstat of a guest RAM fd");
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return mpq_fail(env, "mmap of a guest RAM fd that is not a regular file");
	}
	if ((uint64_t)offset + size > (uint64_t)st.st_size) {
		errno = EINVAL;
		return mpq_fail(env, "mmap of guest RAM past the end of its file");
	}
	if (seal) {
		int s = fcntl(fd, F_GET_SEALS);
		if (s < 0)
			return mpq_fail(env, "fcntl(F_GET_SEALS) on a guest RAM fd (not a memfd?)");
		if (!(s & F_SEAL_SHRINK)) {
			errno = EPERM;
			return mpq_fail(env, "guest RAM memfd not sealed against shrinking");
		}
	}
	long page = sysconf(_SC_PAGESIZE);
	size_t lead = (size_t)(offset % page);
	void *base = mmap(NULL, size + lead, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset - (off_t)lead);
	if (base == MAP_FAILED)
		return mpq_fail(env, "mmap of guest RAM");
	struct mapping *m = malloc(sizeof *m);
	if (!m || napi_create_external_arraybuffer(env, (char *)base + lead, size, finalize_mapping, m, &ab) != napi_ok) {
		munmap(base, size + lead);
		free(m);
		napi_throw_error(env, NULL, "napi_create_external_arraybuffer failed");
		return NULL;
	}
	*m = (struct mapping){ base, size + lead, 0, mappings };
	mappings = m;
	return ab;
}

// unmap(buffer): detach (views read nothing from then on) and munmap now; false when the
// buffer was not one of ours or was unmapped already.
napi_value mpq_unmap(napi_env env, napi_callback_info info)
{
	size_t argc = 1, len;
	napi_value argv[1], r;
	void *data;
	CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	if (argc < 1 || napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "unmap(buffer: ArrayBuffer from mapFd)");
		return NULL;
	}
	struct mapping *m = mappings;
	while (m && (m->unmapped || !data || (char *)data < (char *)m->base || (char *)data >= (char *)m->base + m->len))
		m = m->next;
	if (m) {
		CHECK(napi_detach_arraybuffer(env, argv[0]));
		m->unmapped = 1;
		munmap(m->base, m->len);
	}
	napi_get_boolean(env, m != NULL, &r);
	return r;
}

static int arg_fd(napi_env env, napi_callback_info info, double *extra, const char *usage)
{
	size_t argc = 2;
	napi_value argv[2];
	int32_t fd = -1;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
	    (extra && (argc < 2 || napi_get_value_double(env, argv[1], extra) != napi_ok || *extra < 1 || *extra > 0x1p52))) {
		napi_throw_type_error(env, NULL, usage);
		return -1;
	}
	return fd;
}

napi_value mpq_eventfd(napi_env env, napi_callback_info info)
{
	(void)info;
	napi_value r;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return mpq_fail(env, "eventfd");
	napi_create_int32(env, fd, &r);
	return r;
}

// eventfdWrite(fd, n): adds n to the counter (an irqfd write raises the guest's GSI under KVM).
napi_value mpq_eventfd_write(napi_env env, napi_callback_info info)
{
	double n;
	int fd = arg_fd(env, info, &n, "eventfdWrite(fd: number, n: number >= 1)");
	if (fd < 0)
		return NULL;
	uint64_t v = (uint64_t)n;
	ssize_t w;
	do
		w = write(fd, &v, sizeof v);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN) // EAGAIN: the counter is saturated, the event is pending anyway
		return mpq_fail(env, "write to an eventfd");
	return mpq_undefined(env);
}

// eventfdRead(fd) -> the counter, reset to 0; 0 when nothing is pending (the fd may block:
// polled once, never waited on).
napi_value mpq_eventfd_read(napi_env env, napi_callback_info info)
{
	int fd = arg_fd(env, info, NULL, "eventfdRead(fd: number)");
	if (fd < 0)
		return NULL;
	struct pollfd p = { fd, POLLIN, 0 };
	uint64_t v = 0;
	int r;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return mpq_fail(env, "poll of an eventfd");
	if (r > 0) {
		ssize_t n;
		do
			n = read(fd, &v, sizeof v);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN)
			return mpq_fail(env, "read of an eventfd");
		if (n < 0)
			v = 0;
	}
	napi_value out;
	napi_create_double(env, (double)v, &out);
	return out;
}

napi_value mpq_close(napi_env env, napi_callback_info info)
{
	int fd = arg_fd(env, info, NULL, "close(fd: number)");
	if (fd < 0)
		return NULL;
	// Linux releases the descriptor even when close reports EINTR: never retry it.
	if (close(fd) < 0 && errno != EINTR)
		return mpq_fail(env, "close");
	return mpq_undefined(env);
}

