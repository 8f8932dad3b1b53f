// Minimal msgpack (https://github.com/msgpack/msgpack/blob/master/spec.md), big-endian
// multi-byte fields, only the types the channel protocol uses.
#include "msgpack.h"

#include <string.h>

static void put(struct mp_w *w, const void *src, size_t n)
{
	if (w->overflow || (size_t)(w->end - w->p) < n) {
		w->overflow = 1;
		return;
	}
	memcpy(w->p, src, n);
	w->p += n;
}

static void put_be(struct mp_w *w, uint8_t tag, uint64_t v, int bytes)
{
	uint8_t b[9];
	b[0] = tag;
	for (int k = 0; k < bytes; k++)
		b[1 + k] = (uint8_t)(v >> (8 * (bytes - 1 - k)));
	put(w, b, 1 + (size_t)bytes);
}

void mp_map(struct mp_w *w, uint32_t n)
{
	if (n < 16)
		put_be(w, (uint8_t)(0x80 | n), 0, 0);
	else if (n < 0x10000)
		put_be(w, 0xde, n, 2);
	else
		put_be(w, 0xdf, n, 4);
}

void mp_arr(struct mp_w *w, uint32_t n)
{
	if (n < 16)
		put_be(w, (uint8_t)(0x90 | n), 0, 0);
	else if (n < 0x10000)
		put_be(w, 0xdc, n, 2);
	else
		put_be(w, 0xdd, n, 4);
}

void mp_str(struct mp_w *w, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	if (n < 32)
		put_be(w, (uint8_t)(0xa0 | n), 0, 0);
	else if (n < 0x100)
		put_be(w, 0xd9, n, 1);
	else
		put_be(w, 0xda, n & 0xffff, 2);
	put(w, s, n < 0x10000 ? n : 0xffff);
}

void mp_uint(struct mp_w *w, uint64_t v)
{
	if (v < 0x80)
		put_be(w, (uint8_t)v, 0, 0);
	else if (v < 0x100)
		put_be(w, 0xcc, v, 1);
	else if (v < 0x10000)
		put_be(w, 0xcd, v, 2);
	else if (v < 0x100000000ull)
		put_be(w, 0xce, v, 4);
	else
		put_be(w, 0xcf, v, 8);
}

void mp_bin(struct mp_w *w, const void *b, uint32_t n)
{
	if (n < 0x100)
		put_be(w, 0xc4, n, 1);
	else if (n < 0x10000)
		put_be(w, 0xc5, n, 2);
	else
		put_be(w, 0xc6, n, 4);
	put(w, b, n);
}

static int get_be(struct mp_r *r, int bytes, uint64_t *v)
{
	if (r->end - r->p < bytes)
		return -1;
	uint64_t x = 0;
	for (int k = 0; k < bytes; k++)
		x = x << 8 | r->p[k];
	r->p += bytes;
	*v = x;
	return 0;
}

enum mp_type mp_peek(const struct mp_r *r)
{
	if (r->p >= r->end)
		return MP_BAD;
	uint8_t t = *r->p;
	if (t < 0x80 || t >= 0xe0 || (t >= 0xcc && t <= 0xd3))
		return MP_INT;
	if (t < 0x90 || t == 0xde || t == 0xdf)
		return MP_MAP;
	if (t < 0xa0 || t == 0xdc || t == 0xdd)
		return MP_ARR;
	if (t < 0xc0 || (t >= 0xd9 && t <= 0xdb))
		return MP_STR;
	if (t == 0xc0)
		return MP_NIL;
	if (t == 0xc2 || t == 0xc3)
		return MP_BOOL;
	if (t >= 0xc4 && t <= 0xc6)
		return MP_BIN;
	if (t == 0xca || t == 0xcb)
		return MP_FLOAT;
	if ((t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8))
		return MP_EXT;
	return MP_BAD;
}

// Length of a container/str/bin whose tag is fix (mask) or 1/2/4-byte sized.
static int read_len(struct mp_r *r, uint8_t fixbase, uint8_t fixmask, uint8_t t8, uint8_t t16,
		    uint8_t t32, uint32_t *n)
{
	if (r->p >= r->end)
		return -1;
	uint8_t t = *r->p;
	uint64_t v;
	if (fixmask && (t & ~fixmask) == fixbase) {
		r->p++;
		*n = t & fixmask;
		return 0;
	}
	int bytes = t8 && t == t8 ? 1 : t == t16 ? 2 : t == t32 ? 4 : 0;
	if (!bytes)
		return -1;
	r->p++;
	if (get_be(r, bytes, &v))
		return -1;
	*n = (uint32_t)v;
	return 0;
}

