/* Tiny freestanding helpers for the guests: output on the debug port, strings, PCI. */
#include "guest.h"

void put_str(const char *s) { while (*s) outb(DEBUG_PORT, (u8)*s++); }

void put_dec(u32 v) {
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put_str(&buf[i]);
}

void put_hex(u32 v) {
    static const char digits[] = "0123456789abcdef";
    char buf[11] = "0x";
    for (int i = 0; i < 8; i++) buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xF];
    buf[10] = 0;
    put_str(buf);
}

/* gcc may emit calls to memset/memcpy even with -ffreestanding. */
void *memset(void *d, int c, u32 n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, u32 n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }
void *mem_set(void *d, int c, u32 n) { return memset(d, c, n); }

int str_eq(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

int cmdline_get(const char *cmdline, const char *key, char *out, u32 outlen) {
    if (!cmdline) return 0;
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ') p++;
        const char *k = key;
        const char *q = p;
        while (*k && *q == *k) { q++; k++; }
        if (!*k && *q == '=') {
            q++;
            u32 n = 0;
            while (*q && *q != ' ' && n + 1 < outlen) out[n++] = *q++;
            out[n] = 0;
            return 1;
        }
        while (*p && *p != ' ') p++;
    }
    return 0;
}

u32 parse_u32(const char *s) {
    u32 v = 0;
    if (s[0] == '0' && s[1] == 'x') {
        for (s += 2; *s; s++) {
            char c = *s;
            v = v * 16 + (u32)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        return v;
    }
    for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (u32)(*s - '0');
    return v;
}

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA    0xCFC

u32 pci_read32(u32 bdf, u8 reg) {
    outl(PCI_CONFIG_ADDRESS, 0x80000000u | (bdf << 8) | (reg & 0xFC));
    return inl(PCI_CONFIG_DATA);
}

void pci_write32(u32 bdf, u8 reg, u32 v) {
    outl(PCI_CONFIG_ADDRESS, 0x80000000u | (bdf << 8) | (reg & 0xFC));
    outl(PCI_CONFIG_DATA, v);
}

int pci_find(u16 vendor, u16 device) {
    for (u32 dev = 0; dev < 32; dev++) {
        for (u32 fn = 0; fn < 8; fn++) {
            u32 bdf = (dev << 3) | fn;
            u32 id = pci_read32(bdf, 0x00);
            if ((id & 0xFFFF) == 0xFFFF) {
                if (fn == 0) break;   /* no device: skip its other functions */
                continue;
            }
            if ((id & 0xFFFF) == vendor && (id >> 16) == device) return (int)bdf;
            /* header type bit 7: multi-function; otherwise only function 0 exists */
            if (fn == 0 && !(pci_read32(bdf, 0x0C) & 0x00800000)) break;
        }
    }
    return -1;
}
