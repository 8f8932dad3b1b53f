/* Shared bits of the bare-metal guests: port I/O, debug-port output, command line. */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define DEBUG_PORT 0xE9   /* QEMU -debugcon / Bochs port-E9 hack; the runner prints it */

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void insw(u16 port, void *buf, u32 n) {
    __asm__ volatile("cld; rep insw" : "+D"(buf), "+c"(n) : "d"(port) : "memory");
}
static inline void outsw(u16 port, const void *buf, u32 n) {
    __asm__ volatile("cld; rep outsw" : "+S"(buf), "+c"(n) : "d"(port) : "memory");
}

void put_str(const char *s);
void put_dec(u32 v);
void put_hex(u32 v);
void *mem_set(void *d, int c, u32 n);
/* Value of `key=` in the multiboot command line, copied into out; 0 when absent. */
int cmdline_get(const char *cmdline, const char *key, char *out, u32 outlen);
u32 parse_u32(const char *s);
int str_eq(const char *a, const char *b);

/* PCI configuration mechanism #1 (ports 0xCF8/0xCFC). */
u32 pci_read32(u32 bdf, u8 reg);
void pci_write32(u32 bdf, u8 reg, u32 v);
/* Bus/device/function of the first vendor:device match on bus 0, or -1. */
int pci_find(u16 vendor, u16 device);

/* Interrupts: IDT for vectors 0..47, PIC remapped to 0x20..0x2F. */
void irq_init(void);
void irq_unmask(int line);
extern volatile u32 irq_count[16];
extern void halt_forever(void) __attribute__((noreturn));

#endif
