// The fields of a channel message (src/channel/PROTOCOL.md) that the peer uses, pulled
// out of one msgpack map. Pointers point into the frame buffer.
#ifndef MUXTRAP_WIRE_H
#define MUXTRAP_WIRE_H

#include <stdint.h>

struct mt_wire {
	char t[8]; // message type, truncated to 7 characters
	uint64_t id, v, line, level, a, n, slot;
	const uint8_t *b;
	uint32_t blen;
	const char *e, *code, *text;
	uint32_t elen, codelen, textlen;
};

// 0, or -1 when the payload is not a map of string keys or a value is truncated.
// Keys it does not know, and known keys of an unexpected type, are skipped.
int mt_wire_parse(const uint8_t *p, uint32_t len, struct mt_wire *m);

#endif
