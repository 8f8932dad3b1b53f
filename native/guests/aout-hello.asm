; A multiboot kernel that uses the a.out kludge (header flags bit 16): a flat image whose
; header gives the load addresses, so the loader ignores any ELF structure. Prints one line
; with EAX (the multiboot magic) in hex, then halts with interrupts off.
bits 32
org 0x100000
MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010003             ; page-align, memory info, a.out kludge
header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd header                       ; header_addr
    dd header                       ; load_addr
    dd load_end                     ; load_end_addr
    dd bss_end                      ; bss_end_addr
    dd start                        ; entry_addr
start:
    mov esp, stack_top              ; multiboot leaves ESP undefined
    mov edx, eax
    mov esi, msg
    call puts
    mov ecx, 8
.hex:
    rol edx, 4
    mov eax, edx
    and eax, 0xF
    mov al, [digits + eax]
    out 0xE9, al
    loop .hex
    mov al, 10
    out 0xE9, al
    mov eax, [bss_probe]            ; the bss was zeroed by the loader
    test eax, eax
    jnz .halt
    mov esi, zeroed
    call puts
.halt:
    cli
    hlt
puts:
    lodsb
    test al, al
    jz .done
    out 0xE9, al
    jmp puts
.done:
    ret
msg: db "aout-hello eax=0x", 0
zeroed: db "bss zeroed", 10, 0
digits: db "0123456789abcdef"
load_end:
bss_probe: equ load_end
stack_top: equ load_end + 4096
bss_end: equ stack_top
