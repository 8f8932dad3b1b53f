// A user-mode ATA bus-master DMA driver (PIIX IDE), written as an ordinary Linux driver
// program would be: it finds the IDE function by a conf1 scan, enables bus mastering,
// builds scatter-gather PRD tables in its DMA memory (/dev/muxvisor-dma, bus address =
// $MUXVISOR_DMA_BASE + offset), runs WRITE DMA / READ DMA with interrupts from
// /dev/uio0, verifies the data, and cross-checks one batch with a PIO READ SECTORS.
// Run unmodified under the trap shim (native/trap); exit status 0 iff verified.
//
// usage: ata-dma [--sectors N] [--batch K] [--seed S]
#include "ata-common.h"

#include <sys/mman.h>

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define PCI_COMMAND 0x04          // command register (low 16 bits of dword 1)
#define PCI_COMMAND_IO 0x1        // respond to I/O space
#define PCI_COMMAND_MASTER 0x4    // bus mastering
#define PCI_CLASS_REVISION 0x08   // class code in the high 24 bits
#define PCI_HEADER_TYPE 0x0C      // header type in bits 16-23 of this dword
#define PCI_BASE_ADDRESS_4 0x20   // PIIX: bus-master IDE I/O base
#define PCI_CLASS_STORAGE_IDE 0x0101

#define ATA_DMA_CMD 0x0           // BM command: start 01h, read-to-memory 08h
#define ATA_DMA_STATUS 0x2        // BM status: active 01h, error 02h, interrupt 04h (write 1 to clear)
#define ATA_DMA_TABLE_OFS 0x4     // BM PRD table bus address
#define ATA_DMA_START 0x01
#define ATA_DMA_WR 0x08           // device to memory
#define ATA_DMA_ERR 0x02
#define ATA_DMA_INTR 0x04
#define ATA_PRD_EOT 0x8000        // last entry of a PRD table

#define ATA_CMD_READ_DMA 0xC8
#define ATA_CMD_WRITE_DMA 0xCA

#define PRD_CHUNK 4096            // bytes per PRD entry: every batch is scattered
#define DMA_MAP 0x40000           // how much of the DMA memory this driver maps

struct prd {
	uint32_t addr;
	uint16_t count;
	uint16_t flags;
};

static uint8_t *dma;      // our mapping of the DMA memory
static uint64_t dma_base; // its bus address
static uint16_t bm;       // bus-master registers of the primary channel

static uint32_t conf1(unsigned dev, unsigned fn, unsigned reg)
{
	outl(0x80000000u | dev << 11 | fn << 8 | reg, PCI_CONFIG_ADDRESS);
	return inl(PCI_CONFIG_DATA);
}

static void find_ide(void)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			if (conf1(dev, fn, 0) == 0xffffffffu) {
				if (fn == 0)
					break;
				continue;
			}
			if (conf1(dev, fn, PCI_CLASS_REVISION) >> 16 == PCI_CLASS_STORAGE_IDE) {
				bm = (uint16_t)(conf1(dev, fn, PCI_BASE_ADDRESS_4) & ~3u);
				uint32_t cmd = conf1(dev, fn, PCI_COMMAND);
				outl(0x80000000u | dev << 11 | fn << 8 | PCI_COMMAND, PCI_CONFIG_ADDRESS);
				outl(cmd | PCI_COMMAND_IO | PCI_COMMAND_MASTER, PCI_CONFIG_DATA);
				printf("ata-dma: IDE function 00:%02x.%u, bus master at 0x%x\n", dev, fn, bm);
				return;
			}
			if (fn == 0 && !(conf1(dev, 0, PCI_HEADER_TYPE) & 0x800000))
				break; // single-function device
		}
	}
	die("no IDE function (class 0101) on bus 0");
}

// Data of a batch lives in PRD_CHUNK pieces with a gap after each, so that the device
// must follow the table: piece k is at offset 0x2000 + 2*k*PRD_CHUNK.
static uint8_t *piece(unsigned k)
{
	return dma + 0x2000 + 2 * k * PRD_CHUNK;
}

