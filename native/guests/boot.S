/*
 * Multiboot v1 entry for the bare-metal guests. The header is ELF-style (no a.out
 * kludge): QEMU's -kernel loader and the muxvisor KVM runner both read the ELF32
 * program headers. Entry state (multiboot spec 3.2): EAX=0x2BADB002, EBX=info,
 * flat 32-bit protected mode, paging off, GDTR undefined -> we load our own GDT
 * before anything reloads a segment (interrupts push CS, far jumps).
 *
 * GNU as, AT&T syntax, run through the C preprocessor (gcc -m32 -c boot.S).
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003             /* bit0: page-align modules, bit1: memory info */

        .code32

        .section .multiboot, "a"
        .balign 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .text
        .balign 16                      /* _start 16-aligned, the layout of the former nasm build */
        .globl _start
_start:
        cli
        movl $stack_top, %esp
        movl %eax, %ecx                 /* keep the magic across the GDT reload */
        lgdt gdt_desc
        ljmp $0x08, $.Lreload_cs
.Lreload_cs:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %fs
        movw %ax, %gs
        movw %ax, %ss
        pushl %ebx                      /* multiboot info */
        pushl %ecx                      /* magic */
        call guest_main
        .globl halt_forever
halt_forever:
        cli
.Lh:    hlt                             /* HLT with IF=0: the runner reports a clean stop */
        jmp .Lh

/*
 * ---- interrupt stubs: vectors 0..47 call isr_dispatch(vector) ----
 * They return without IRETD: on hosts where KVM emulates privileged instructions (nested
 * "PVM" hosts, like the CI machines), KVM's emulator handles IRET in real mode only and
 * stops the VM with an emulation failure. Same CPL, no stack switch, so the frame is
 * EIP, CS, EFLAGS: rearrange it to EFLAGS, CS, EIP, then POPFD, drop CS, RET.
 */
#define VECTORS 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
                16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, \
                32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47

        .macro ISR n
isr_\n:
        pushal
        pushl $\n
        call isr_dispatch
        addl $4, %esp
        jmp isr_return
        .endm

isr_return:
        popal
        pushl %eax
        movl 12(%esp), %eax             /* EFLAGS */
        xchgl %eax, 4(%esp)             /* EIP slot <- EFLAGS, eax <- EIP */
        movl %eax, 12(%esp)             /* EFLAGS slot <- EIP */
        popl %eax
        popfl                           /* IF comes back here; a nested IRQ finds a sane stack */
        leal 4(%esp), %esp              /* drop CS without touching the flags */
        ret

        .irp n, VECTORS
        ISR \n
        .endr

        .data
        .balign 8
gdt:
        .quad 0
        .quad 0x00CF9A000000FFFF        /* 0x08: code, base 0, limit 4G, 32-bit */
        .quad 0x00CF92000000FFFF        /* 0x10: data, base 0, limit 4G */
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt

        .globl isr_table
        .balign 4
isr_table:
        .irp n, VECTORS
        .long isr_\n
        .endr

        .bss
        .balign 16
        .skip 16384
stack_top:
