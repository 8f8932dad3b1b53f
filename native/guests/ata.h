/* ATA (PIO and PIIX bus-master DMA) primitives of the bare-metal guest driver. */
#ifndef ATA_H
#define ATA_H
#include "guest.h"

struct ata {
    u16 cmd;        /* command block base (0x1F0 on the primary channel) */
    u16 ctl;        /* control block: alternate status / device control (0x3F6) */
    u16 bmide;      /* bus-master IDE registers of this channel (BAR4), 0 if none */
    int use_irq;    /* wait for IRQ 14 in HLT instead of polling */
    u32 sectors;    /* LBA28 capacity from IDENTIFY words 60-61 */
    char model[41]; /* IDENTIFY words 27-46, byte-swapped to text */
};

/* 0 on success; otherwise the status register (with bit 8 set) describing the error. */
int ata_identify(struct ata *a);
int ata_pio(struct ata *a, int write, u32 lba, u32 count, void *buf);
int ata_dma(struct ata *a, int write, u32 lba, u32 count, void *buf);
/* Issues READ SECTORS and never reads the data: a driver that hangs mid-command. */
void ata_hang_mid_command(struct ata *a, u32 lba);
void ata_crash_mid_command(struct ata *a, u32 lba);

#endif
