// The local-echo device (MUXVISOR_LOCAL_ECHO=1): accesses are answered inside the
// SIGSEGV handler without a supervisor. It measures the bare trap cost and lets the
// decoder tests check every instruction form. A read returns the last value written
// to the same space+address, else a fixed pattern; string reads return the pattern.
// Shared with test programs so they can compute the values they must see.
#ifndef MUXTRAP_ECHO_H
#define MUXTRAP_ECHO_H

#include <stdint.h>

static inline uint64_t mt_echo_pattern(int space, uint64_t addr, uint32_t i)
{
	uint64_t x = (addr + 1) * 0x9E3779B97F4A7C15ull + (uint64_t)space * 0x1000193u + i * 0x100000001B3ull;
	return x ^ (x >> 29);
}

static inline uint64_t mt_mask(uint64_t v, int size)
{
	return size >= 8 ? v : v & ((1ull << (8 * size)) - 1);
}

#endif
