/*
 * A multiboot guest that prints one line on the debug port, then triple-faults:
 * an empty IDT makes the #UD of ud2 unhandleable -> #DF -> shutdown. (Not int3: hosts
 * that emulate INT n in software report an emulation failure instead.)
 *
 * GNU as, AT&T syntax, run through the C preprocessor (gcc -m32 -c triple-fault.S).
 */
        .code32

        .section .multiboot, "a"
        .balign 4
        .long 0x1BADB002
        .long 0x00000003
        .long -(0x1BADB002 + 0x00000003)

        .text
        .balign 16                      /* _start 16-aligned, the layout of the former nasm build */
        .globl _start
_start:
        movl $msg, %esi
.Lnext:
        lodsb
        testb %al, %al
        jz .Lfault
        outb %al, $0xE9
        jmp .Lnext
.Lfault:
        lidt null_idt
        ud2
        hlt

        .data
msg:    .asciz "about to triple-fault\n"
null_idt:
        .word 0
        .long 0
