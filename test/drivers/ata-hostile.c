// A hostile user-mode ATA driver for the chaos test (test/chaos-hostile.test.ts). From a
// seed it does random port I/O, in every form the trap shim decodes (native/trap/decode.c:
// in/out imm8 and DX of 8/16/32 bits, [rep] ins/outs b/w/l, with 0x67, a downward direction
// flag and stray prefixes), to every ATA register (0x1F0-0x1F7, 0x3F6, the bus-master ports
// from BAR4), issues random commands with random task files (LBAs inside, at the edge of and
// beyond its window, LBA48, CHS, device 1), writes commands through string and wide forms,
// runs bus-master DMA with bad PRD tables, pulses SRST, and touches ungranted ports. It
// mostly brings the device back to an idle state after each operation, so that the MUX's
// watchdog does not cut it off at once, and ends cleanly, by exiting mid-command, or by
// stalling mid-command past the watchdog (--end).
//
// It never hangs: the run is bounded by --ops (and --max-ms), every wait loop by an
// iteration count, and a floating bus (all-ones) ends every wait. Exit status 0 when it ran
// (whatever the device answered), 1 on a bad argument.
//
// usage: ata-hostile [--seed S] [--ops N] [--max-ms MS] [--end clean|exit|stall] [--verbose]
//        (the seed also from $ATA_HOSTILE_SEED)
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define REG_DATA 0x1F0 // ATA_REG_DATA .. ATA_REG_CMD: the command block
#define REG_ERR 0x1F1
#define REG_NSECT 0x1F2
#define REG_DEVICE 0x1F6
#define REG_STATUS 0x1F7
#define REG_CMD 0x1F7
#define REG_CTL 0x3F6 // device control (write) / alternate status (read)
#define ST_BSY 0x80
#define ST_DRQ 0x08
#define ST_ERR 0x01
#define CTL_SRST 0x04
#define CTL_NIEN 0x02
#define BM_CMD 0 // offsets in the bus-master block: command, status, PRD table pointer
#define BM_STATUS 2
#define BM_PRD 4
#define BM_START 0x01
#define BM_ACTIVE 0x01 // in the status register
#define BM_TOMEM 0x08
#define BM_INTR 0x04
#define PRD_EOT 0x8000
#define SBUF 0x10000 // string I/O buffer: below 4 GiB, so that 0x67 forms address it too

static uint64_t rng;
static uint8_t *sbuf;
static uint8_t *dma;
static uint64_t dma_base, dma_size;
static uint16_t bm = 0xC000; // the first BAR placement of the supervisor, until the scan says
static uint32_t window = 2048; // sectors the drive shows us (IDENTIFY), until it says
static int verbose;
static struct {
	unsigned long accesses, ones, errors, denied_waits, dma, commands, srst, ungranted;
} st;

static uint64_t next(void) // splitmix64
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static uint32_t rnd(uint32_t n) { return n ? (uint32_t)(next() % n) : 0; }
static int chance(unsigned pct) { return rnd(100) < pct; }
static int rsize(void) { return 1 << rnd(3); }

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