static void dma_transfer(int write, uint32_t lba, unsigned n)
{
	struct prd *table = (struct prd *)dma; // at offset 0: dword aligned, no 64K crossing
	unsigned bytes = n * 512, k = 0;
	for (unsigned done = 0; done < bytes; done += PRD_CHUNK, k++) {
		unsigned len = bytes - done < PRD_CHUNK ? bytes - done : PRD_CHUNK;
		table[k] = (struct prd){ (uint32_t)(dma_base + (uint64_t)(piece(k) - dma)), (uint16_t)len,
					 done + len == bytes ? ATA_PRD_EOT : 0 };
	}
	const char *what = write ? "WRITE DMA" : "READ DMA";
	outb(write ? 0 : ATA_DMA_WR, bm + ATA_DMA_CMD);
	outl((uint32_t)dma_base, bm + ATA_DMA_TABLE_OFS);
	outb(ATA_DMA_ERR | ATA_DMA_INTR, bm + ATA_DMA_STATUS);
	command(write ? ATA_CMD_WRITE_DMA : ATA_CMD_READ_DMA, lba, n);
	outb((write ? 0 : ATA_DMA_WR) | ATA_DMA_START, bm + ATA_DMA_CMD);
	wait_irq_only(what);
	uint8_t bmst = inb(bm + ATA_DMA_STATUS);
	outb(write ? 0 : ATA_DMA_WR, bm + ATA_DMA_CMD); // stop the engine
	wait_not_busy(what);
	uint8_t st = inb(ATA_REG_STATUS); // acknowledges the interrupt
	outb(ATA_DMA_ERR | ATA_DMA_INTR, bm + ATA_DMA_STATUS);
	if (bmst & ATA_DMA_ERR || !(bmst & ATA_DMA_INTR) || st & (ATA_ERR | ATA_DF | ATA_DRQ)) {
		fprintf(stderr, "ata-dma: %s at LBA %u failed: bus-master status 0x%02x, status 0x%02x\n", what, lba,
			bmst, st);
		exit(1);
	}
}

static void fill(uint32_t lba, unsigned n, uint32_t seed)
{
	for (unsigned s = 0; s < n; s++)
		for (unsigned i = 0; i < SECTOR_WORDS; i++) {
			unsigned off = s * 512 + 2 * i;
			uint16_t w = pattern(seed, 0, lba + s, i);
			memcpy(piece(off / PRD_CHUNK) + off % PRD_CHUNK, &w, 2);
		}
}

static unsigned verify(uint32_t lba, unsigned n, uint32_t seed)
{
	unsigned bad = 0;
	for (unsigned s = 0; s < n; s++)
		for (unsigned i = 0; i < SECTOR_WORDS; i++) {
			unsigned off = s * 512 + 2 * i;
			uint16_t w;
			memcpy(&w, piece(off / PRD_CHUNK) + off % PRD_CHUNK, 2);
			if (w != pattern(seed, 0, lba + s, i)) {
				if (bad++ < 5)
					fprintf(stderr, "ata-dma: LBA %u word %u: DMA read 0x%04x, wrote 0x%04x\n", lba + s, i,
						w, pattern(seed, 0, lba + s, i));
				break;
			}
		}
	return bad;
}

int main(int argc, char **argv)
{
	uint32_t want = 64, batch = 16, seed = (uint32_t)getpid();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
		if (!strcmp(a, "--sectors")) want = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--batch")) batch = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--seed")) seed = (uint32_t)strtoul(v, NULL, 0), i++;
		else die("usage: ata-dma [--sectors N] [--batch K] [--seed S]");
	}
	if (batch < 1 || batch > 64)
		die("--batch must be 1..64 (the buffers span 2*batch/8 pages of DMA memory)");
	if (iopl(3) < 0) {
		perror("ata-dma: iopl");
		return 1;
	}
	const char *base = getenv("MUXVISOR_DMA_BASE");
	int fd = open("/dev/muxvisor-dma", O_RDWR | O_CLOEXEC);
	dma = fd < 0 || !base ? MAP_FAILED : mmap(NULL, DMA_MAP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (dma == MAP_FAILED) {
		perror("ata-dma: map /dev/muxvisor-dma");
		return 1;
	}
	dma_base = strtoull(base, NULL, 0);
	find_ide();
	open_irq(1);
	uint32_t sectors;
	char model[41];
	uint64_t t0 = now_ms();
	identify(&sectors, model);
	uint32_t n = sectors < want ? sectors : want;
	unsigned bad = 0;
	for (uint32_t lba = 0; lba < n; lba += batch) {
		unsigned k = n - lba < batch ? n - lba : batch;
		fill(lba, k, seed);
		dma_transfer(1, lba, k);
	}
	command(ATA_CMD_FLUSH, 0, 0);
	check_status(wait_irq("FLUSH CACHE"), 0, "FLUSH CACHE");
	for (uint32_t lba = 0; lba < n; lba += batch) {
		unsigned k = n - lba < batch ? n - lba : batch;
		memset(dma + 0x2000, 0, DMA_MAP - 0x2000);
		dma_transfer(0, lba, k);
		bad += verify(lba, k, seed);
	}
	bad += read_verify(0, n < batch ? n : batch, seed, 0); // the same data through PIO
	printf("ata-dma: model \"%s\", %u sectors; DMA wrote and read %u sectors in %llu ms, %u interrupts: %s\n", model,
	       sectors, n, (unsigned long long)(now_ms() - t0), irq_count, bad ? "VERIFY FAILED" : "verified");
	return bad ? 1 : 0;
}
