/* IDT and 8259A PIC setup so a guest can sleep in HLT until its disk interrupts. */
#include "guest.h"

#define PIC1_CMD 0x20   /* master 8259A command */
#define PIC1_DATA 0x21  /* master 8259A data / IMR */
#define PIC2_CMD 0xA0   /* slave 8259A command */
#define PIC2_DATA 0xA1  /* slave 8259A data / IMR */
#define PIC_EOI 0x20    /* OCW2 non-specific end of interrupt */
#define IRQ_BASE 0x20   /* vectors of IRQ 0..15 after the remap */

struct idt_gate { u16 off_lo, sel; u8 zero, type; u16 off_hi; } __attribute__((packed));
struct idt_desc { u16 limit; u32 base; } __attribute__((packed));

extern u32 isr_table[48];
static struct idt_gate idt[48];
volatile u32 irq_count[16];

void isr_dispatch(u32 vector) {
    if (vector < IRQ_BASE) {
        put_str("EXCEPTION vector=");
        put_dec(vector);
        put_str("\nRESULT fail exception\n");
        halt_forever();
    }
    u32 line = vector - IRQ_BASE;
    irq_count[line]++;
    if (line >= 8) outb(PIC2_CMD, PIC_EOI);
    outb(PIC1_CMD, PIC_EOI);
}

void irq_init(void) {
    for (int v = 0; v < 48; v++) {
        idt[v].off_lo = (u16)(isr_table[v] & 0xFFFF);
        idt[v].sel = 0x08;
        idt[v].zero = 0;
        idt[v].type = 0x8E;   /* present, ring 0, 32-bit interrupt gate */
        idt[v].off_hi = (u16)(isr_table[v] >> 16);
    }
    struct idt_desc d = { sizeof idt - 1, (u32)idt };
    __asm__ volatile("lidt %0" : : "m"(d));
    /* ICW1..ICW4: edge triggered, cascade, vectors 0x20/0x28, slave on IRQ2, 8086 mode */
    outb(PIC1_CMD, 0x11); outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_BASE); outb(PIC2_DATA, IRQ_BASE + 8);
    outb(PIC1_DATA, 0x04); outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01); outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xFB);   /* everything masked but the cascade */
    outb(PIC2_DATA, 0xFF);
    __asm__ volatile("sti");
}

void irq_unmask(int line) {
    if (line < 8) outb(PIC1_DATA, inb(PIC1_DATA) & (u8)~(1u << line));
    else outb(PIC2_DATA, inb(PIC2_DATA) & (u8)~(1u << (line - 8)));
}
