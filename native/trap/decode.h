// x86-64 decoder for the instructions a trapped driver uses to reach hardware:
// port I/O (in/out, ins/outs) and MMIO moves (mov, movzx/movsx, mov imm).
// Pure: no I/O, no globals, safe to call from a signal handler.
#ifndef MUXTRAP_DECODE_H
#define MUXTRAP_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum mt_kind {
	MT_NONE = 0,
	MT_IN,    // in al/ax/eax, imm8|dx
	MT_OUT,   // out imm8|dx, al/ax/eax
	MT_INS,   // [rep] insb/insw/insd
	MT_OUTS,  // [rep] outsb/outsw/outsd
	MT_LOAD,  // mov r, m / movzx / movsx
	MT_STORE, // mov m, r / mov m, imm
};

#define MT_NO_REG (-1)
#define MT_RIP_REL (-2)

// Segment override of a memory operand (0: none; the flat ds/es/ss/cs in 64-bit mode).
enum { MT_SEG_FS = 1, MT_SEG_GS = 2 };

struct mt_insn {
	enum mt_kind kind;
	uint8_t len;         // total instruction length in bytes
	uint8_t size;        // access width: 1, 2, 4, 8
	uint8_t rep;         // F3/F2 prefix (string forms)
	uint8_t addr32;      // 0x67 prefix: 32-bit addresses and counters
	uint8_t seg_fsgs;    // fs/gs override (MT_SEG_FS/GS): the effective address is not flat
	int port;            // imm8 port, or -1 when the port is in DX
	int reg;             // GPR 0..15 (load destination, store source) or MT_NO_REG
	uint8_t reg_high8;   // reg names AH/CH/DH/BH (8-bit operand, no REX)
	uint8_t dst_size;    // width written to the destination register (loads)
	uint8_t sign_extend; // movsx
	uint64_t imm;        // store immediate, already sign-extended to size
	int base;            // GPR, MT_NO_REG, or MT_RIP_REL
	int index;           // GPR or MT_NO_REG
	uint8_t scale;       // 1, 2, 4, 8
	int64_t disp;
};

// Decodes the instruction at code[0..avail). Returns 0 and fills *d for a supported
// form, -1 otherwise. Reads no byte past the end of a supported instruction.
int mt_decode(const uint8_t *code, size_t avail, struct mt_insn *d);

// Name of a GPR number for messages ("rax", "r12").
const char *mt_reg_name(int reg);

#endif