// One line per operation on stderr with --verbose (to replay a seed by eye).
static void say(const char *fmt, ...)
{
	va_list ap;
	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

// ---- the instruction forms ------------------------------------------------------------

static uint32_t pin(uint16_t port, int size)
{
	uint32_t v = 0;
	if (size == 1)
		__asm__ volatile("inb %%dx, %%al" : "+a"(v) : "d"(port));
	else if (size == 2)
		__asm__ volatile("inw %%dx, %%ax" : "+a"(v) : "d"(port));
	else
		__asm__ volatile("inl %%dx, %%eax" : "=a"(v) : "d"(port));
	v &= size == 4 ? 0xffffffffu : (1u << 8 * size) - 1;
	st.accesses++;
	if (v == (size == 4 ? 0xffffffffu : (1u << 8 * size) - 1))
		st.ones++;
	return v;
}

static void pout(uint16_t port, int size, uint32_t v)
{
	if (size == 1)
		__asm__ volatile("outb %%al, %%dx" : : "a"(v), "d"(port));
	else if (size == 2)
		__asm__ volatile("outw %%ax, %%dx" : : "a"(v), "d"(port));
	else
		__asm__ volatile("outl %%eax, %%dx" : : "a"(v), "d"(port));
	st.accesses++;
}

// Fixed ports in the imm8 forms (none is granted to us), and odd prefixes on the DX forms.
static void odd_form(uint16_t port, unsigned which)
{
	uint32_t v = (uint32_t)next();
	switch (which % 10) {
	case 0: __asm__ volatile("inb $0x80, %%al" : "+a"(v)); break;
	case 1: __asm__ volatile("outb %%al, $0x80" : : "a"(v)); break;
	case 2: __asm__ volatile("inw $0x70, %%ax" : "+a"(v)); break;
	case 3: __asm__ volatile("outw %%ax, $0x92" : : "a"(v)); break;
	case 4: __asm__ volatile("inl $0x60, %%eax" : "+a"(v)); break;
	case 5: __asm__ volatile("outl %%eax, $0xed" : : "a"(v)); break;
	case 6: __asm__ volatile(".byte 0x48\n\tinb %%dx, %%al" : "+a"(v) : "d"(port)); break; // REX.W, ignored
	case 7: __asm__ volatile(".byte 0x2e\n\toutb %%al, %%dx" : : "a"(v), "d"(port)); break; // CS override
	case 8: __asm__ volatile(".byte 0x66\n\tinb %%dx, %%al" : "+a"(v) : "d"(port)); break; // 0x66 on a byte form
	default: __asm__ volatile(".byte 0x3e, 0x48\n\toutl %%eax, %%dx" : : "a"(v), "d"(port)); break;
	}
	st.accesses++;
}

// form bits: 1 rep (else one element), 2 address-size prefix (ecx/edi/esi), 4 direction flag set.
#define STR(insn)                                                                                  \
	__asm__ volatile("testl %[df], %[df]\n\tjz 1f\n\tstd\n1:\t" insn "\n\tcld"                    \
			 : "+D"(di), "+S"(si), "+c"(c)                                                 \
			 : "d"(port), [df] "r"(df)                                                     \
			 : "memory", "cc")

static void pstring(int out, uint16_t port, int size, uint32_t count, unsigned form)
{
	int df = (form & 4) != 0, sel = (out ? 12 : 0) + (form & 3) * 3 + (size == 1 ? 0 : size == 2 ? 1 : 2);
	if (!(form & 1))
		count = 1;
	if ((uint64_t)count * size > SBUF)
		count = SBUF / size;
	// Downwards the first element is the buffer's last one; the shim walks back from there.
	void *p = df ? sbuf + SBUF - size : sbuf, *di = p, *si = p;
	uint64_t c = count;
	switch (sel) { // in/out x {one, rep, addr32 one, addr32 rep} x {b, w, l}
	case 0: STR("insb"); break;            case 1: STR("insw"); break;            case 2: STR("insl"); break;
	case 3: STR("rep insb"); break;        case 4: STR("rep insw"); break;        case 5: STR("rep insl"); break;
	case 6: STR("addr32 insb"); break;     case 7: STR("addr32 insw"); break;     case 8: STR("addr32 insl"); break;
	case 9: STR("addr32 rep insb"); break; case 10: STR("addr32 rep insw"); break; case 11: STR("addr32 rep insl"); break;
	case 12: STR("outsb"); break;          case 13: STR("outsw"); break;          case 14: STR("outsl"); break;
	case 15: STR("rep outsb"); break;      case 16: STR("rep outsw"); break;      case 17: STR("rep outsl"); break;
	case 18: STR("addr32 outsb"); break;   case 19: STR("addr32 outsw"); break;   case 20: STR("addr32 outsl"); break;
	case 21: STR("addr32 rep outsb"); break; case 22: STR("addr32 rep outsw"); break; default: STR("addr32 rep outsl"); break;
	}
	st.accesses++;
}

// A random element count: mostly small, sometimes a sector or more, sometimes past the
// MUX's split bound (1024) and the shim's 4 KiB chunk, sometimes zero.
static uint32_t rcount(void)
{
	switch (rnd(8)) {
	case 0: return 0;
	case 1: case 2: case 3: return 1 + rnd(4);
	case 4: return 1 + rnd(64);
	case 5: return 250 + rnd(20);
	case 6: return 1000 + rnd(100);
	default: return rnd(8192);
	}
}

// ---- ATA helpers, each wait bounded --------------------------------------------------------

static uint8_t alt(void) { return (uint8_t)pin(REG_CTL, 1); }

// Waits for BSY to clear; all-ones is a floating bus (denied, or cut off): no use waiting.
static uint8_t wait_ready(unsigned tries)
{
	uint8_t s = 0xff;
	for (unsigned i = 0; i < tries; i++) {
		s = alt();
		if (s == 0xff) {
			st.denied_waits++;
			return s;
		}
		if (!(s & ST_BSY))
			return s;
	}
	return s;
}

static void srst(void)
{
	st.srst++;
	pout(REG_CTL, 1, CTL_SRST | CTL_NIEN);
	for (unsigned i = rnd(3); i; i--)
		alt();
	pout(REG_CTL, 1, chance(50) ? CTL_NIEN : 0);
	wait_ready(2000);
	pin(REG_STATUS, 1);
}

// Reads or writes the data port in a random form; returns after `rounds` blocks at most.
static void data_phase(int out, unsigned rounds)
{
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t s = wait_ready(1000);
		if (s == 0xff || !(s & ST_DRQ))
			return;
		if (out)
			for (unsigned i = 0; i < 512; i++)
				sbuf[i] = (uint8_t)next();
		switch (rnd(10)) {
		case 0: pstring(out, REG_DATA, 4, 128, 1); break; // 32-bit PIO
		case 1: pstring(out, REG_DATA, 1, 512, 1); break; // byte-wide: not a word each
		case 2: pstring(out, REG_DATA, 2, rcount(), 1 | (rnd(8) & 6)); break;
		case 3: for (unsigned i = 0; i < 256; i++) out ? pout(REG_DATA, 2, (uint32_t)next()) : (void)pin(REG_DATA, 2); break;
		case 4: pstring(out, REG_DATA, 2, 128, 1); break; // half a block
		default: pstring(out, REG_DATA, 2, 256, 1 | (rnd(8) & 6)); break;
		}
	}
}

