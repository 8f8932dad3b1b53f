/* ATA driver: IDENTIFY, READ/WRITE SECTORS (PIO) and READ/WRITE DMA through the PIIX BMIDE. */
#include "ata.h"

#define ATA_REG_DATA    0   /* data port (16-bit) */
#define ATA_REG_NSECT   2   /* sector count */
#define ATA_REG_LBAL    3   /* LBA bits 0-7 */
#define ATA_REG_LBAM    4   /* LBA bits 8-15 */
#define ATA_REG_LBAH    5   /* LBA bits 16-23 */
#define ATA_REG_DEVICE  6   /* drive select, LBA bits 24-27 */
#define ATA_REG_STATUS  7   /* status (read, clears INTRQ) */
#define ATA_REG_CMD     7   /* command (write) */
#define ATA_REG_ALTSTATUS 0 /* control block: alternate status (read, no side effect) */

#define ATA_BUSY 0x80   /* BSY */
#define ATA_DF   0x20   /* device fault */
#define ATA_DRQ  0x08   /* data request */
#define ATA_ERR  0x01   /* error */

#define ATA_DEV_LBA     0xE0    /* drive 0, LBA addressing (bits 7 and 5 obsolete-set) */
#define ATA_CMD_ID_ATA    0xEC  /* IDENTIFY DEVICE */
#define ATA_CMD_PIO_READ  0x20  /* READ SECTORS */
#define ATA_CMD_PIO_WRITE 0x30  /* WRITE SECTORS */
#define ATA_CMD_READ      0xC8  /* READ DMA */
#define ATA_CMD_WRITE     0xCA  /* WRITE DMA */

#define ATA_DMA_CMD    0    /* BMIDE command register */
#define ATA_DMA_STATUS 2    /* BMIDE status register */
#define ATA_DMA_TABLE  4    /* BMIDE PRD table address */
#define ATA_DMA_START  0x01 /* start/stop bus master */
#define ATA_DMA_WR     0x08 /* direction: device writes to memory (a disk read) */
#define ATA_DMA_ACTIVE 0x01 /* status: bus master active */
#define ATA_DMA_ERR    0x02 /* status: error (write 1 to clear) */
#define ATA_DMA_INTR   0x04 /* status: interrupt (write 1 to clear) */
#define PRD_EOT        0x80000000u /* last entry of the PRD table */
#define PRD_ENTRY_BYTES 16384      /* each entry covers 16 KiB: exercises a multi-entry table */

#define IDE_IRQ 14
#define SPIN_LIMIT 2000000u   /* polls, each a trapped exit under a VMM: bounded, not timed */

/* The PRD table lives in its own memory; 64-byte alignment keeps it inside one 64 KiB page. */
static u32 prd_table[2 * 8] __attribute__((aligned(64)));

static u8 status(struct ata *a) { return inb(a->cmd + ATA_REG_STATUS); }
static u8 alt_status(struct ata *a) { return inb(a->ctl + ATA_REG_ALTSTATUS); }

static int fail(u8 st) { return 0x100 | st; }

static int wait_not_busy(struct ata *a) {
    for (u32 i = 0; i < SPIN_LIMIT; i++) {
        u8 st = alt_status(a);
        if (!(st & ATA_BUSY)) return st;
    }
    return -1;
}

/* Wait until BSY clears and DRQ is set (or ERR/DF): the data phase of a PIO command. */
static int wait_drq(struct ata *a) {
    int st = wait_not_busy(a);
    if (st < 0) return fail(0xFF);
    if (st & (ATA_ERR | ATA_DF)) return fail((u8)st);
    if (!(st & ATA_DRQ)) return fail((u8)st);
    return 0;
}

/* Sleep until IRQ 14 fired after `seen` (read before the command was issued). */
static void wait_irq(u32 seen) {
    /* cli; check; sti; hlt: the STI shadow keeps the IRQ from slipping between check and HLT */
    for (;;) {
        __asm__ volatile("cli");
        if (irq_count[IDE_IRQ] != seen) break;
        __asm__ volatile("sti; hlt");
    }
    __asm__ volatile("sti");
}

static void select_lba(struct ata *a, u32 lba, u32 count) {
    outb(a->cmd + ATA_REG_DEVICE, (u8)(ATA_DEV_LBA | ((lba >> 24) & 0x0F)));
    outb(a->cmd + ATA_REG_NSECT, (u8)count);   /* 256 is written as 0 */
    outb(a->cmd + ATA_REG_LBAL, (u8)lba);
    outb(a->cmd + ATA_REG_LBAM, (u8)(lba >> 8));
    outb(a->cmd + ATA_REG_LBAH, (u8)(lba >> 16));
}

