; A multiboot guest that prints one line on the debug port, then triple-faults:
; an empty IDT makes the #UD of ud2 unhandleable -> #DF -> shutdown. (Not int3: hosts
; that emulate INT n in software report an emulation failure instead.)
bits 32
section .multiboot
align 4
    dd 0x1BADB002
    dd 0x00000003
    dd -(0x1BADB002 + 0x00000003)
section .text
global _start
_start:
    mov esi, msg
.next:
    lodsb
    test al, al
    jz .fault
    out 0xE9, al
    jmp .next
.fault:
    lidt [null_idt]
    ud2
    hlt
section .data
msg: db "about to triple-fault", 10, 0
null_idt:
    dw 0
    dd 0