// Back to idle: stop the bus master, release SRST, drain a data phase, reset when stuck,
// acknowledge with a status read, and read the error register after an error.
static void settle(void)
{
	pout(bm + BM_CMD, 1, 0);
	pout(REG_CTL, 1, chance(50) ? CTL_NIEN : 0); // interrupts on or off, SRST released
	uint8_t s = wait_ready(2000);
	for (unsigned r = 0; r < 3 && s != 0xff && s & ST_DRQ; r++) {
		data_phase(r & 1, 64);
		s = wait_ready(2000);
	}
	if (s != 0xff && (s & (ST_BSY | ST_DRQ) || chance(5)))
		srst();
	s = (uint8_t)pin(REG_STATUS, 1);
	if (s != 0xff && s & ST_ERR) {
		st.errors++;
		pin(REG_ERR, 1);
	}
	pout(bm + BM_STATUS, 1, 0x06);
}

// ---- commands -----------------------------------------------------------------------------

static const uint8_t OPS[] = {
	0x20, 0x21, 0x24, 0xC4, 0x29, 0xEC, 0xE4, 0xA1,       // PIO data-in (READ BUFFER, IDENTIFY PACKET)
	0x30, 0x31, 0x34, 0xC5, 0x39, 0xE8,                   // PIO data-out (WRITE BUFFER)
	0xC8, 0xC9, 0x25, 0xCA, 0xCB, 0x35, 0x06,             // DMA (DATA SET MANAGEMENT)
	0xE7, 0xEA, 0xEF, 0xEF, 0xC6, 0xC6, 0x40, 0x41, 0x42, // FLUSH, SET FEATURES, SET MULTIPLE, VERIFY
	0xF8, 0x27, 0xF9, 0x37, 0x90, 0x91, 0x10, 0x08, 0x00, // NATIVE MAX, SET MAX, DIAGNOSTIC, ...
	0xE0, 0xE1, 0xE2, 0xE3, 0xE5, 0xF1, 0xF2, 0x92, 0xB0, 0xA0, 0xFF,
};