int ata_identify(struct ata *a) {
    static u16 id[256];
    outb(a->cmd + ATA_REG_DEVICE, ATA_DEV_LBA);
    if (alt_status(a) == 0xFF) return fail(0xFF);   /* floating bus: no controller or no drive */
    if (wait_not_busy(a) < 0) return fail(0xFF);
    outb(a->cmd + ATA_REG_CMD, ATA_CMD_ID_ATA);
    if (status(a) == 0) return fail(0);   /* no drive */
    int r = wait_drq(a);
    if (r) return r;
    insw(a->cmd + ATA_REG_DATA, id, 256);
    (void)status(a);
    a->sectors = (u32)id[60] | ((u32)id[61] << 16);
    for (int i = 0; i < 20; i++) {
        a->model[2 * i] = (char)(id[27 + i] >> 8);
        a->model[2 * i + 1] = (char)(id[27 + i] & 0xFF);
    }
    a->model[40] = 0;
    for (int i = 39; i >= 0 && a->model[i] == ' '; i--) a->model[i] = 0;
    return 0;
}

int ata_pio(struct ata *a, int write, u32 lba, u32 count, void *buf) {
    u16 *p = buf;
    if (wait_not_busy(a) < 0) return fail(0xFF);
    select_lba(a, lba, count);
    outb(a->cmd + ATA_REG_CMD, write ? ATA_CMD_PIO_WRITE : ATA_CMD_PIO_READ);
    for (u32 s = 0; s < count; s++, p += 256) {
        int r = wait_drq(a);
        if (r) return r;
        if (write) outsw(a->cmd + ATA_REG_DATA, p, 256);
        else insw(a->cmd + ATA_REG_DATA, p, 256);
    }
    int st = wait_not_busy(a);
    if (st < 0) return fail(0xFF);
    st = status(a);   /* reading STATUS acknowledges the interrupt */
    if (st & (ATA_ERR | ATA_DF | ATA_DRQ)) return fail((u8)st);
    return 0;
}

int ata_dma(struct ata *a, int write, u32 lba, u32 count, void *buf) {
    u32 bytes = count * 512, addr = (u32)buf, n = 0;
    while (bytes) {
        u32 len = bytes > PRD_ENTRY_BYTES ? PRD_ENTRY_BYTES : bytes;
        prd_table[2 * n] = addr;
        prd_table[2 * n + 1] = len;   /* byte count in bits 0-15 (0 would mean 64 KiB) */
        addr += len;
        bytes -= len;
        n++;
    }
    prd_table[2 * n - 1] |= PRD_EOT;
    u16 bm = a->bmide;
    if (wait_not_busy(a) < 0) return fail(0xFF);
    outb(bm + ATA_DMA_CMD, 0);
    outl(bm + ATA_DMA_TABLE, (u32)prd_table);
    outb(bm + ATA_DMA_STATUS, ATA_DMA_ERR | ATA_DMA_INTR);   /* write-1-to-clear */
    u32 seen = irq_count[IDE_IRQ];
    select_lba(a, lba, count);
    outb(a->cmd + ATA_REG_CMD, write ? ATA_CMD_WRITE : ATA_CMD_READ);
    outb(bm + ATA_DMA_CMD, (u8)(ATA_DMA_START | (write ? 0 : ATA_DMA_WR)));
    u8 bst = 0;
    if (a->use_irq) {
        wait_irq(seen);
        bst = inb(bm + ATA_DMA_STATUS);
    } else {
        u32 i;
        for (i = 0; i < SPIN_LIMIT; i++) {
            bst = inb(bm + ATA_DMA_STATUS);
            if ((bst & ATA_DMA_INTR) || !(bst & ATA_DMA_ACTIVE)) break;
        }
        if (i == SPIN_LIMIT) return fail(0xFE);
    }
    outb(bm + ATA_DMA_CMD, 0);
    outb(bm + ATA_DMA_STATUS, ATA_DMA_ERR | ATA_DMA_INTR);
    int st = wait_not_busy(a);
    if (st < 0) return fail(0xFF);
    st = status(a);
    if ((st & (ATA_ERR | ATA_DF | ATA_DRQ)) || (bst & ATA_DMA_ERR)) return fail((u8)st);
    return 0;
}

/* READ SECTORS of one sector at lba, announced on the debug port; the caller never reads it. */
static void start_read_and_abandon(struct ata *a, u32 lba, const char *what) {
    wait_not_busy(a);
    select_lba(a, lba, 1);
    outb(a->cmd + ATA_REG_CMD, ATA_CMD_PIO_READ);
    put_str(what);
    put_str(" mid-command lba=");
    put_dec(lba);
    put_str("\n");
}

void ata_hang_mid_command(struct ata *a, u32 lba) {
    start_read_and_abandon(a, lba, "HANG");
    for (;;) __asm__ volatile("sti; hlt");   /* alive, but never reads the data it asked for */
}

void ata_crash_mid_command(struct ata *a, u32 lba) {
    static const struct { u16 limit; u32 base; } __attribute__((packed)) null_idt = { 0, 0 };
    start_read_and_abandon(a, lba, "CRASH");
    /* An empty IDT makes the #UD unhandleable: #DF, then a triple fault (shutdown). */
    __asm__ volatile("lidt %0; ud2" : : "m"(null_idt));
    for (;;) __asm__ volatile("cli; hlt");
}
