/*
 * A flat real-mode binary (no header): the runner loads it with --flat at 0x7C00 and starts
 * it in real mode (--real-mode), like a boot sector. Prints one line, halts with IF=0.
 *
 * GNU as, AT&T syntax, run through the C preprocessor (gcc -m32 -c flat-hello.S). The
 * Makefile links it at 0x7C00 (-Ttext) straight to a flat image (ld --oformat binary).
 */
        .code16
        .text
        .globl _start
_start:
        cli
        xorw %ax, %ax
        movw %ax, %ds
        movw $msg, %si
.Lnext:
        lodsb
        testb %al, %al
        jz .Lhalt
        outb %al, $0xE9
        jmp .Lnext
.Lhalt:
        hlt
        jmp .Lhalt
msg:    .asciz "flat-hello from real mode\n"
