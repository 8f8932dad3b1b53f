// Executes every instruction form the shim decodes against the local-echo device
// (MUXVISOR_LOCAL_ECHO=1) and checks registers and memory afterwards. It prints the
// access each form must produce ("expect ..." on stdout); the test compares that with
// the shim's trace (MUXVISOR_TRACE_FD). Modes: `forms` (default), `unsupported` (an
// `add` to MMIO: must die by SIGSEGV), `own-handler` (the program's SIGSEGV handler
// still runs for faults that are not the shim's), `sent-ignored` (a SIGSEGV sent by kill()
// while the program ignores it changes nothing), `sent-default` (a SIGSEGV sent by kill()
// with the default action ends the program, as without the shim).
#include <asm/prctl.h>
#include <sys/syscall.h>
#include "test-forms.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <unistd.h>

int failures;

void expect(int sp, char dir, uint64_t addr, int size, unsigned n, uint64_t v, const void *b)
{
	printf("expect %s %c 0x%llx/%d n=%u v=0x%llx", sp ? "mmio" : "pio", dir, (unsigned long long)addr,
	       size, n, (unsigned long long)v);
	if (b && n * size <= 64) {
		printf(" b=");
		for (unsigned k = 0; k < n * size; k++)
			printf("%02x", ((const uint8_t *)b)[k]);
	}
	printf("\n");
}

void check(const char *what, uint64_t got, uint64_t want)
{
	if (got != want) {
		failures++;
		printf("FAIL %s: got 0x%llx want 0x%llx\n", what, (unsigned long long)got, (unsigned long long)want);
	} else {
		printf("ok %s\n", what);
	}
	fflush(stdout);
}

uint64_t pat(int sp, uint64_t addr, int size)
{
	return mt_mask(mt_echo_pattern(sp, addr, 0), size);
}

static void port_forms(void)
{
	uint64_t rax = 0x1122334455667788ull, want;
	if (iopl(3) || ioperm(0, 0x400, 1))
		check("iopl/ioperm succeed", 1, 0);

	want = pat(PIO, 0x80, 1);
	expect(PIO, 'r', 0x80, 1, 1, want, NULL);
	asm volatile("inb $0x80, %%al" : "+a"(rax));
	check("inb imm8 merges al", rax, 0x1122334455667700ull | want);

	want = pat(PIO, 0x82, 2);
	expect(PIO, 'r', 0x82, 2, 1, want, NULL);
	asm volatile("inw $0x82, %%ax" : "+a"(rax));
	check("inw imm8 merges ax", rax, 0x1122334455660000ull | want);

	want = pat(PIO, 0x84, 4);
	expect(PIO, 'r', 0x84, 4, 1, want, NULL);
	asm volatile("inl $0x84, %%eax" : "+a"(rax));
	check("inl imm8 zero-extends", rax, want);

	for (int size = 1; size <= 4; size *= 2) {
		uint16_t port = (uint16_t)(0x1f0 + size);
		rax = 0xffffffffffffffffull;
		want = pat(PIO, port, size);
		expect(PIO, 'r', port, size, 1, want, NULL);
		if (size == 1)
			asm volatile("inb %%dx, %%al" : "+a"(rax) : "d"(port));
		else if (size == 2)
			asm volatile("inw %%dx, %%ax" : "+a"(rax) : "d"(port));
		else
			asm volatile("inl %%dx, %%eax" : "+a"(rax) : "d"(port));
		check(size == 1 ? "inb dx" : size == 2 ? "inw dx" : "inl dx", rax,
		      size == 4 ? want : (~0ull << (8 * size)) | want);
	}

	// out, then in of the same port: the echo device returns what was written.
	expect(PIO, 'w', 0x70, 1, 1, 0x8f, NULL);
	asm volatile("outb %%al, $0x70" : : "a"(0xdead008full));
	expect(PIO, 'w', 0x72, 2, 1, 0xbeef, NULL);
	asm volatile("outw %%ax, $0x72" : : "a"(0x1234beefull));
	expect(PIO, 'w', 0xcf8, 4, 1, 0x80000810, NULL);
	asm volatile("outl %%eax, %%dx" : : "a"(0x80000810u), "d"(0xcf8));
	expect(PIO, 'w', 0x3f6, 1, 1, 0x02, NULL);
	asm volatile("outb %%al, %%dx" : : "a"(0x02), "d"(0x3f6));
	expect(PIO, 'w', 0x1f0, 2, 1, 0xa55a, NULL);
	asm volatile("outw %%ax, %%dx" : : "a"(0xa55a), "d"(0x1f0));
	expect(PIO, 'r', 0xcf8, 4, 1, 0x80000810, NULL);
	check("outl dx then inl", inl(0xcf8), 0x80000810);
	expect(PIO, 'r', 0x72, 2, 1, 0xbeef, NULL);
	check("outw imm8 then inw", inw(0x72), 0xbeef);
}