static int op_class(uint8_t op) // 0 non-data, 1 PIO in, 2 PIO out, 3 DMA in, 4 DMA out
{
	if (op == 0x20 || op == 0x21 || op == 0x24 || op == 0xC4 || op == 0x29 || op == 0xEC || op == 0xE4 || op == 0xA1)
		return 1;
	if (op == 0x30 || op == 0x31 || op == 0x34 || op == 0xC5 || op == 0x39 || op == 0xE8)
		return 2;
	if (op == 0xC8 || op == 0xC9 || op == 0x25)
		return 3;
	return op == 0xCA || op == 0xCB || op == 0x35 || op == 0x06 ? 4 : 0;
}

// A start LBA and count: inside the window, across its end, beyond it, or anywhere.
static void pick_range(int ext, uint64_t *lba, uint32_t *count)
{
	uint32_t c = 1 + rnd(8);
	uint64_t l;
	switch (rnd(10)) {
	case 0: case 1: case 2: l = rnd(window - c + 1); break;
	case 3: l = window - c + rnd(3); break;      // ends at, one or two past the window's end
	case 4: l = window + rnd(1u << 16); break;   // beyond: the next guest's sectors
	case 5: l = next() & (ext ? 0xffffffffffffull : 0xfffffff); break;
	case 6: c = ext ? 65536 : 256, l = rnd(window); break; // count register 0
	case 7: l = window - 1, c = 1; break;
	case 8: l = (ext ? 0xffffffffffffull : 0xfffffff) - rnd(4); break;
	default: c = 1 + rnd(ext ? 65536 : 256), l = rnd(window); break;
	}
	*lba = l, *count = c;
}

static void tf_byte(uint16_t port, uint8_t prev, uint8_t cur, int ext)
{
	if (ext && chance(15)) { // both FIFO bytes by one string write
		sbuf[0] = prev, sbuf[1] = cur;
		pstring(1, port, 1, 2, 1);
		return;
	}
	if (ext)
		pout(port, 1, prev);
	pout(port, 1, cur);
}

// The command byte, mostly by outb, else through string and wide forms that also carry it.
static void write_command(uint8_t op, uint8_t device)
{
	switch (rnd(14)) {
	case 0: sbuf[0] = op; pstring(1, REG_CMD, 1, 1, 0); break;             // outsb
	case 1: sbuf[0] = (uint8_t)next(), sbuf[1] = op; pstring(1, REG_CMD, 1, 2, 1); break; // rep outsb: two commands
	case 2: pout(REG_DEVICE, 2, device | (uint32_t)op << 8); break;     // outw: DEVICE and CMD
	case 3: pout(REG_DEVICE - 2, 4, (uint32_t)rnd(1u << 16) | (uint32_t)device << 16 | (uint32_t)op << 24); break;
	case 4: sbuf[0] = device, sbuf[1] = op; pstring(1, REG_DEVICE, 2, 1, 1); break; // rep outsw
	case 5: memset(sbuf, op, 4); pstring(1, REG_CMD, 1, 4, 1 | (rnd(8) & 6)); break;
	default: pout(REG_CMD, 1, op); break;
	}
	st.commands++;
}

// A PRD table in our DMA memory, good or bad; returns its bus address.
static uint32_t build_prd(uint32_t bytes, unsigned *mode_out)
{
	unsigned mode = rnd(10), off = rnd(16) * 8;
	uint32_t *t = (uint32_t *)(dma + off), at = 0x10000, k = 0;
	uint64_t bad[] = { 0, dma_base + dma_size, dma_base - 0x1000, 0xfffff000u, dma_base + dma_size - 256 };
	*mode_out = mode;
	for (uint32_t done = 0; k < 64 && (done < bytes || k == 0); k++) {
		uint32_t len = bytes - done < 0x8000 ? bytes - done : 0x8000, addr = (uint32_t)(dma_base + at);
		if (mode == 3 && chance(50)) addr = (uint32_t)bad[rnd(5)];  // outside the DMA memory
		if (mode == 4) len = 0;                                       // 0 means 64 KiB
		if (mode == 5) len = chance(50) ? 1 + 2 * rnd(256) : 511;     // odd lengths
		if (mode == 6) len = rnd(0x10000);
		t[2 * k] = addr;
		t[2 * k + 1] = len & 0xffff;
		done += len ? len : 0x10000;
		at = (at + (len ? len : 0x10000) + 0xfff) & ~0xfffu;
		if (at + 0x10000 > dma_size)
			at = 0x10000;
	}
	if (mode != 7 && k) // mode 7: no EOT, the walk runs into whatever follows
		t[2 * (k - 1) + 1] |= PRD_EOT;
	else
		memset(t + 2 * k, rnd(2) ? 0 : 0xff, 256);
	if (mode == 8)
		return (uint32_t)bad[rnd(5)]; // the table itself outside the DMA memory
	return (uint32_t)(dma_base + off) + (mode == 9 ? 2 : 0); // 9: not dword aligned
}

