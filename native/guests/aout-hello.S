/*
 * A multiboot kernel that uses the a.out kludge (header flags bit 16): a flat image whose
 * header gives the load addresses, so the loader ignores any ELF structure. Prints one line
 * with EAX (the multiboot magic) in hex, then halts with interrupts off.
 *
 * GNU as, AT&T syntax, run through the C preprocessor (gcc -m32 -c aout-hello.S). The
 * Makefile links it at 0x100000 (-Ttext) straight to a flat image (ld --oformat binary),
 * so every label below is its absolute load address.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00010003             /* page-align, memory info, a.out kludge */

        .code32
        .text
        .globl _start
header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)
        .long header                    /* header_addr */
        .long header                    /* load_addr */
        .long load_end                  /* load_end_addr */
        .long bss_end                   /* bss_end_addr */
        .long _start                    /* entry_addr */
_start:
        movl $stack_top, %esp           /* multiboot leaves ESP undefined */
        movl %eax, %edx
        movl $msg, %esi
        call puts
        movl $8, %ecx
.Lhex:
        roll $4, %edx
        movl %edx, %eax
        andl $0xF, %eax
        movb digits(%eax), %al
        outb %al, $0xE9
        loop .Lhex
        movb $10, %al
        outb %al, $0xE9
        movl bss_probe, %eax            /* the bss was zeroed by the loader */
        testl %eax, %eax
        jnz .Lhalt
        movl $zeroed, %esi
        call puts
.Lhalt:
        cli
        hlt
puts:
        lodsb
        testb %al, %al
        jz .Ldone
        outb %al, $0xE9
        jmp puts
.Ldone:
        ret
msg:    .asciz "aout-hello eax=0x"
zeroed: .asciz "bss zeroed\n"
digits: .ascii "0123456789abcdef"
load_end:
        .set bss_probe, load_end
        .set stack_top, load_end + 4096
        .set bss_end, stack_top
