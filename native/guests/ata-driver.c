/*
 * Bare-metal ATA test driver, booted as a multiboot kernel by QEMU (-kernel) or by the
 * muxvisor KVM runner. It identifies its disk, writes a guest-specific pattern over the
 * whole disk, reads it back and verifies it, and reports on the debug port 0xE9:
 *   RESULT ok sectors=N mode=pio|dma     or     RESULT fail lba=X ...
 * Command line (key=value, space separated):
 *   mode=pio|dma   transfer mode (default pio)
 *   tag=NAME       seeds the pattern, so data of another guest is detected (default guest)
 *   irq=1          sleep in HLT until IRQ 14 instead of polling (DMA completion)
 *   sectors=N      test only the first N sectors (default: the whole disk)
 *   chunk=N        sectors per command (default 16 for PIO, 64 for DMA)
 *   hang=N         issue READ SECTORS for sector N in the read phase and never read it
 *   crash=N        issue READ SECTORS for sector N in the read phase, then triple-fault
 *   bench=inb port=P n=N   only time N reads of port P between two MARK lines
 *   verify=only    skip the write phase: check data a previous run left on the disk
 *   probe=mmio addr=A   MMIO round trips at A (dword, word, byte), then RESULT
 *   idle=1         print IDLE and sleep forever with interrupts on (never stops by itself)
 */
#include "ata.h"

#define MB_INFO_MAGIC 0x2BADB002
#define MB_INFO_CMDLINE 0x04        /* flags bit 2: cmdline field valid */
#define PIIX_VENDOR 0x8086
#define PIIX3_IDE 0x7010            /* 82371SB PIIX3 IDE function */
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MASTER 0x4
#define PCI_BAR4 0x20
#define ATA_PRIMARY_CMD 0x1F0
#define ATA_PRIMARY_CTL 0x3F6
#define MAX_CHUNK 128

struct mb_info { u32 flags, mem_lower, mem_upper, boot_device, cmdline; };

/* 64 KiB aligned: a PRD region must not cross a 64 KiB boundary. */
static u8 buffer[MAX_CHUNK * 512] __attribute__((aligned(65536)));

static u32 seed_of(const char *tag) {
    u32 h = 2166136261u;   /* FNV-1a */
    while (*tag) { h ^= (u8)*tag++; h *= 16777619u; }
    return h;
}

/*
 * Word 0 is the LBA and word 1 the seed, so a dump shows whose sector it is; the rest is
 * an arithmetic sequence unique to (seed, lba). Cheap on purpose: on hosts where KVM
 * emulates guest instructions (nested), a hash per word would dominate the run time.
 */
#define PATTERN_LBA_MUL 0x9E3779B1u
#define PATTERN_STEP 0x85EBCA6Bu

static void fill(u32 seed, u32 lba, u32 count) {
    u32 *w = (u32 *)buffer;
    for (u32 s = 0; s < count; s++, w += 128) {
        u32 v = seed ^ ((lba + s) * PATTERN_LBA_MUL);
        w[0] = lba + s;
        w[1] = seed;
        for (u32 i = 2; i < 128; i++) w[i] = v + i * PATTERN_STEP;
    }
}

static int verify(u32 seed, u32 lba, u32 count) {
    const u32 *w = (const u32 *)buffer;
    for (u32 s = 0; s < count; s++, w += 128) {
        u32 v = seed ^ ((lba + s) * PATTERN_LBA_MUL);
        for (u32 i = 0; i < 128; i++) {
            u32 want = i == 0 ? lba + s : i == 1 ? seed : v + i * PATTERN_STEP;
            if (w[i] != want) {
                put_str("RESULT fail lba="); put_dec(lba + s);
                put_str(" word="); put_dec(i);
                put_str(" got="); put_hex(w[i]);
                put_str(" want="); put_hex(want);
                put_str("\n");
                return -1;
            }
        }
    }
    return 0;
}

/* rep stosl: one instruction, not a byte loop (see the note on emulating hosts above). */
static void poison(u32 bytes) {
    void *d = buffer;
    u32 n = bytes / 4;
    __asm__ volatile("cld; rep stosl" : "+D"(d), "+c"(n) : "a"(0xA5A5A5A5u) : "memory");
}

static void report_io_error(const char *phase, u32 lba, int r) {
    put_str("RESULT fail lba="); put_dec(lba);
    put_str(" phase="); put_str(phase);
    put_str(" status="); put_hex((u32)r & 0xFF);
    put_str("\n");
}

static void bench_inb(u16 port, u32 n) {
    put_str("MARK bench-start\n");
    for (u32 i = 0; i < n; i++) (void)inb(port);
    put_str("MARK bench-end\n");
    put_str("RESULT ok bench=inb n="); put_dec(n); put_str("\n");
}

static volatile u32 *mmio32(u32 a) { return (volatile u32 *)a; }
static volatile u16 *mmio16(u32 a) { return (volatile u16 *)a; }
static volatile u8 *mmio8(u32 a) { return (volatile u8 *)a; }

/* Paging is off, so these loads and stores reach the bus address itself: MMIO exits. */
static void probe_mmio(u32 addr) {
    *mmio32(addr) = 0x11223344u;
    *mmio8(addr + 5) = 0xA7;
    *mmio16(addr + 10) = 0xBEEF;
    u32 d = *mmio32(addr), w = *mmio16(addr + 2), b = *mmio8(addr + 3), d1 = *mmio32(addr + 4), d2 = *mmio32(addr + 8);
    put_str("MMIO readl="); put_hex(d);
    put_str(" readw+2="); put_hex(w);
    put_str(" readb+3="); put_hex(b);
    put_str(" readl+4="); put_hex(d1);
    put_str(" readl+8="); put_hex(d2);
    put_str("\n");
    int ok = d == 0x11223344u && w == 0x1122 && b == 0x11 && (d1 & 0xFF00) == 0xA700 && (d2 >> 16) == 0xBEEF;
    put_str(ok ? "RESULT ok probe=mmio\n" : "RESULT fail probe=mmio\n");
}

