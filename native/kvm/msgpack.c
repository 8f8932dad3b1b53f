/* Minimal msgpack encoder/decoder (spec: github.com/msgpack/msgpack/blob/master/spec.md). */
#include "msgpack.h"
#include <string.h>

static void put(struct mp_out *o, const void *p, size_t n) {
    if (o->len + n > o->cap) { o->overflow = 1; return; }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void put_be(struct mp_out *o, uint8_t tag, uint64_t v, int bytes) {
    uint8_t b[9];
    b[0] = tag;
    for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(o, b, (size_t)bytes + 1);
}

static void header(struct mp_out *o, uint32_t n, uint8_t fix, uint8_t tag16, uint8_t tag32) {
    if (n < 16) { uint8_t b = (uint8_t)(fix | n); put(o, &b, 1); }
    else if (n < 0x10000) put_be(o, tag16, n, 2);
    else put_be(o, tag32, n, 4);
}

void mp_map(struct mp_out *o, uint32_t n) { header(o, n, 0x80, 0xde, 0xdf); }
void mp_array(struct mp_out *o, uint32_t n) { header(o, n, 0x90, 0xdc, 0xdd); }

void mp_uint(struct mp_out *o, uint64_t v) {
    if (v < 0x80) { uint8_t b = (uint8_t)v; put(o, &b, 1); }
    else if (v < 0x100) put_be(o, 0xcc, v, 1);
    else if (v < 0x10000) put_be(o, 0xcd, v, 2);
    else if (v < 0x100000000ull) put_be(o, 0xce, v, 4);
    else put_be(o, 0xcf, v, 8);
}

void mp_str(struct mp_out *o, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    if (n < 32) { uint8_t b = (uint8_t)(0xa0 | n); put(o, &b, 1); }
    else if (n < 0x100) put_be(o, 0xd9, n, 1);
    else if (n < 0x10000) put_be(o, 0xda, n, 2);
    else put_be(o, 0xdb, n, 4);
    put(o, s, n);
}

void mp_bin(struct mp_out *o, const void *data, uint32_t len) {
    if (len < 0x100) put_be(o, 0xc4, len, 1);
    else if (len < 0x10000) put_be(o, 0xc5, len, 2);
    else put_be(o, 0xc6, len, 4);
    put(o, data, len);
}

static int take_be(struct mp_in *in, int bytes, uint64_t *v) {
    if (in->end - in->p < bytes) return -1;
    uint64_t x = 0;
    for (int i = 0; i < bytes; i++) x = (x << 8) | in->p[i];
    in->p += bytes;
    *v = x;
    return 0;
}

static int peek(struct mp_in *in, uint8_t *tag) {
    if (in->p >= in->end) return -1;
    *tag = *in->p;
    return 0;
}

int mp_read_map(struct mp_in *in, uint32_t *n) {
    uint8_t t;
    uint64_t v;
    if (peek(in, &t)) return -1;
    if ((t & 0xf0) == 0x80) { in->p++; *n = t & 0x0f; return 0; }
    if (t != 0xde && t != 0xdf) return -1;
    in->p++;
    if (take_be(in, t == 0xde ? 2 : 4, &v)) return -1;
    *n = (uint32_t)v;
    return 0;
}

/* Length of a str (kind 0) or bin (kind 1) value after its tag has been consumed. */
static int str_or_bin(struct mp_in *in, const uint8_t **b, uint32_t *len, int want_bin) {
    uint8_t t;
    uint64_t n;
    if (peek(in, &t)) return -1;
    if ((t & 0xe0) == 0xa0) { in->p++; n = t & 0x1f; }
    else if (t == 0xd9 || t == 0xda || t == 0xdb) { in->p++; if (take_be(in, 1 << (t - 0xd9), &n)) return -1; }
    else if (want_bin && (t == 0xc4 || t == 0xc5 || t == 0xc6)) { in->p++; if (take_be(in, 1 << (t - 0xc4), &n)) return -1; }
    else return -1;
    if ((uint64_t)(in->end - in->p) < n) return -1;
    *b = in->p;
    *len = (uint32_t)n;
    in->p += n;
    return 0;
}

int mp_read_str(struct mp_in *in, const char **s, uint32_t *len) {
    return str_or_bin(in, (const uint8_t **)s, len, 0);
}

int mp_read_bin(struct mp_in *in, const uint8_t **b, uint32_t *len) { return str_or_bin(in, b, len, 1); }

int mp_read_uint(struct mp_in *in, uint64_t *v) {
    uint8_t t;
    if (peek(in, &t)) return -1;
    if (t < 0x80) { in->p++; *v = t; return 0; }
    if (t == 0xc2 || t == 0xc3) { in->p++; *v = t == 0xc3; return 0; }
    if (t >= 0xcc && t <= 0xcf) { in->p++; return take_be(in, 1 << (t - 0xcc), v); }
    if (t >= 0xd0 && t <= 0xd3) {   /* signed ints are accepted when non-negative */
        int bytes = 1 << (t - 0xd0);
        in->p++;
        if (take_be(in, bytes, v)) return -1;
        if (*v >> (8 * bytes - 1)) return -1;
        return 0;
    }
    return -1;
}

int mp_skip(struct mp_in *in) {
    uint8_t t;
    uint64_t n;
    if (peek(in, &t)) return -1;
    in->p++;
    if (t < 0x80 || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return 0;
    if ((t & 0xe0) == 0xa0) n = t & 0x1f;
    else if ((t & 0xf0) == 0x80 || (t & 0xf0) == 0x90) {
        uint32_t items = (uint32_t)(t & 0x0f) * ((t & 0xf0) == 0x80 ? 2 : 1);
        while (items--) if (mp_skip(in)) return -1;
        return 0;
    } else if (t >= 0xc4 && t <= 0xc6) { if (take_be(in, 1 << (t - 0xc4), &n)) return -1; }
    else if (t >= 0xd9 && t <= 0xdb) { if (take_be(in, 1 << (t - 0xd9), &n)) return -1; }
    else if (t >= 0xc7 && t <= 0xc9) { if (take_be(in, 1 << (t - 0xc7), &n)) return -1; n += 1; }
    else if (t == 0xca) n = 4;
    else if (t == 0xcb) n = 8;
    else if (t >= 0xcc && t <= 0xd3) n = 1u << ((t - 0xcc) & 3);
    else if (t >= 0xd4 && t <= 0xd8) n = 1 + (1u << (t - 0xd4));
    else if (t == 0xdc || t == 0xdd || t == 0xde || t == 0xdf) {
        if (take_be(in, (t == 0xdc || t == 0xde) ? 2 : 4, &n)) return -1;
        if (t >= 0xde) n *= 2;
        while (n--) if (mp_skip(in)) return -1;
        return 0;
    } else return -1;
    if ((uint64_t)(in->end - in->p) < n) return -1;
    in->p += n;
    return 0;
}

int mp_str_is(const char *s, uint32_t len, const char *lit) {
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}
