// A user-mode ATA PIO driver written as an ordinary Linux driver program would be:
// ioperm(), outb/inb/insw/outsw from <sys/io.h> on the legacy primary channel
// (0x1F0-0x1F7, 0x3F6), interrupts through a UIO-style fd (/dev/uio0: read() blocks
// until the next interrupt and returns the interrupt count). It IDENTIFYs the drive,
// writes a pattern over its sectors, flushes, reads them back and verifies.
// Run unmodified under the trap shim (native/trap); exit status 0 iff verified.
//
// usage: ata-pio [--sectors N] [--start LBA] [--batch K] [--seed S] [--passes P] [--no-irq]
//                [--pause-mid-write]
// --pause-mid-write stops for good in the middle of a WRITE SECTORS data phase (after
// "paused mid-transfer" on stdout): tests kill it there to exercise the MUX reset path.
#include "ata-common.h"

static void write_sectors(uint32_t lba, unsigned n, uint32_t seed, uint32_t pass)
{
	uint16_t buf[SECTOR_WORDS];
	command(ATA_CMD_PIO_WRITE, lba, n);
	for (unsigned s = 0; s < n; s++) {
		check_status(wait_not_busy("WRITE SECTORS"), 1, "WRITE SECTORS data phase");
		for (unsigned i = 0; i < SECTOR_WORDS; i++)
			buf[i] = pattern(seed, pass, lba + s, i);
		outsw(ATA_REG_DATA, buf, SECTOR_WORDS);
		check_status(wait_irq("WRITE SECTORS"), 0, "WRITE SECTORS");
	}
}

// Issues WRITE SECTORS, sends half a sector, and waits to be killed.
static void pause_mid_write(uint32_t lba)
{
	uint16_t half[SECTOR_WORDS / 2] = { 0 };
	command(ATA_CMD_PIO_WRITE, lba, 1);
	check_status(wait_not_busy("WRITE SECTORS"), 1, "WRITE SECTORS data phase");
	outsw(ATA_REG_DATA, half, SECTOR_WORDS / 2);
	printf("ata-pio: paused mid-transfer at LBA %u (pid %d)\n", lba, (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	uint32_t want = 256, start = 0, batch = 8, seed = (uint32_t)getpid(), passes = 1;
	int use_irq = 1, pause_mid = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(a, "--sectors")) want = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--start")) start = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--batch")) batch = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--seed")) seed = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--passes")) passes = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--no-irq")) use_irq = 0;
		else if (!strcmp(a, "--pause-mid-write")) pause_mid = 1;
		else die("usage: ata-pio [--sectors N] [--start LBA] [--batch K] [--seed S] [--passes P] [--no-irq] [--pause-mid-write]");
	}
	if (batch < 1 || batch > 256)
		die("--batch must be 1..256");
	if (ioperm(ATA_REG_DATA, 8, 1) < 0 || ioperm(ATA_REG_CTL, 1, 1) < 0) {
		perror("ata-pio: ioperm 0x1f0-0x1f7, 0x3f6");
		return 1;
	}
	open_irq(use_irq);

	uint32_t sectors;
	char model[41];
	uint64_t t0 = now_ms();
	identify(&sectors, model);
	if (start >= sectors)
		die("--start is beyond the disk");
	uint32_t n = sectors - start < want ? sectors - start : want;
	unsigned bad = 0;
	if (pause_mid)
		pause_mid_write(start);
	for (uint32_t pass = 0; pass < passes; pass++) {
		for (uint32_t lba = start; lba < start + n; lba += batch)
			write_sectors(lba, start + n - lba < batch ? start + n - lba : batch, seed, pass);
		command(ATA_CMD_FLUSH, 0, 0);
		check_status(wait_irq("FLUSH CACHE"), 0, "FLUSH CACHE");
		for (uint32_t lba = start; lba < start + n; lba += batch)
			bad += read_verify(lba, start + n - lba < batch ? start + n - lba : batch, seed, pass);
	}
	printf("ata-pio: model \"%s\", %u sectors; wrote and read %u sectors from LBA %u x%u passes in %llu ms, "
	       "%u interrupts: %s\n",
	       model, sectors, n, start, passes, (unsigned long long)(now_ms() - t0), irq_count,
	       bad ? "VERIFY FAILED" : "verified");
	if (bad)
		printf("ata-pio: %u bad sectors\n", bad);
	return bad ? 1 : 0;
}
