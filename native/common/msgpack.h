// The one msgpack writer and reader of the native layer (the trap shim and the KVM helper) for the
// channel's small maps (src/channel/PROTOCOL.md).
// No allocation, no libc beyond memcpy: usable inside the SIGSEGV handler.
#ifndef MUXTRAP_MSGPACK_H
#define MUXTRAP_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

struct mp_w {
	uint8_t *p, *end;
	int overflow; // set when the buffer was too small; the frame must not be sent
};

void mp_map(struct mp_w *w, uint32_t n);
void mp_arr(struct mp_w *w, uint32_t n);
void mp_str(struct mp_w *w, const char *s);
void mp_uint(struct mp_w *w, uint64_t v);
void mp_bin(struct mp_w *w, const void *b, uint32_t n);

struct mp_r {
	const uint8_t *p, *end;
};

enum mp_type { MP_BAD, MP_NIL, MP_BOOL, MP_INT, MP_FLOAT, MP_STR, MP_BIN, MP_ARR, MP_MAP, MP_EXT };

// Type of the next value without consuming it.
enum mp_type mp_peek(const struct mp_r *r);
// Each reader returns 0 and consumes the value, or -1 (wrong type or truncated).
int mp_read_map(struct mp_r *r, uint32_t *n);
int mp_read_arr(struct mp_r *r, uint32_t *n);
int mp_read_str(struct mp_r *r, const char **s, uint32_t *len);
int mp_read_bin(struct mp_r *r, const uint8_t **b, uint32_t *len);
// Integers of any msgpack width; a float holding an integer is accepted too, since
// JavaScript encoders write integers above 2^32 as float64. Negative values read as 0;
// booleans read as 0 and 1.
int mp_read_uint(struct mp_r *r, uint64_t *v);
int mp_skip(struct mp_r *r);
// 1 when the string s of length len equals the C string lit.
int mp_str_is(const char *s, uint32_t len, const char *lit);

#endif