static void string_forms(void)
{
	uint8_t buf[64], want[64];
	for (int size = 1; size <= 4; size *= 2) {
		uint16_t port = (uint16_t)(0x170 + size);
		uint64_t n = 5;
		uint8_t *di = buf;
		memset(buf, 0, sizeof buf);
		for (unsigned k = 0; k < n; k++) {
			uint64_t v = mt_echo_pattern(PIO, port, k);
			memcpy(want + k * size, &v, size);
		}
		expect(PIO, 'r', port, size, 5, 0, want);
		if (size == 1)
			asm volatile("rep insb" : "+D"(di), "+c"(n) : "d"(port) : "memory");
		else if (size == 2)
			asm volatile("rep insw" : "+D"(di), "+c"(n) : "d"(port) : "memory");
		else
			asm volatile("rep insl" : "+D"(di), "+c"(n) : "d"(port) : "memory");
		check(size == 1 ? "rep insb data" : size == 2 ? "rep insw data" : "rep insd data",
		      (uint64_t)memcmp(buf, want, 5 * size), 0);
		check("rep ins advances rdi, clears rcx", (uint64_t)(di - buf) + n, 5 * size);
	}
	// Direction flag set: elements go downwards from rdi.
	uint64_t n = 3;
	uint8_t *di = buf + 8;
	for (unsigned k = 0; k < 3; k++) {
		uint64_t v = mt_echo_pattern(PIO, 0x1f0, k);
		memcpy(want + 2 * k, &v, 2);
	}
	expect(PIO, 'r', 0x1f0, 2, 3, 0, want);
	asm volatile("std; rep insw; cld" : "+D"(di), "+c"(n) : "d"(0x1f0) : "memory");
	check("std rep insw element 0 at rdi", *(uint16_t *)(buf + 8), *(uint16_t *)want);
	check("std rep insw element 2 at rdi-4", *(uint16_t *)(buf + 4), *(uint16_t *)(want + 4));
	check("std rep insw leaves rdi below", (uint64_t)(buf + 8 - di), 6);
	// insb without rep: one element, rcx untouched.
	n = 77;
	di = buf;
	uint64_t v0 = pat(PIO, 0x60, 1);
	expect(PIO, 'r', 0x60, 1, 1, v0, NULL);
	asm volatile("insb" : "+D"(di), "+c"(n) : "d"(0x60) : "memory");
	check("insb without rep", buf[0] | (uint64_t)(di - buf) << 8 | n << 16, v0 | 1 << 8 | 77 << 16);
	// rep with rcx = 0 does nothing.
	n = 0;
	asm volatile("rep insw" : "+D"(di), "+c"(n) : "d"(0x60) : "memory");
	check("rep insw with rcx 0", (uint64_t)(di - buf), 1);

	// 0x67: ecx counts and edi points; the upper halves of rcx/rdi are ignored and zeroed.
	uint8_t *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (low == MAP_FAILED) {
		check("mmap MAP_32BIT", 1, 0);
	} else {
		uint64_t rdi = 0xdead000000000000ull | (uintptr_t)low, rcx = 0xbeef000000000003ull;
		for (unsigned k = 0; k < 3; k++)
			want[k] = (uint8_t)mt_echo_pattern(PIO, 0x61, k);
		expect(PIO, 'r', 0x61, 1, 3, 0, want);
		asm volatile("addr32 rep insb" : "+D"(rdi), "+c"(rcx) : "d"(0x61) : "memory");
		check("addr32 rep insb data", (uint64_t)memcmp(low, want, 3), 0);
		check("addr32 rep insb edi/ecx", rdi | rcx << 32, (uintptr_t)low + 3);
	}

	const uint8_t src[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	for (int size = 1; size <= 4; size *= 2) {
		const uint8_t *si = src;
		n = 3;
		expect(PIO, 'w', 0x1f0, size, 3, 0, src);
		if (size == 1)
			asm volatile("rep outsb" : "+S"(si), "+c"(n) : "d"(0x1f0) : "memory");
		else if (size == 2)
			asm volatile("rep outsw" : "+S"(si), "+c"(n) : "d"(0x1f0) : "memory");
		else
			asm volatile("rep outsl" : "+S"(si), "+c"(n) : "d"(0x1f0) : "memory");
		check("rep outs advances rsi, clears rcx", (uint64_t)(si - src) + n, 3 * size);
	}
	const uint8_t *si = src;
	expect(PIO, 'w', 0x1f0, 2, 1, 0x0201, NULL);
	asm volatile("outsw" : "+S"(si) : "d"(0x1f0) : "memory");
	check("outsw without rep", (uint64_t)(si - src), 2);

	// A segment override on the source: fs:[rsi] is the fs base plus rsi (here the TLS block).
	unsigned long fsbase = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fsbase) != 0) {
		check("arch_prctl(ARCH_GET_FS)", 1, 0);
	} else {
		uint64_t rsi = (uintptr_t)src - fsbase;
		n = 3;
		expect(PIO, 'w', 0x1f0, 1, 3, 0, src);
		asm volatile("rep outsb %%fs:(%%rsi), (%%dx)" : "+S"(rsi), "+c"(n) : "d"(0x1f0) : "memory");
		check("rep outsb fs: reads fs base + rsi, advances rsi", rsi + fsbase - (uintptr_t)src + n, 3);
	}
}