int mp_read_map(struct mp_r *r, uint32_t *n)
{
	return read_len(r, 0x80, 0x0f, 0, 0xde, 0xdf, n); // no map8 in msgpack
}

int mp_read_arr(struct mp_r *r, uint32_t *n)
{
	return read_len(r, 0x90, 0x0f, 0, 0xdc, 0xdd, n); // no array8 in msgpack
}

int mp_read_str(struct mp_r *r, const char **s, uint32_t *len)
{
	if (read_len(r, 0xa0, 0x1f, 0xd9, 0xda, 0xdb, len) || r->end - r->p < (long)*len)
		return -1;
	*s = (const char *)r->p;
	r->p += *len;
	return 0;
}

int mp_read_bin(struct mp_r *r, const uint8_t **b, uint32_t *len)
{
	if (read_len(r, 0, 0, 0xc4, 0xc5, 0xc6, len) || r->end - r->p < (long)*len)
		return -1;
	*b = r->p;
	r->p += *len;
	return 0;
}

static int read_uint_at(struct mp_r *r, uint64_t *v);

// On failure the reader stays where it was, so the caller may skip the value instead.
int mp_read_uint(struct mp_r *r, uint64_t *v)
{
	const uint8_t *start = r->p;
	if (read_uint_at(r, v) == 0)
		return 0;
	r->p = start;
	return -1;
}

static int read_uint_at(struct mp_r *r, uint64_t *v)
{
	if (r->p >= r->end)
		return -1;
	uint8_t t = *r->p++;
	uint64_t x;
	if (t < 0x80) {
		*v = t;
		return 0;
	}
	if (t >= 0xe0) { // negative fixint
		*v = 0;
		return 0;
	}
	switch (t) {
	case 0xc2: case 0xc3: // a boolean (an IRQ level may come as true/false)
		*v = t == 0xc3;
		return 0;
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		return get_be(r, 1 << (t - 0xcc), v);
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		int bytes = 1 << (t - 0xd0);
		if (get_be(r, bytes, &x))
			return -1;
		int shift = 64 - 8 * bytes;
		int64_t s = (int64_t)(x << shift) >> shift;
		*v = s < 0 ? 0 : (uint64_t)s;
		return 0;
	}
	case 0xca: { // float32
		float f;
		uint32_t u;
		if (get_be(r, 4, &x))
			return -1;
		u = (uint32_t)x;
		memcpy(&f, &u, 4);
		*v = f <= 0 ? 0 : (uint64_t)f;
		return 0;
	}
	case 0xcb: { // float64
		double f;
		if (get_be(r, 8, &x))
			return -1;
		memcpy(&f, &x, 8);
		*v = f <= 0 ? 0 : f >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)f;
		return 0;
	}
	default:
		r->p--;
		return -1;
	}
}

int mp_skip(struct mp_r *r)
{
	uint32_t n;
	const uint8_t *b;
	const char *s;
	uint64_t v;
	switch (mp_peek(r)) {
	case MP_INT: case MP_FLOAT:
		return mp_read_uint(r, &v);
	case MP_NIL: case MP_BOOL:
		r->p++;
		return 0;
	case MP_STR:
		return mp_read_str(r, &s, &n);
	case MP_BIN:
		return mp_read_bin(r, &b, &n);
	case MP_ARR:
		if (mp_read_arr(r, &n))
			return -1;
		while (n--)
			if (mp_skip(r))
				return -1;
		return 0;
	case MP_MAP:
		if (mp_read_map(r, &n))
			return -1;
		while (n--)
			if (mp_skip(r) || mp_skip(r))
				return -1;
		return 0;
	case MP_EXT: {
		uint8_t t = *r->p++;
		uint64_t len;
		if (t >= 0xd4 && t <= 0xd8)
			len = 1u << (t - 0xd4);
		else if (get_be(r, 1 << (t - 0xc7), &len))
			return -1;
		if ((uint64_t)(r->end - r->p) < len + 1)
			return -1;
		r->p += len + 1; // type byte + data
		return 0;
	}
	default:
		return -1;
	}
}

int mp_str_is(const char *s, uint32_t len, const char *lit)
{
	size_t n = 0;
	while (lit[n])
		n++;
	return n == len && memcmp(s, lit, len) == 0;
}
