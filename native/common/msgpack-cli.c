// Test program for the shared codec (test/native-msgpack.test.ts): reads one msgpack map from
// stdin whose values are uints, strs, bins, booleans, floats or arrays of those, and writes back
// a map with the same keys: each uint-like value as mp_read_uint reads it, each str and bin as
// read, each array as its element count. A value mp_read_uint cannot read is written as the str
// "?"; anything unreadable ends the program with exit code 2.
#include "msgpack.h"

#include <stdio.h>
#include <unistd.h>

static uint8_t in_buf[1 << 16], out_buf[1 << 17];

int main(void)
{
	size_t n = 0;
	ssize_t r;
	while (n < sizeof in_buf && (r = read(0, in_buf + n, sizeof in_buf - n)) > 0)
		n += (size_t)r;
	struct mp_r rd = { in_buf, in_buf + n };
	struct mp_w w = { out_buf, out_buf + sizeof out_buf, 0 };
	uint32_t keys;
	if (mp_read_map(&rd, &keys))
		return 2;
	mp_map(&w, keys);
	for (uint32_t i = 0; i < keys; i++) {
		const char *k;
		uint32_t kl, len;
		char key[256];
		if (mp_read_str(&rd, &k, &kl) || kl >= sizeof key)
			return 2;
		for (uint32_t j = 0; j < kl; j++)
			key[j] = k[j];
		key[kl] = 0;
		mp_str(&w, key);
		const uint8_t *b;
		const char *s;
		uint64_t v;
		switch (mp_peek(&rd)) {
		case MP_STR:
			if (mp_read_str(&rd, &s, &len) || len >= sizeof key)
				return 2;
			for (uint32_t j = 0; j < len; j++)
				key[j] = s[j];
			key[len] = 0;
			mp_str(&w, key);
			break;
		case MP_BIN:
			if (mp_read_bin(&rd, &b, &len))
				return 2;
			mp_bin(&w, b, len);
			break;
		case MP_ARR:
			if (mp_read_arr(&rd, &len))
				return 2;
			for (uint32_t j = 0; j < len; j++)
				if (mp_skip(&rd))
					return 2;
			mp_arr(&w, 1);
			mp_uint(&w, len);
			break;
		default:
			if (mp_read_uint(&rd, &v)) {
				if (mp_skip(&rd))
					return 2;
				mp_str(&w, "?");
			} else {
				mp_uint(&w, v);
			}
		}
	}
	if (w.overflow)
		return 3;
	if (write(1, out_buf, (size_t)(w.p - out_buf)) != w.p - out_buf)
		return 4;
	return mp_str_is("abc", 3, "abc") && !mp_str_is("abc", 2, "abc") ? 0 : 5;
}