static void command_op(void)
{
	uint8_t op = OPS[rnd(sizeof OPS)];
	if (chance(3))
		op = (uint8_t)next();
	int cls = op_class(op), ext = op == 0x24 || op == 0x29 || op == 0x34 || op == 0x39 || op == 0x25 || op == 0x35 || op == 0x42 || op == 0x27 || chance(10);
	uint64_t lba;
	uint32_t count;
	pick_range(ext, &lba, &count);
	uint8_t feat = (uint8_t)(op == 0xEF ? (uint8_t[]){ 0x02, 0x82, 0x03, 0xAA, 0x55, 0x66 }[rnd(6)] : next());
	if (op == 0xC6)
		count = (uint32_t[]){ 0, 1, 2, 4, 8, 16, 32, 3, 255, 128 }[rnd(10)];
	uint8_t device = (uint8_t)(0xE0 | (ext ? 0 : (lba >> 24) & 0x0f));
	if (chance(8))
		device = (uint8_t)(chance(50) ? 0xA0 | rnd(16) : chance(50) ? 0xF0 : next()); // CHS, device 1, anything
	say("ata-hostile: command 0x%02x lba %llu count %u device 0x%02x\n", op, (unsigned long long)lba, count, device);
	if (chance(95))
		settle(); // the device takes a command only when idle: start from there (mostly)
	tf_byte(REG_ERR, (uint8_t)next(), feat, ext);
	tf_byte(REG_NSECT, (uint8_t)(count >> 8), (uint8_t)count, ext);
	tf_byte(REG_NSECT + 1, (uint8_t)(lba >> 24), (uint8_t)lba, ext);
	tf_byte(REG_NSECT + 2, (uint8_t)(lba >> 32), (uint8_t)(lba >> 8), ext);
	tf_byte(REG_NSECT + 3, (uint8_t)(lba >> 40), (uint8_t)(lba >> 16), ext);
	pout(REG_DEVICE, 1, device);
	unsigned mode = 0;
	int dmaop = cls >= 3 || chance(5);
	if (dmaop) {
		st.dma++;
		uint32_t table = build_prd(count * 512, &mode);
		uint8_t dir = (cls == 3) ^ chance(15) ? BM_TOMEM : 0; // sometimes the wrong direction
		say("ata-hostile: DMA, PRD table 0x%x (mode %u), direction 0x%x\n", table, mode, dir);
		pout(bm + BM_CMD, 1, dir);
		if (chance(20)) { // the pointer byte by byte through a string write
			memcpy(sbuf, &table, 4);
			pstring(1, bm + BM_PRD, 1, 4, 1);
		} else {
			pout(bm + BM_PRD, 4, table);
		}
		pout(bm + BM_STATUS, 1, 0x06);
		if (chance(20))
			pout(bm + BM_CMD, 1, dir | BM_START); // started before the command
		write_command(op, device);
		pout(bm + BM_CMD, 1, dir | BM_START);
		for (unsigned i = 0; i < 3000; i++) {
			uint32_t b = pin(bm + BM_STATUS, 1);
			if (b == 0xff || b & BM_INTR || !(b & BM_ACTIVE) || chance(1))
				break;
		}
		if (chance(90))
			pout(bm + BM_CMD, 1, dir);
	} else {
		write_command(op, device);
		if (cls == 1 || cls == 2)
			data_phase(cls == 2, chance(70) ? (count < 32 ? count : 32) : rnd(3));
		else
			wait_ready(chance(80) ? 2000 : 3);
	}
	if (chance(92))
		settle();
}

