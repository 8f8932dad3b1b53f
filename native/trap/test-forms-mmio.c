// MMIO part of the instruction-form test (see test-forms.c): loads, stores, movzx/movsx,
// immediates, every addressing form (disp8/disp32, SIB, index without base, REX.X/B,
// RIP-relative) on a BAR mapped over bar_page.
#include "test-forms.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint8_t bar_page[2 * 4096] __attribute__((aligned(4096), used));

uint8_t *map_bar(void)
{
	const char *path = getenv("MUXVISOR_MMIO_PATH");
	int fd = open(path ? path : "/dev/mem", O_RDWR | O_SYNC);
	if (fd < 0) {
		perror("open BAR");
		exit(2);
	}
	// Over a static array, so that RIP-relative operands can name it.
	void *p = mmap(bar_page, sizeof bar_page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, MMIO_BUS);
	if (p == MAP_FAILED) {
		perror("mmap BAR");
		exit(2);
	}
	return p;
}

#define BUS(off) (MMIO_BUS + (off))

static void loads(uint8_t *bar)
{
	uint64_t rax = ~0ull, rsi = ~0ull, v;
	expect(MMIO, 'r', BUS(0x100), 1, 1, pat(MMIO, BUS(0x100), 1), NULL);
	asm volatile("movb 0x100(%1), %%al" : "+a"(rax) : "b"(bar));
	check("mov al, [rbx+disp8]", rax, ~0xffull | pat(MMIO, BUS(0x100), 1));
	expect(MMIO, 'r', BUS(0x101), 1, 1, pat(MMIO, BUS(0x101), 1), NULL);
	asm volatile("movb 0x101(%1), %%ah" : "+a"(rax) : "b"(bar));
	check("mov ah, [rbx+disp8]", rax & 0xff00, pat(MMIO, BUS(0x101), 1) << 8);
	expect(MMIO, 'r', BUS(0x102), 1, 1, pat(MMIO, BUS(0x102), 1), NULL);
	asm volatile("movb 0x102(%1), %%sil" : "+S"(rsi) : "b"(bar));
	check("mov sil (REX), [rbx]", rsi, ~0xffull | pat(MMIO, BUS(0x102), 1));
	rax = ~0ull;
	expect(MMIO, 'r', BUS(0x104), 2, 1, pat(MMIO, BUS(0x104), 2), NULL);
	asm volatile("movw 0x104(%1), %%ax" : "+a"(rax) : "b"(bar));
	check("mov ax (0x66)", rax, ~0xffffull | pat(MMIO, BUS(0x104), 2));
	expect(MMIO, 'r', BUS(0x108), 4, 1, pat(MMIO, BUS(0x108), 4), NULL);
	asm volatile("movl 0x108(%1), %%eax" : "+a"(rax) : "b"(bar));
	check("mov eax zero-extends", rax, pat(MMIO, BUS(0x108), 4));
	expect(MMIO, 'r', BUS(0x110), 8, 1, pat(MMIO, BUS(0x110), 8), NULL);
	asm volatile("movq 0x110(%1), %%rax" : "+a"(rax) : "b"(bar));
	check("mov rax (REX.W)", rax, pat(MMIO, BUS(0x110), 8));

	register uint64_t r12 asm("r12") = (uint64_t)bar;
	register uint64_t r13 asm("r13") = 0x24;
	register uint64_t r9 asm("r9") = 0;
	expect(MMIO, 'r', BUS(0x120), 8, 1, pat(MMIO, BUS(0x120), 8), NULL);
	asm volatile("movq (%1,%2,8), %0" : "+r"(r9) : "r"(r12), "r"(r13));
	check("mov r9, [r12+r13*8] (REX.R/X/B, SIB)", r9, pat(MMIO, BUS(0x120), 8));

	expect(MMIO, 'r', BUS(0x1000), 4, 1, pat(MMIO, BUS(0x1000), 4), NULL);
	asm volatile("movl 0x1000(%1), %%edx" : "=d"(v) : "b"(bar));
	check("mov edx, [rbx+disp32]", v, pat(MMIO, BUS(0x1000), 4));
	expect(MMIO, 'r', BUS(0x130), 4, 1, pat(MMIO, BUS(0x130), 4), NULL);
	asm volatile("movl bar_page+0x130(%%rip), %%eax" : "=a"(v));
	check("mov eax, [rip+disp32]", v, pat(MMIO, BUS(0x130), 4));
	expect(MMIO, 'r', BUS(0x140), 4, 1, pat(MMIO, BUS(0x140), 4), NULL);
	asm volatile("movl 0(,%1,1), %%eax" : "=a"(v) : "c"(bar + 0x140));
	check("mov eax, [rcx*1+disp32] (no base)", v, pat(MMIO, BUS(0x140), 4));
	expect(MMIO, 'r', BUS(0x148), 2, 1, pat(MMIO, BUS(0x148), 2), NULL);
	asm volatile("movw -8(%1,%2,2), %%ax" : "+a"(rax) : "c"(bar + 0x100), "d"((uint64_t)0x28));
	check("mov ax, [rcx+rdx*2-8]", rax & 0xffff, pat(MMIO, BUS(0x148), 2));

	uint64_t b = pat(MMIO, BUS(0x150), 1), w = pat(MMIO, BUS(0x152), 2);
	expect(MMIO, 'r', BUS(0x150), 1, 1, b, NULL);
	asm volatile("movzbl 0x150(%1), %%eax" : "=a"(v) : "b"(bar));
	check("movzx eax, byte", v, b);
	expect(MMIO, 'r', BUS(0x152), 2, 1, w, NULL);
	asm volatile("movzwl 0x152(%1), %%eax" : "=a"(v) : "b"(bar));
	check("movzx eax, word", v, w);
	b = pat(MMIO, BUS(0x154), 1), w = pat(MMIO, BUS(0x156), 2);
	expect(MMIO, 'r', BUS(0x154), 1, 1, b, NULL);
	asm volatile("movsbl 0x154(%1), %%eax" : "=a"(v) : "b"(bar));
	check("movsx eax, byte", v, (uint32_t)(int32_t)(int8_t)b);
	expect(MMIO, 'r', BUS(0x156), 2, 1, w, NULL);
	asm volatile("movswl 0x156(%1), %%eax" : "=a"(v) : "b"(bar));
	check("movsx eax, word", v, (uint32_t)(int32_t)(int16_t)w);
	b = pat(MMIO, BUS(0x158), 1), w = pat(MMIO, BUS(0x15a), 2);
	expect(MMIO, 'r', BUS(0x158), 1, 1, b, NULL);
	asm volatile("movsbq 0x158(%1), %%rax" : "=a"(v) : "b"(bar));
	check("movsx rax, byte (REX.W)", v, (uint64_t)(int64_t)(int8_t)b);
	expect(MMIO, 'r', BUS(0x15a), 2, 1, w, NULL);
	asm volatile("movswq 0x15a(%1), %%rax" : "=a"(v) : "b"(bar));
	check("movsx rax, word (REX.W)", v, (uint64_t)(int64_t)(int16_t)w);
	b = pat(MMIO, BUS(0x15c), 1);
	rax = ~0ull;
	expect(MMIO, 'r', BUS(0x15c), 1, 1, b, NULL);
	asm volatile("movzbw 0x15c(%1), %%ax" : "+a"(rax) : "b"(bar));
	check("movzx ax, byte (0x66)", rax, ~0xffffull | b);
}

