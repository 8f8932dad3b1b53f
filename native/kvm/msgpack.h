/* The msgpack subset the channel protocol needs: maps with str keys, uints, str, bin. */
#ifndef MSGPACK_H
#define MSGPACK_H
#include <stddef.h>
#include <stdint.h>

struct mp_out { uint8_t *buf; size_t len, cap; int overflow; };
void mp_map(struct mp_out *o, uint32_t n);
void mp_array(struct mp_out *o, uint32_t n);
void mp_uint(struct mp_out *o, uint64_t v);
void mp_str(struct mp_out *o, const char *s);
void mp_bin(struct mp_out *o, const void *data, uint32_t len);

struct mp_in { const uint8_t *p, *end; };
/* Each returns 0 on success, -1 when the next value has another type or is truncated. */
int mp_read_map(struct mp_in *in, uint32_t *n);
int mp_read_str(struct mp_in *in, const char **s, uint32_t *len);
/* Accepts uints, non-negative ints and booleans (a level may come as true/false). */
int mp_read_uint(struct mp_in *in, uint64_t *v);
int mp_read_bin(struct mp_in *in, const uint8_t **b, uint32_t *len);
int mp_skip(struct mp_in *in);
/* 1 when the string s of length len equals the C string lit. */
int mp_str_is(const char *s, uint32_t len, const char *lit);

#endif
