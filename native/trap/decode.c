// x86-64 decoder for trapped port I/O and MMIO instructions (see decode.h).
// Reference: Intel SDM vol. 2, "Instruction Format" (prefixes, REX, ModRM, SIB).
#include "decode.h"

#include <string.h>

// Legacy prefixes (SDM 2.1.1).
#define PFX_OPSIZE 0x66
#define PFX_ADDRSIZE 0x67
#define PFX_REP 0xF3
#define PFX_REPNE 0xF2
#define PFX_LOCK 0xF0
#define PFX_FS 0x64
#define PFX_GS 0x65

// REX bits (SDM 2.2.1).
#define REX_W 0x8
#define REX_R 0x4
#define REX_X 0x2
#define REX_B 0x1

#define MAX_INSN_LEN 15

struct cursor {
	const uint8_t *code;
	size_t avail;
	size_t i;
};

static int take(struct cursor *c, uint8_t *out)
{
	if (c->i >= c->avail || c->i >= MAX_INSN_LEN)
		return -1;
	*out = c->code[c->i++];
	return 0;
}

static int take_le(struct cursor *c, int bytes, uint64_t *out)
{
	uint64_t v = 0;
	for (int k = 0; k < bytes; k++) {
		uint8_t b;
		if (take(c, &b))
			return -1;
		v |= (uint64_t)b << (8 * k);
	}
	*out = v;
	return 0;
}

static int64_t sign_extend(uint64_t v, int bytes)
{
	int shift = 64 - 8 * bytes;
	return (int64_t)(v << shift) >> shift;
}

// ModRM + optional SIB + displacement for a memory operand; fills base/index/scale/disp
// and returns the 3-bit reg field in *reg3. A register operand (mod == 3) is not memory.
static int modrm_memory(struct cursor *c, uint8_t rex, struct mt_insn *d, int *reg3)
{
	uint8_t modrm, sib;
	if (take(c, &modrm))
		return -1;
	int mod = modrm >> 6, rm = modrm & 7;
	*reg3 = (modrm >> 3) & 7;
	if (mod == 3)
		return -1;
	d->index = MT_NO_REG;
	d->scale = 1;
	int disp_bytes = mod == 1 ? 1 : mod == 2 ? 4 : 0;
	if (rm == 4) {
		if (take(c, &sib))
			return -1;
		int idx = ((sib >> 3) & 7) | (rex & REX_X ? 8 : 0);
		d->scale = (uint8_t)(1 << (sib >> 6));
		d->index = idx == 4 ? MT_NO_REG : idx; // index 100b without REX.X means none
		int base = sib & 7;
		if (base == 5 && mod == 0) {
			d->base = MT_NO_REG; // [index*scale + disp32]
			disp_bytes = 4;
		} else {
			d->base = base | (rex & REX_B ? 8 : 0);
		}
	} else if (rm == 5 && mod == 0) {
		d->base = MT_RIP_REL; // [rip + disp32], rip of the next instruction
		disp_bytes = 4;
	} else {
		d->base = rm | (rex & REX_B ? 8 : 0);
	}
	uint64_t disp = 0;
	if (disp_bytes && take_le(c, disp_bytes, &disp))
		return -1;
	d->disp = disp_bytes ? sign_extend(disp, disp_bytes) : 0;
	return 0;
}

static int operand_size(uint8_t rex, int opsize16)
{
	return rex & REX_W ? 8 : opsize16 ? 2 : 4;
}

