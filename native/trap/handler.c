// The SIGSEGV handler: decodes the faulting instruction (decode.c), turns it into an
// access, has it answered (local echo or the supervisor over the channel), writes the
// result into the saved registers or memory and steps over the instruction.
// A fault it does not own goes to the program's own SIGSEGV disposition.
#include "muxtrap.h"
#include "decode.h"
#include "echo.h"

#include <errno.h>
#include <string.h>
#include <asm/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_REGIONS 32
#define ECHO_SLOTS 64
#define EFLAGS_DF 0x400 // direction flag: string instructions walk downwards

enum mt_mode mt_mode = MT_MODE_OFF;
int mt_trace_fd = -1;

static struct mt_region regions[MAX_REGIONS];
static struct sigaction app_segv; // what the program asked for SIGSEGV (default: SIG_DFL)

// ucontext gregs index of each x86 GPR number (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15).
static const int greg_of[16] = {
	REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
	REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

int mt_region_add(uintptr_t start, size_t len, uint64_t bus)
{
	for (int i = 0; i < MAX_REGIONS; i++) {
		if (!regions[i].len) {
			regions[i] = (struct mt_region){ start, len, bus };
			return 0;
		}
	}
	errno = ENOMEM;
	return -1;
}

void mt_region_remove(uintptr_t start, size_t len)
{
	for (int i = 0; i < MAX_REGIONS; i++)
		if (regions[i].len && regions[i].start >= start && regions[i].start < start + len)
			regions[i].len = 0; // whole regions only: drivers unmap what they mapped
}

static const struct mt_region *region_of(uintptr_t a)
{
	for (int i = 0; i < MAX_REGIONS; i++)
		if (regions[i].len && a - regions[i].start < regions[i].len)
			return &regions[i];
	return NULL;
}

static struct {
	uint8_t used, space;
	uint64_t addr, value;
} echo_slots[ECHO_SLOTS];

static void echo(const struct mt_acc *a, struct mt_rep *r)
{
	unsigned h = (unsigned)((a->addr * 31 + a->space) % ECHO_SLOTS), i = h;
	while (echo_slots[i].used && (echo_slots[i].addr != a->addr || echo_slots[i].space != a->space)) {
		i = (i + 1) % ECHO_SLOTS;
		if (i == h)
			break; // full: the pattern answers
	}
	if (a->write && a->count == 1) {
		echo_slots[i].used = 1, echo_slots[i].space = (uint8_t)a->space;
		echo_slots[i].addr = a->addr, echo_slots[i].value = a->value;
	} else if (!a->write && a->count == 1) {
		int hit = echo_slots[i].used && echo_slots[i].addr == a->addr && echo_slots[i].space == a->space;
		r->value = mt_mask(hit ? echo_slots[i].value : mt_echo_pattern(a->space, a->addr, 0), a->size);
	} else if (!a->write) {
		for (uint32_t k = 0; k < a->count; k++) {
			uint64_t v = mt_echo_pattern(a->space, a->addr, k);
			memcpy(r->data + k * a->size, &v, a->size);
		}
	}
}

// One line per access on MUXVISOR_TRACE_FD: `pio r 0x80/1 n=1 v=0x5a [b=..] [refused]`.
static void trace(const struct mt_acc *a, const struct mt_rep *r)
{
	static const char *const sp[] = { "pio", "mmio", "pcicfg" };
	struct mt_msg m = { .n = 0 };
	uint32_t bytes = a->count * a->size;
	msg_s(&m, sp[a->space]);
	msg_s(&m, a->write ? " w " : " r ");
	msg_x(&m, a->addr);
	msg_s(&m, "/");
	msg_u(&m, a->size);
	msg_s(&m, " n=");
	msg_u(&m, a->count);
	msg_s(&m, " v=");
	msg_x(&m, a->count > 1 ? 0 : a->write ? a->value : r->value);
	if (a->count > 1 && bytes <= 64) {
		msg_s(&m, " b=");
		for (uint32_t k = 0; k < bytes; k++) {
			uint8_t c = a->write ? a->data[k] : r->data[k];
			char t[3] = { "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15], 0 };
			msg_s(&m, t);
		}
	}
	if (r->refused)
		msg_s(&m, " refused");
	msg_s(&m, "\n");
	msg_out(&m, mt_trace_fd);
}

void mt_access(struct mt_acc *a, struct mt_rep *r)
{
	r->value = 0;
	r->refused = 0;
	if (mt_mode == MT_MODE_ECHO) {
		echo(a, r);
	} else if (mt_mode == MT_MODE_CHANNEL) {
		mt_connect();
		mt_chan_access(a, r);
	} else { // no supervisor configured: the bus floats
		mt_connect(); // says so, once
		r->value = mt_mask(~0ull, a->size);
		r->refused = 1;
		if (r->data)
			memset(r->data, 0xff, a->count * a->size);
	}
	if (mt_trace_fd >= 0)
		trace(a, r);
}

// Writes a loaded value into a register the way the CPU does: 32-bit results
// zero-extend to 64 bits, 8- and 16-bit results leave the upper bits alone.
static void set_reg(greg_t *g, int reg, int high8, int size, uint64_t v)
{
	uint64_t *p = (uint64_t *)&g[greg_of[reg]];
	if (high8)
		*p = (*p & ~0xff00ull) | (v & 0xff) << 8;
	else if (size == 1)
		*p = (*p & ~0xffull) | (v & 0xff);
	else if (size == 2)
		*p = (*p & ~0xffffull) | (v & 0xffff);
	else if (size == 4)
		*p = v & 0xffffffffull;
	else
		*p = v;
}

static uint64_t get_reg(const greg_t *g, int reg, int high8)
{
	uint64_t v = (uint64_t)g[greg_of[reg]];
	return high8 ? v >> 8 : v;
}

// Counter/pointer registers of string I/O honour the 0x67 prefix (ecx/esi/edi).
static uint64_t addr_reg(const greg_t *g, int reg, int addr32)
{
	uint64_t v = (uint64_t)g[greg_of[reg]];
	return addr32 ? (uint32_t)v : v;
}

// The fs or gs base (arch_prctl is a plain syscall: async-signal-safe); 0 without an override.
static uint64_t segment_base(int seg)
{
	unsigned long base = 0;
	if (seg && syscall(SYS_arch_prctl, seg == MT_SEG_FS ? ARCH_GET_FS : ARCH_GET_GS, &base) != 0)
		base = 0;
	return base;
}

static void string_io(greg_t *g, const struct mt_insn *d, uint16_t port)
{
	enum { RCX = 1, RSI = 6, RDI = 7 };
	int ins = d->kind == MT_INS, ptr_reg = ins ? RDI : RSI;
	uint64_t left = d->rep ? addr_reg(g, RCX, d->addr32) : 1;
	int64_t step = g[REG_EFL] & EFLAGS_DF ? -(int64_t)d->size : d->size;
	// outs reads fs:/gs:[rsi] under an override (ins always writes es:[rdi], which is flat).
	uint64_t ptr = addr_reg(g, ptr_reg, d->addr32) + (ins ? 0 : segment_base(d->seg_fsgs));
	uint8_t buf[MT_CHUNK];
	while (left) {
		uint32_t n = left < MT_CHUNK / d->size ? (uint32_t)left : MT_CHUNK / d->size;
		struct mt_acc a = { MT_PIO, port, d->size, !ins, 0, n, buf };
		struct mt_rep r = { 0, ins ? buf : NULL, 0 };
		if (!ins)
			for (uint32_t k = 0; k < n; k++)
				memcpy(buf + k * d->size, (const void *)(uintptr_t)(ptr + k * step), d->size);
		if (n == 1 && !ins)
			memcpy(&a.value, buf, d->size), a.data = NULL;
		if (n == 1 && ins)
			r.data = NULL;
		mt_access(&a, &r);
		if (n == 1 && ins)
			memcpy(buf, &r.value, d->size);
		if (ins)
			for (uint32_t k = 0; k < n; k++)
				memcpy((void *)(uintptr_t)(ptr + k * step), buf + k * d->size, d->size);
		ptr += n * step;
		left -= n;
	}
	set_reg(g, ptr_reg, 0, d->addr32 ? 4 : 8, ptr - (ins ? 0 : segment_base(d->seg_fsgs)));
	if (d->rep)
		set_reg(g, RCX, 0, d->addr32 ? 4 : 8, 0);
}

static void port_io(greg_t *g, const struct mt_insn *d)
{
	enum { RAX = 0, RDX = 2 };
	uint16_t port = d->port >= 0 ? (uint16_t)d->port : (uint16_t)g[REG_RDX];
	if (d->kind == MT_INS || d->kind == MT_OUTS) {
		string_io(g, d, port);
		return;
	}
	struct mt_acc a = { MT_PIO, port, d->size, d->kind == MT_OUT, 0, 1, NULL };
	struct mt_rep r = { 0, NULL, 0 };
	if (a.write)
		a.value = mt_mask(get_reg(g, RAX, 0), d->size);
	mt_access(&a, &r);
	if (!a.write)
		set_reg(g, RAX, 0, d->size, r.value);
}

static uint64_t effective_address(const greg_t *g, const struct mt_insn *d)
{
	uint64_t ea = (uint64_t)d->disp;
	if (d->base == MT_RIP_REL)
		ea += (uint64_t)g[REG_RIP] + d->len;
	else if (d->base != MT_NO_REG)
		ea += (uint64_t)g[greg_of[d->base]];
	if (d->index != MT_NO_REG)
		ea += (uint64_t)g[greg_of[d->index]] * d->scale;
	return d->addr32 ? (uint32_t)ea : ea;
}

static void mmio(greg_t *g, const struct mt_insn *d, const struct mt_region *reg, uintptr_t fault)
{
	// fs/gs-relative operands are not flat; the kernel's fault address is then the truth.
	uint64_t ea = d->seg_fsgs ? fault : effective_address(g, d);
	if (ea - reg->start >= reg->len)
		ea = fault; // an access that starts before the region and spills into it
	struct mt_acc a = { MT_MMIO, reg->bus + (ea - reg->start), d->size, d->kind == MT_STORE, 0, 1, NULL };
	struct mt_rep r = { 0, NULL, 0 };
	if (a.write)
		a.value = mt_mask(d->reg == MT_NO_REG ? d->imm : get_reg(g, d->reg, d->reg_high8), d->size);
	mt_access(&a, &r);
	if (a.write)
		return;
	uint64_t v = mt_mask(r.value, d->size);
	if (d->sign_extend)
		v = (uint64_t)((int64_t)(v << (64 - 8 * d->size)) >> (64 - 8 * d->size));
	set_reg(g, d->reg, d->reg_high8, d->dst_size, v);
}

static void report_unsupported(const uint8_t *code, uintptr_t rip, uintptr_t addr, const struct mt_region *reg)
{
	struct mt_msg m = { .n = 0 };
	size_t avail = 4096 - (rip & 4095); // do not read past the code's page
	msg_s(&m, "muxtrap: unsupported instruction at rip ");
	msg_x(&m, rip);
	msg_s(&m, " touching MMIO address ");
	msg_x(&m, addr);
	msg_s(&m, " (bus ");
	msg_x(&m, reg->bus + (addr - reg->start));
	msg_s(&m, "): bytes from rip ");
	msg_bytes(&m, code, avail < 15 ? avail : 15);
	msg_s(&m, "; delivering SIGSEGV\n");
	msg_out(&m, 2);
}

// The fault is not ours: behave as if the shim were absent.
static void pass_on(int sig, siginfo_t *si, void *ctx)
{
	struct sigaction app = app_segv;
	if (app.sa_flags & SA_RESETHAND)
		app_segv.sa_handler = SIG_DFL;
	if (app.sa_flags & SA_SIGINFO && app.sa_sigaction) {
		app.sa_sigaction(sig, si, ctx);
	} else if (app.sa_handler != SIG_DFL && app.sa_handler != SIG_IGN) {
		app.sa_handler(sig);
	} else if (si->si_code <= 0) {
		// Sent by kill()/tgkill()/sigqueue(), not a fault: nothing re-executes, so the
		// default action must be asked for. SIGSEGV is blocked in this handler: the signal
		// sent here stays pending and is delivered, with SIG_DFL, as the handler returns.
		if (app.sa_handler == SIG_IGN)
			return; // the program ignores a sent SIGSEGV; our handler stays for its port I/O
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigemptyset(&dfl.sa_mask);
		mt_real_sigaction(SIGSEGV, &dfl, NULL);
		syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSEGV);
	} else { // a fault, default action: returning re-executes the instruction, which faults again
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigemptyset(&dfl.sa_mask);
		mt_real_sigaction(SIGSEGV, &dfl, NULL);
	}
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	int saved_errno = errno;
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	const uint8_t *code = (const uint8_t *)g[REG_RIP];
	uintptr_t fault = (uintptr_t)si->si_addr;
	struct mt_insn d;
	int decoded = mt_decode(code, 15, &d) == 0;
	const struct mt_region *reg = si->si_code == SEGV_ACCERR ? region_of(fault) : NULL;

	// Port I/O without iopl/ioperm is a general-protection fault: SI_KERNEL, no address.
	if (si->si_code == SI_KERNEL && decoded && d.kind >= MT_IN && d.kind <= MT_OUTS) {
		port_io(g, &d);
		g[REG_RIP] += d.len;
	} else if (reg && decoded && (d.kind == MT_LOAD || d.kind == MT_STORE)) {
		mmio(g, &d, reg, fault);
		g[REG_RIP] += d.len;
	} else {
		if (reg)
			report_unsupported(code, (uintptr_t)code, fault, reg);
		pass_on(sig, si, ctx);
	}
	errno = saved_errno;
}

void mt_install_handler(void)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	app_segv.sa_handler = SIG_DFL;
	if (mt_real_sigaction(SIGSEGV, &sa, NULL) < 0)
		mt_perror("sigaction(SIGSEGV)", NULL);
}

// The program's sigaction(SIGSEGV): remembered and honoured for faults that are not
// ours; our handler stays installed.
int mt_app_sigaction(const struct sigaction *act, struct sigaction *old)
{
	if (old)
		*old = app_segv;
	if (act)
		app_segv = *act;
	return 0;
}