/* Finds the PIIX IDE function, enables I/O decoding and bus mastering, returns BAR4's port. */
static u16 find_bmide(void) {
    int bdf = pci_find(PIIX_VENDOR, PIIX3_IDE);
    if (bdf < 0) return 0;
    u32 cmd = pci_read32((u32)bdf, PCI_COMMAND);
    pci_write32((u32)bdf, PCI_COMMAND, (cmd & 0xFFFF) | PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    u32 bar4 = pci_read32((u32)bdf, PCI_BAR4);
    put_str("PCI piix-ide bdf="); put_hex((u32)bdf);
    put_str(" bar4="); put_hex(bar4); put_str("\n");
    if (!(bar4 & 1)) return 0;   /* BMIDE is an I/O BAR */
    return (u16)(bar4 & 0xFFFC);
}

void guest_main(u32 magic, struct mb_info *mb) {
    const char *cmdline = 0;
    char val[64];
    if (magic == MB_INFO_MAGIC && (mb->flags & MB_INFO_CMDLINE)) cmdline = (const char *)mb->cmdline;
    put_str("ata-driver: booted cmdline=\"");
    put_str(cmdline ? cmdline : "");
    put_str("\"\n");

    /* Always an IDT and a masked, remapped PIC: a stray IRQ or exception is reported, not a triple fault. */
    irq_init();
    if (cmdline_get(cmdline, "idle", val, sizeof val)) {
        put_str("IDLE\n");
        for (;;) __asm__ volatile("sti; hlt");
    }
    if (cmdline_get(cmdline, "probe", val, sizeof val) && str_eq(val, "mmio")) {
        probe_mmio(cmdline_get(cmdline, "addr", val, sizeof val) ? parse_u32(val) : 0xFE000000u);
        return;
    }
    if (cmdline_get(cmdline, "bench", val, sizeof val)) {
        u16 port = 0x80;
        u32 n = 10000;
        if (cmdline_get(cmdline, "port", val, sizeof val)) port = (u16)parse_u32(val);
        if (cmdline_get(cmdline, "n", val, sizeof val)) n = parse_u32(val);
        bench_inb(port, n);
        return;
    }

    int dma = cmdline_get(cmdline, "mode", val, sizeof val) && str_eq(val, "dma");
    char tag[32] = "guest";
    cmdline_get(cmdline, "tag", tag, sizeof tag);
    u32 seed = seed_of(tag);

    struct ata a = { ATA_PRIMARY_CMD, ATA_PRIMARY_CTL, 0, 0, 0, {0} };
    a.use_irq = cmdline_get(cmdline, "irq", val, sizeof val) && str_eq(val, "1");
    if (a.use_irq) irq_unmask(14);
    a.bmide = find_bmide();
    if (dma && !a.bmide) { put_str("RESULT fail nodev=piix-bmide\n"); return; }

    int r = ata_identify(&a);
    if (r) { report_io_error("identify", 0, r); return; }
    put_str("IDENTIFY model=\""); put_str(a.model);
    put_str("\" sectors="); put_dec(a.sectors); put_str("\n");

    u32 total = a.sectors;
    if (cmdline_get(cmdline, "sectors", val, sizeof val) && parse_u32(val) < total) total = parse_u32(val);
    u32 chunk = dma ? 64 : 16;
    if (cmdline_get(cmdline, "chunk", val, sizeof val)) chunk = parse_u32(val);
    if (chunk < 1 || chunk > MAX_CHUNK) chunk = 16;
    int hang = cmdline_get(cmdline, "hang", val, sizeof val);
    u32 hang_lba = hang ? parse_u32(val) : 0;
    int crash = cmdline_get(cmdline, "crash", val, sizeof val);
    u32 crash_lba = crash ? parse_u32(val) : 0;

    int verify_only = cmdline_get(cmdline, "verify", val, sizeof val) && str_eq(val, "only");
    put_str("MARK verify-start\n");
    for (u32 lba = 0; !verify_only && lba < total; lba += chunk) {
        u32 n = total - lba < chunk ? total - lba : chunk;
        fill(seed, lba, n);
        r = dma ? ata_dma(&a, 1, lba, n, buffer) : ata_pio(&a, 1, lba, n, buffer);
        if (r) { report_io_error("write", lba, r); return; }
    }
    put_str("MARK readback-start\n");   /* the live view says "verifying" from here */
    for (u32 lba = 0; lba < total; lba += chunk) {
        u32 n = total - lba < chunk ? total - lba : chunk;
        if (hang && hang_lba >= lba && hang_lba < lba + n) ata_hang_mid_command(&a, hang_lba);
        if (crash && crash_lba >= lba && crash_lba < lba + n) ata_crash_mid_command(&a, crash_lba);
        poison(n * 512);   /* stale data must not pass as verified */
        r = dma ? ata_dma(&a, 0, lba, n, buffer) : ata_pio(&a, 0, lba, n, buffer);
        if (r) { report_io_error("read", lba, r); return; }
        if (verify(seed, lba, n)) return;
    }
    put_str("MARK verify-end\n");
    put_str("RESULT ok sectors="); put_dec(total);
    put_str(dma ? " mode=dma" : " mode=pio");
    put_str(" bytes="); put_dec(total * 512); put_str("\n");
}