int mt_decode(const uint8_t *code, size_t avail, struct mt_insn *d)
{
	struct cursor c = { code, avail, 0 };
	int opsize16 = 0;
	uint8_t b, rex = 0;
	memset(d, 0, sizeof *d);
	d->port = -1;
	d->reg = MT_NO_REG;
	d->base = MT_NO_REG;
	d->index = MT_NO_REG;

	for (;;) { // legacy prefixes, any order
		if (take(&c, &b))
			return -1;
		if (b == PFX_OPSIZE)
			opsize16 = 1;
		else if (b == PFX_ADDRSIZE)
			d->addr32 = 1;
		else if (b == PFX_REP || b == PFX_REPNE)
			d->rep = 1;
		else if (b == PFX_FS || b == PFX_GS)
			d->seg_fsgs = b == PFX_FS ? MT_SEG_FS : MT_SEG_GS;
		else if (b == 0x2E || b == 0x36 || b == 0x3E || b == 0x26 || b == PFX_LOCK)
			; // flat segments in 64-bit mode; lock changes nothing we emulate
		else
			break;
	}
	if ((b & 0xF0) == 0x40) { // REX must come right before the opcode
		rex = b;
		if (take(&c, &b))
			return -1;
	}

	int reg3;
	switch (b) {
	case 0xE4: case 0xE5: case 0xE6: case 0xE7: { // in/out with imm8 port
		uint8_t port;
		if (take(&c, &port))
			return -1;
		d->port = port;
		d->kind = b < 0xE6 ? MT_IN : MT_OUT;
		d->size = b & 1 ? (opsize16 ? 2 : 4) : 1; // REX.W is ignored by in/out
		break;
	}
	case 0xEC: case 0xED: case 0xEE: case 0xEF: // in/out with port in DX
		d->kind = b < 0xEE ? MT_IN : MT_OUT;
		d->size = b & 1 ? (opsize16 ? 2 : 4) : 1;
		break;
	case 0x6C: case 0x6D: case 0x6E: case 0x6F: // ins/outs, string forms
		d->kind = b < 0x6E ? MT_INS : MT_OUTS;
		d->size = b & 1 ? (opsize16 ? 2 : 4) : 1;
		break;
	case 0x88: case 0x89: case 0x8A: case 0x8B: // mov m,r / mov r,m
		if (modrm_memory(&c, rex, d, &reg3))
			return -1;
		d->kind = b < 0x8A ? MT_STORE : MT_LOAD;
		d->size = b & 1 ? operand_size(rex, opsize16) : 1;
		d->dst_size = d->size;
		d->reg = reg3 | (rex & REX_R ? 8 : 0);
		if (d->size == 1 && !rex && reg3 >= 4) { // AH, CH, DH, BH
			d->reg = reg3 - 4;
			d->reg_high8 = 1;
		}
		break;
	case 0xC6: case 0xC7: { // mov m, imm
		uint64_t imm;
		if (modrm_memory(&c, rex, d, &reg3) || reg3 != 0)
			return -1;
		d->kind = MT_STORE;
		d->size = b == 0xC6 ? 1 : operand_size(rex, opsize16);
		int imm_bytes = d->size == 8 ? 4 : d->size; // imm32 sign-extended for REX.W
		if (take_le(&c, imm_bytes, &imm))
			return -1;
		d->imm = d->size == 8 ? (uint64_t)sign_extend(imm, 4) : imm;
		break;
	}
	case 0x0F: { // movzx / movsx
		uint8_t op2;
		if (take(&c, &op2))
			return -1;
		if (op2 != 0xB6 && op2 != 0xB7 && op2 != 0xBE && op2 != 0xBF)
			return -1;
		if (modrm_memory(&c, rex, d, &reg3))
			return -1;
		d->kind = MT_LOAD;
		d->size = op2 & 1 ? 2 : 1;
		d->dst_size = (uint8_t)operand_size(rex, opsize16);
		d->sign_extend = op2 >= 0xBE;
		d->reg = reg3 | (rex & REX_R ? 8 : 0);
		break;
	}
	default:
		return -1;
	}
	d->len = (uint8_t)c.i;
	return 0;
}

const char *mt_reg_name(int reg)
{
	static const char *const names[16] = {
		"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
		"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	};
	return reg >= 0 && reg < 16 ? names[reg] : "?";
}