// ---- the other operations -------------------------------------------------------------------

static uint16_t ata_port(void)
{
	unsigned k = rnd(26);
	if (k < 8) return REG_DATA + k;
	if (k < 12) return REG_CTL;
	if (k < 24) return bm + rnd(16);
	return REG_DATA + rnd(8);
}

// One random access to an ATA register, single or string, any width, any direction.
static void raw_op(void)
{
	uint16_t port = ata_port();
	int size = rsize(), out = chance(50);
	say("ata-hostile: raw %s port 0x%x size %d\n", out ? "out" : "in", port, size);
	if (out)
		for (unsigned i = 0; i < 64; i++)
			sbuf[i] = (uint8_t)next();
	if (chance(40))
		out ? pout(port, size, (uint32_t)next()) : (void)pin(port, size);
	else if (chance(20))
		odd_form(port, 6 + rnd(4));
	else
		pstring(out, port, size, rcount(), rnd(8));
	if (chance(85))
		settle();
}

// A port outside our grants: the secondary channel, POST, PIC, keyboard, anywhere.
static void ungranted_op(void)
{
	static const uint16_t ports[] = { 0x170, 0x171, 0x172, 0x173, 0x174, 0x175, 0x176, 0x177,
					  0x376, 0x3F7, 0x1F8, 0x80, 0x20, 0x21, 0x64, 0x3F8 };
	st.ungranted++;
	uint16_t port = chance(60) ? ports[rnd(sizeof ports / sizeof ports[0])] : (uint16_t)next();
	if (port >= 0xCF8 && port < 0xD00)
		port = 0x177; // the PCI ports are ours (our own view); the chaos there is elsewhere
	int size = rsize();
	switch (rnd(4)) {
	case 0: odd_form(REG_DATA, rnd(6)); break;
	case 1: pout(port, size, (uint32_t)next()); break;
	case 2: pin(port, size); break;
	default: pstring(chance(50), port, size, rcount(), rnd(8)); break;
	}
}

static uint32_t conf1(unsigned dev, unsigned fn, unsigned reg)
{
	pout(0xCF8, 4, 0x80000000u | dev << 11 | fn << 8 | reg);
	return pin(0xCFC, 4);
}

static int ide_dev = -1, ide_fn;

// PCI class 0101 on bus 0 (as ata-dma.c); bus mastering and I/O decode on.
static void find_ide(void)
{
	for (unsigned dev = 0; dev < 32 && ide_dev < 0; dev++)
		for (unsigned fn = 0; fn < 8; fn++) {
			uint32_t id = conf1(dev, fn, 0);
			if (id == 0xffffffffu) {
				if (fn == 0)
					break;
				continue;
			}
			if (conf1(dev, fn, 0x08) >> 16 == 0x0101) {
				ide_dev = (int)dev, ide_fn = fn;
				bm = (uint16_t)(conf1(dev, fn, 0x20) & ~3u);
				uint32_t cmd = conf1(dev, fn, 0x04);
				pout(0xCF8, 4, 0x80000000u | dev << 11 | fn << 8 | 0x04);
				pout(0xCFC, 4, cmd | 0x5);
				break;
			}
		}
}

// Its own PCI view: random config writes to the IDE function, mostly put back.
static void pci_op(void)
{
	if (ide_dev < 0)
		return;
	unsigned reg = rnd(2) ? (unsigned[]){ 0x04, 0x20, 0x40, 0x3C, 0x10 }[rnd(5)] : rnd(64) * 4;
	uint32_t was = conf1((unsigned)ide_dev, ide_fn, reg);
	pout(0xCFC, 4, (uint32_t)next());
	if (chance(85) || reg == 0x04 || reg == 0x20 || reg == 0x40) {
		pout(0xCF8, 4, 0x80000000u | (unsigned)ide_dev << 11 | ide_fn << 8 | reg);
		pout(0xCFC, 4, was);
	}
}

