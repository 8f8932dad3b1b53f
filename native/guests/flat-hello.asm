; A flat real-mode binary (no header): the runner loads it with --flat at 0x7C00 and starts
; it in real mode (--real-mode), like a boot sector. Prints one line, halts with IF=0.
bits 16
org 0x7C00
    cli
    xor ax, ax
    mov ds, ax
    mov si, msg
.next:
    lodsb
    test al, al
    jz .halt
    out 0xE9, al
    jmp .next
.halt:
    hlt
    jmp .halt
msg: db "flat-hello from real mode", 10, 0
