// Field extraction of channel messages (see wire.h).
#include "wire.h"
#include "msgpack.h"

#include <string.h>

static int key_is(const char *k, uint32_t klen, const char *want)
{
	return strlen(want) == klen && memcmp(k, want, klen) == 0;
}

int mt_wire_parse(const uint8_t *p, uint32_t len, struct mt_wire *m)
{
	struct mp_r r = { p, p + len };
	uint32_t n, klen, slen;
	const char *k, *s;
	memset(m, 0, sizeof *m);
	if (mp_read_map(&r, &n))
		return -1;
	while (n--) {
		if (mp_read_str(&r, &k, &klen))
			return -1;
		uint64_t *num = key_is(k, klen, "id") ? &m->id : key_is(k, klen, "v") ? &m->v
			: key_is(k, klen, "line") ? &m->line : key_is(k, klen, "level") ? &m->level
			: key_is(k, klen, "a") ? &m->a : key_is(k, klen, "n") ? &m->n
			: key_is(k, klen, "slot") ? &m->slot : NULL;
		enum mp_type ty = mp_peek(&r);
		if (num && (ty == MP_INT || ty == MP_FLOAT)) {
			if (mp_read_uint(&r, num))
				return -1;
		} else if (key_is(k, klen, "b") && ty == MP_BIN) {
			if (mp_read_bin(&r, &m->b, &m->blen))
				return -1;
		} else if (ty == MP_STR && (key_is(k, klen, "t") || key_is(k, klen, "e") ||
					    key_is(k, klen, "code") || key_is(k, klen, "msg"))) {
			if (mp_read_str(&r, &s, &slen))
				return -1;
			if (key_is(k, klen, "t")) {
				if (slen >= sizeof m->t)
					slen = sizeof m->t - 1;
				memcpy(m->t, s, slen);
			} else if (key_is(k, klen, "e")) {
				m->e = s, m->elen = slen;
			} else if (key_is(k, klen, "code")) {
				m->code = s, m->codelen = slen;
			} else {
				m->text = s, m->textlen = slen;
			}
		} else if (mp_skip(&r)) {
			return -1;
		}
	}
	return 0;
}