static void identify(void)
{
	uint16_t id[256];
	settle();
	pout(REG_DEVICE, 1, 0xA0);
	pout(REG_CMD, 1, 0xEC);
	uint8_t s = wait_ready(5000);
	if (s == 0xff || !(s & ST_DRQ))
		return;
	pstring(0, REG_DATA, 2, 256, 1);
	memcpy(id, sbuf, sizeof id);
	uint32_t w = id[60] | (uint32_t)id[61] << 16;
	if (w && w != 0xffffffffu)
		window = w;
	pin(REG_STATUS, 1);
}

// The last operation: a WRITE SECTORS of our own window left half done.
static void mid_command(void)
{
	settle();
	pout(REG_NSECT, 1, 2);
	pout(REG_NSECT + 1, 1, 0), pout(REG_NSECT + 2, 1, 0), pout(REG_NSECT + 3, 1, 0);
	pout(REG_DEVICE, 1, 0xE0);
	pout(REG_CMD, 1, 0x30);
	wait_ready(1000);
	pstring(1, REG_DATA, 2, 128, 1);
}

int main(int argc, char **argv)
{
	const char *env = getenv("ATA_HOSTILE_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)getpid();
	unsigned long ops = 2000, max_ms = 0;
	int end = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 0), i++;
		else if (!strcmp(a, "--ops")) ops = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--max-ms")) max_ms = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--end")) end = !strcmp(v, "clean") ? 0 : !strcmp(v, "exit") ? 1 : !strcmp(v, "stall") ? 2 : 3, i++;
		else if (!strcmp(a, "--verbose")) verbose = 1;
		else end = 3;
		if (end == 3) {
			fprintf(stderr, "usage: ata-hostile [--seed S] [--ops N] [--max-ms MS] [--end clean|exit|stall] [--verbose]\n");
			return 1;
		}
	}
	rng = seed;
	if (end < 0)
		end = (int)rnd(3);
	iopl(3); // the shim fakes it; without the shim the first access faults, as it should
	sbuf = mmap(NULL, SBUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	const char *base = getenv("MUXVISOR_DMA_BASE"), *size = getenv("MUXVISOR_DMA_SIZE");
	dma_base = base ? strtoull(base, NULL, 0) : 0x10000000;
	dma_size = size ? strtoull(size, NULL, 0) : 1 << 20;
	int fd = open("/dev/muxvisor-dma", O_RDWR | O_CLOEXEC);
	dma = fd < 0 || dma_size < 0x20000 ? MAP_FAILED : mmap(NULL, dma_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (sbuf == MAP_FAILED || dma == MAP_FAILED) {
		perror("ata-hostile: mmap (buffer below 4 GiB, /dev/muxvisor-dma)");
		return 1;
	}
	uint64_t t0 = now_ms();
	find_ide();
	identify();
	printf("ata-hostile: seed %llu, %lu ops, end %s, window %u sectors, bus master 0x%x\n", (unsigned long long)seed, ops,
	       (const char *[]){ "clean", "exit", "stall" }[end], window, bm);
	fflush(stdout);
	// Ungranted ports first, so that every run has its denials.
	odd_form(REG_DATA, 0), pout(0x170, 1, 0xEC), pin(0x177, 2);
	unsigned long done = 0;
	for (; done < ops && (!max_ms || now_ms() - t0 < max_ms); done++) {
		unsigned k = rnd(100);
		if (k < 40) command_op();
		else if (k < 70) raw_op();
		else if (k < 80) ungranted_op();
		else if (k < 85) { say("ata-hostile: srst\n"); srst(); }
		else if (k < 87) pci_op();
		else if (k < 92) usleep(rnd(1500)); // let the others have the device
		else if (k < 96) identify();
		else settle();
	}
	if (end)
		mid_command();
	if (end == 2)
		usleep(2500 * 1000), alt(); // past the MUX watchdog (2 s): cut off; the read floats
	printf("ata-hostile: seed %llu: %lu ops, %lu accesses (%lu all-ones), %lu commands, %lu DMA, %lu SRST, %lu ungranted, "
	       "%lu errors, %lu floating waits, %llu ms, end %s: done\n",
	       (unsigned long long)seed, done, st.accesses, st.ones, st.commands, st.dma, st.srst, st.ungranted, st.errors,
	       st.denied_waits, (unsigned long long)(now_ms() - t0), (const char *[]){ "clean", "exit", "stall" }[end]);
	return 0;
}
