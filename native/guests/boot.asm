; Multiboot v1 entry for the bare-metal guests. The header is ELF-style (no a.out
; kludge): QEMU's -kernel loader and the muxvisor KVM runner both read the ELF32
; program headers. Entry state (multiboot spec 3.2): EAX=0x2BADB002, EBX=info,
; flat 32-bit protected mode, paging off, GDTR undefined -> we load our own GDT
; before anything reloads a segment (interrupts push CS, far jumps).
bits 32

MB_MAGIC    equ 0x1BADB002
MB_FLAGS    equ 0x00000003          ; bit0: page-align modules, bit1: memory info
section .multiboot
align 4
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)

section .text
global _start
extern guest_main
_start:
    cli
    mov esp, stack_top
    mov ecx, eax                    ; keep the magic across the GDT reload
    lgdt [gdt_desc]
    jmp 0x08:.reload_cs
.reload_cs:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    push ebx                        ; multiboot info
    push ecx                        ; magic
    call guest_main
global halt_forever
halt_forever:
    cli
.h: hlt                             ; HLT with IF=0: the runner reports a clean stop
    jmp .h

; ---- interrupt stubs: vectors 0..47 call isr_dispatch(vector) ----
; They return without IRETD: on hosts where KVM emulates privileged instructions (nested
; "PVM" hosts, like the CI machines), KVM's emulator handles IRET in real mode only and
; stops the VM with an emulation failure. Same CPL, no stack switch, so the frame is
; EIP, CS, EFLAGS: rearrange it to EFLAGS, CS, EIP, then POPFD, drop CS, RET.
extern isr_dispatch
%macro ISR 1
isr_%1:
    pushad
    push dword %1
    call isr_dispatch
    add esp, 4
    jmp isr_return
%endmacro
isr_return:
    popad
    push eax
    mov eax, [esp+12]               ; EFLAGS
    xchg eax, [esp+4]               ; EIP slot <- EFLAGS, eax <- EIP
    mov [esp+12], eax               ; EFLAGS slot <- EIP
    pop eax
    popfd                           ; IF comes back here; a nested IRQ finds a sane stack
    lea esp, [esp+4]                ; drop CS without touching the flags
    ret
%assign i 0
%rep 48
ISR i
%assign i i+1
%endrep

section .data
align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF           ; 0x08: code, base 0, limit 4G, 32-bit
    dq 0x00CF92000000FFFF           ; 0x10: data, base 0, limit 4G
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt

global isr_table
align 4
isr_table:
%assign i 0
%rep 48
    dd isr_ %+ i
%assign i i+1
%endrep

section .bss
align 16
    resb 16384
stack_top:
