// Prints what decode.c makes of instructions placed in 16-byte slots of a raw file, one
// JSON line per slot (test/trap-decode.test.ts compares it with what the assembler was
// asked to encode). usage: decode-cli FILE
#include "decode.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	static uint8_t text[1 << 20];
	FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
	if (!f) {
		perror(argc > 1 ? argv[1] : "usage: decode-cli FILE");
		return 2;
	}
	size_t n = fread(text, 1, sizeof text, f);
	fclose(f);
	static const char *const kinds[] = { "none", "in", "out", "ins", "outs", "load", "store" };
	for (size_t at = 0; at + 16 <= n; at += 16) {
		struct mt_insn d;
		if (mt_decode(text + at, 16, &d)) {
			printf("{\"ok\":false}\n");
			continue;
		}
		printf("{\"ok\":true,\"len\":%u,\"kind\":\"%s\",\"size\":%u,\"rep\":%u,\"addr32\":%u,\"port\":%d,"
		       "\"reg\":%d,\"high8\":%u,\"dst\":%u,\"sign\":%u,\"imm\":\"%llx\",\"base\":%d,\"index\":%d,"
		       "\"scale\":%u,\"disp\":%lld,\"fsgs\":%u}\n",
		       d.len, kinds[d.kind], d.size, d.rep, d.addr32, d.port, d.reg, d.reg_high8, d.dst_size,
		       d.sign_extend, (unsigned long long)d.imm, d.base, d.index, d.scale, (long long)d.disp, d.seg_fsgs);
	}
	return 0;
}