static void stores(uint8_t *bar)
{
	register uint64_t r12 asm("r12") = 0x0123456789abcdefull;
	expect(MMIO, 'w', BUS(0x800), 1, 1, 0x11, NULL);
	asm volatile("movb %%cl, 0x800(%0)" : : "b"(bar), "c"(0x311) : "memory");
	expect(MMIO, 'w', BUS(0x801), 1, 1, 0x22, NULL);
	asm volatile("movb %%ah, 0x801(%0)" : : "b"(bar), "a"(0x2233) : "memory");
	expect(MMIO, 'w', BUS(0x802), 2, 1, 0x4455, NULL);
	asm volatile("movw %%dx, 0x802(%0)" : : "b"(bar), "d"(0x334455) : "memory");
	expect(MMIO, 'w', BUS(0x804), 4, 1, 0x66778899, NULL);
	asm volatile("movl %%esi, 0x804(%0)" : : "b"(bar), "S"(0xff66778899ull) : "memory");
	expect(MMIO, 'w', BUS(0x808), 8, 1, 0x0123456789abcdefull, NULL);
	asm volatile("movq %1, 0x808(%0)" : : "b"(bar), "r"(r12) : "memory");
	expect(MMIO, 'w', BUS(0x810), 1, 1, 0x5a, NULL);
	asm volatile("movb $0x5a, 0x810(%0)" : : "b"(bar) : "memory");
	expect(MMIO, 'w', BUS(0x812), 2, 1, 0x1234, NULL);
	asm volatile("movw $0x1234, 0x812(%0)" : : "b"(bar) : "memory");
	expect(MMIO, 'w', BUS(0x814), 4, 1, 0xdeadbeef, NULL);
	asm volatile("movl $0xdeadbeef, 0x814(%0)" : : "b"(bar) : "memory");
	expect(MMIO, 'w', BUS(0x818), 8, 1, 0xfffffffffffffffeull, NULL);
	asm volatile("movq $-2, 0x818(%0)" : : "b"(bar) : "memory");
	expect(MMIO, 'w', BUS(0x820), 4, 1, 0xcafef00d, NULL);
	asm volatile("movl %%eax, bar_page+0x820(%%rip)" : : "a"(0xcafef00d) : "memory");

	// Read back through the echo device: every store reached the bus with its value.
	volatile uint64_t *q = (volatile uint64_t *)(bar + 0x808);
	volatile uint32_t *l = (volatile uint32_t *)(bar + 0x814);
	volatile uint16_t *h = (volatile uint16_t *)(bar + 0x802);
	expect(MMIO, 'r', BUS(0x808), 8, 1, 0x0123456789abcdefull, NULL);
	check("store r12 then load", *q, 0x0123456789abcdefull);
	expect(MMIO, 'r', BUS(0x814), 4, 1, 0xdeadbeef, NULL);
	check("store imm32 then load", *l, 0xdeadbeef);
	expect(MMIO, 'r', BUS(0x802), 2, 1, 0x4455, NULL);
	check("store dx then load", *h, 0x4455);
}

void mmio_forms(uint8_t *bar)
{
	loads(bar);
	stores(bar);
}