static jmp_buf jb;
static void own_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	printf("own handler: signal %d at %p\n", sig, si->si_addr);
	fflush(stdout);
	siglongjmp(jb, 1);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "forms";
	setvbuf(stdout, NULL, _IOLBF, 0);
	uint8_t *bar = map_bar();
	if (!strcmp(mode, "forms")) {
		port_forms();
		string_forms();
		mmio_forms(bar);
		printf("%d failures\n", failures);
		return failures ? 1 : 0;
	}
	if (!strcmp(mode, "unsupported")) {
		printf("adding to MMIO at %p\n", (void *)(bar + 0x10));
		asm volatile("addl $1, 0x10(%0)" : : "r"(bar) : "memory");
		printf("the add was skipped: wrong\n");
		return 3;
	}
	if (!strcmp(mode, "own-handler")) {
		struct sigaction sa = { .sa_sigaction = own_handler, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, NULL))
			return 4;
		check("port I/O still trapped after sigaction", inb(0x80), pat(PIO, 0x80, 1));
		check("MMIO still trapped after sigaction", *(volatile uint32_t *)(bar + 0x20), pat(MMIO, MMIO_BUS + 0x20, 4));
		volatile int *guard = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if ((void *)guard == MAP_FAILED)
			return 4;
		if (!sigsetjmp(jb, 1)) {
			*guard = 1; // not a BAR: the program's handler gets this fault
			printf("no fault: wrong\n");
			return 5;
		}
		printf("back from own handler\n");
		return failures ? 1 : 0;
	}
	if (!strcmp(mode, "sent-ignored") || !strcmp(mode, "sent-default")) {
		if (mode[5] == 'i' && signal(SIGSEGV, SIG_IGN) == SIG_ERR)
			return 4;
		check("port I/O trapped before kill", inb(0x80), pat(PIO, 0x80, 1));
		kill(getpid(), SIGSEGV);
		check("port I/O still trapped after kill", inb(0x80), pat(PIO, 0x80, 1));
		printf("alive after kill\n");
		return failures ? 1 : 0;
	}
	fprintf(stderr, "usage: test-forms [forms|unsupported|own-handler|sent-ignored|sent-default]\n");
	return 2;
}
