// A user-mode NE2000 (RTL8029) driver written as an ordinary Linux driver program would be:
// iopl(3), a PCI conf1 scan for 10ec:8029, in/out/insl/outsl on its I/O BAR (ne2k-pci.h does
// what Linux's ne2k-pci and lib8390 do), interrupts from a UIO fd (/dev/uio0: read() blocks
// until the next interrupt and returns the count, write() of 1 re-enables it) or by polling
// ISR. It sends frames to the peers' MACs and broadcasts, receives and checks every frame
// (intact, addressed to it, in order per sender), and prints one RESULT line.
// Frames use the NIC demo's format (src/guests/nic-traffic.ts), so the scripted ne2k guests of
// `muxvisor run` check what it sends and it checks theirs.
//
// usage: ne2k-user [--peer MAC]... [--frames N] [--linger-ms MS] [--no-irq] [--spoof]
//                  [--first-seq N] [--pause-mid-transmit N]
//   --frames N            send N frames (default 40: each peer in turn, a broadcast every
//                         fourth round), go on receiving for --linger-ms (default 500), then
//                         turn the receiver off (monitor mode, as NS8390_init does first) and
//                         read what the ring still holds: every frame the card stored was read
//   --no-irq              poll ISR instead of waiting on /dev/uio0
//   --spoof               send one broadcast with the first peer's MAC as its source
//   --first-seq N         number its frames from N (default 0): a restarted driver stays in
//                         order for receivers that remember its last number
//   --pause-mid-transmit N  after N frames, stop for good halfway through a transmit upload
// Exit status 0 iff every frame read was good and every peer was heard from.
#include "ne2k-pci.h"
#include <fcntl.h>

#define MAX_PEERS 8
#define DEMO_ETHERTYPE 0x88b5
#define DEMO_HEADER 24 // Ethernet + magic(2) src(1) kind(1) seq(4) len(2)
#define KIND_UNICAST 1
#define KIND_BROADCAST 2
#define SPOOF_SEQ 0xdeadbeefu
#define IRQ_TIMEOUT_MS 10000

static struct ne2k nic;
static int uio = -1;
static uint32_t irq_count;
static uint8_t peers[MAX_PEERS][6];
static unsigned npeers;
static unsigned long heard[MAX_PEERS], others, received, received_bytes, bad, tx_done, tx_errors;
static long last_seq[256];

static void die(const char *what)
{
	fprintf(stderr, "ne2k-user: %s\n", what);
	exit(1);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

static uint8_t pattern_byte(unsigned src, uint32_t seq, unsigned i)
{
	return (uint8_t)(src * 131u + seq * 7u + i * 29u + (i >> 7));
}

static unsigned demo_frame(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], unsigned kind, uint32_t seq, unsigned payload)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = DEMO_ETHERTYPE >> 8, f[13] = DEMO_ETHERTYPE & 0xff;
	f[14] = 'M', f[15] = 'X', f[16] = src[5], f[17] = (uint8_t)kind;
	f[18] = (uint8_t)(seq >> 24), f[19] = (uint8_t)(seq >> 16), f[20] = (uint8_t)(seq >> 8), f[21] = (uint8_t)seq;
	f[22] = (uint8_t)(payload >> 8), f[23] = (uint8_t)payload;
	for (unsigned i = 0; i < payload; i++)
		f[DEMO_HEADER + i] = pattern_byte(src[5], seq, i);
	return DEMO_HEADER + payload;
}

// One frame read from the ring: a demo frame, to us or broadcast, whose sender index is its
// source MAC's last byte, with a sequence number above that sender's last one.
static void check_frame(const uint8_t *f, unsigned len)
{
	received++;
	received_bytes += len;
	static const uint8_t all[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	int to_me = !memcmp(f, nic.mac, 6), to_all = !memcmp(f, all, 6);
	unsigned payload = len >= DEMO_HEADER ? (unsigned)f[22] << 8 | f[23] : 0;
	int ok = len >= DEMO_HEADER && (f[12] << 8 | f[13]) == DEMO_ETHERTYPE && f[14] == 'M' && f[15] == 'X' &&
		 DEMO_HEADER + payload <= len && f[16] == f[11] && (to_me || to_all);
	uint32_t seq = ok ? (uint32_t)f[18] << 24 | (uint32_t)f[19] << 16 | (uint32_t)f[20] << 8 | f[21] : 0;
	for (unsigned i = 0; ok && i < payload; i++)
		ok = f[DEMO_HEADER + i] == pattern_byte(f[16], seq, i);
	if (ok && (long)seq <= last_seq[f[16]])
		ok = 0; // out of order or repeated
	if (!ok) {
		if (bad++ < 5)
			fprintf(stderr, "ne2k-user: bad frame of %u bytes from %02x:%02x:%02x:%02x:%02x:%02x\n", len, f[6], f[7],
				f[8], f[9], f[10], f[11]);
		return;
	}
	last_seq[f[16]] = (long)seq;
	for (unsigned p = 0; p < npeers; p++)
		if (!memcmp(f + 6, peers[p], 6))
			return (void)heard[p]++;
	others++; // a good frame from a sender that is not a peer (a broadcast)
}

// ei_interrupt's loop: service ISR until it reads clear (the line then falls, so the next
// event is a new edge on the UIO fd).
static void service(void)
{
	for (int n = 0; n < 64; n++) {
		uint8_t isr = ne_in(&nic, EN0_ISR) & ENISR_ALL;
		if (!isr)
			return;
		if (isr & ENISR_OVER)
			nic.overruns++, ne_out(&nic, ENISR_OVER, EN0_ISR);
		if (isr & (ENISR_RX | ENISR_RX_ERR))
			for (int k = 0; k < 16 && !ne2k_receive(&nic, check_frame); k++)
				;
		if (isr & ENISR_TX)
			tx_done++, ne_out(&nic, ENISR_TX, EN0_ISR);
		if (isr & ENISR_TX_ERR)
			tx_errors++, ne_out(&nic, ENISR_TX_ERR, EN0_ISR);
		if (isr & ENISR_COUNTERS) {
			for (int i = 0; i < 3; i++)
				ne_in(&nic, EN0_COUNTER0 + i);
			ne_out(&nic, ENISR_COUNTERS, EN0_ISR);
		}
	}
}

// Waits up to `ms` for an interrupt (or, polling, a moment) and services the card; 1 if
// there was something.
static int wait_and_service(int ms)
{
	if (uio < 0) {
		uint8_t isr = ne_in(&nic, EN0_ISR) & ENISR_ALL;
		if (!isr && ms > 0)
			usleep(1000); // nothing yet: do not hammer the card
		service();
		return isr != 0;
	}
	struct pollfd p = { .fd = uio, .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (r < 0)
		die("poll /dev/uio0 failed");
	if (r == 0)
		return 0;
	if (read(uio, &irq_count, 4) != 4)
		die("read /dev/uio0 failed");
	service();
	uint32_t enable = 1;
	if (write(uio, &enable, 4) != 4) // UIO: re-enable the interrupt
		die("write /dev/uio0 failed");
	return 1;
}

// Sends one frame and waits for its PTX/TXE, serving receptions meanwhile.
static void transmit(const uint8_t *f, unsigned len)
{
	unsigned long before = tx_done + tx_errors;
	if (ne2k_start_xmit(&nic, f, len))
		die("transmit failed");
	uint64_t until = now_ms() + IRQ_TIMEOUT_MS;
	while (tx_done + tx_errors == before) {
		if (now_ms() > until)
			die("no transmit interrupt (PTX/TXE)");
		wait_and_service(IRQ_TIMEOUT_MS);
	}
}

// Starts a transmit upload, sends half the bytes and stops there for good (tests kill it).
static void pause_mid_transmit(void)
{
	static uint8_t half[256];
	ne_out(&nic, 0, EN0_IMR);
	ne2k_remote_write_setup(&nic, 2 * sizeof half, NESM_START_PG);
	outsl(nic.io + NE_DATAPORT, half, sizeof half / 4);
	printf("ne2k-user: paused mid-transmit (pid %d)\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}

static void print_mac(const char *label, const uint8_t m[6])
{
	printf("%s%02x:%02x:%02x:%02x:%02x:%02x", label, m[0], m[1], m[2], m[3], m[4], m[5]);
}

int main(int argc, char **argv)
{
	unsigned long frames = 40;
	int use_irq = 1, spoof = 0, linger_ms = 500;
	long pause_after = -1;
	uint32_t seq = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(a, "--peer") && npeers < MAX_PEERS) {
			if (parse_mac(v, peers[npeers++]))
				die("--peer needs a MAC address (aa:bb:cc:dd:ee:ff)");
			i++;
		} else if (!strcmp(a, "--frames")) frames = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--linger-ms")) linger_ms = atoi(v), i++;
		else if (!strcmp(a, "--first-seq")) seq = (uint32_t)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--pause-mid-transmit")) pause_after = strtol(v, NULL, 0), i++;
		else if (!strcmp(a, "--no-irq")) use_irq = 0;
		else if (!strcmp(a, "--spoof")) spoof = 1;
		else die("usage: ne2k-user [--peer MAC]... [--frames N] [--linger-ms MS] [--no-irq] [--spoof] [--first-seq N] [--pause-mid-transmit N]");
	}
	if (spoof && npeers == 0)
		die("--spoof takes its source MAC from the first --peer");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (iopl(3) < 0) {
		perror("ne2k-user: iopl(3)");
		return 1;
	}
	if (ne2k_find(&nic))
		die("no RTL8029 (10ec:8029) on PCI bus 0");
	if (ne2k_probe(&nic))
		die("probe failed: no 8390 at the I/O BAR");
	if (ne2k_init(&nic))
		die("init failed: PAR/MAR read back differently");
	if (use_irq) {
		const char *path = getenv("MUXVISOR_UIO_PATH");
		uio = open(path ? path : "/dev/uio0", O_RDWR | O_CLOEXEC);
		if (uio < 0) {
			perror("ne2k-user: open /dev/uio0 (use --no-irq to poll)");
			return 1;
		}
	}
	printf("ne2k-user: RTL8029 at io 0x%x irq %u, ", nic.io, nic.irq_line);
	print_mac("mac ", nic.mac);
	printf(", %s\n", use_irq ? "interrupts from /dev/uio0" : "polling ISR");
	for (int i = 0; i < 256; i++)
		last_seq[i] = -1;

	static const uint8_t all[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static uint8_t f[ETH_FRAME_MAX];
	unsigned long sent = 0, sent_bytes = 0, unicast = 0, broadcast = 0, spoofed = 0;
	uint64_t t0 = now_ms();
	for (unsigned round = 0; sent < frames; round++) {
		unsigned payload = 46 + (round * 37) % 450;
		if (pause_after >= 0 && sent >= (unsigned long)pause_after)
			pause_mid_transmit();
		if (npeers) {
			unsigned len = demo_frame(f, peers[round % npeers], nic.mac, KIND_UNICAST, seq++, payload);
			transmit(f, len);
			sent++, unicast++, sent_bytes += len;
		}
		if (round % 4 == 3 || !npeers) {
			unsigned len = demo_frame(f, all, nic.mac, KIND_BROADCAST, seq++, payload);
			transmit(f, len);
			sent++, broadcast++, sent_bytes += len;
		}
		if (spoof && round == 0) {
			// Someone else's source MAC: a shared card's anti-spoof check must drop it.
			transmit(f, demo_frame(f, all, peers[0], KIND_BROADCAST, SPOOF_SEQ, 46));
			spoofed++;
		}
		wait_and_service(0);
	}
	// Frames still on their way, then the receiver off and the ring emptied.
	for (uint64_t end = now_ms() + (uint64_t)linger_ms; now_ms() < end;)
		wait_and_service(50);
	ne_out(&nic, E8390_RXOFF, EN0_RXCR);
	for (int k = 0; k < 64 && !ne2k_receive(&nic, check_frame); k++)
		;
	service();

	int ok = bad == 0 && nic.rx_errors == 0 && tx_errors == 0;
	for (unsigned p = 0; p < npeers; p++)
		ok = ok && heard[p] > 0;
	printf("RESULT ne2k-user ");
	print_mac("mac=", nic.mac);
	printf(" mode=%s sent=%lu sentBytes=%lu unicast=%lu broadcast=%lu spoofSent=%lu received=%lu receivedBytes=%lu "
	       "others=%lu bad=%lu rxErrors=%u txErrors=%lu overruns=%u irqs=%u from=",
	       use_irq ? "irq" : "poll", sent, sent_bytes, unicast, broadcast, spoofed, received, received_bytes, others, bad,
	       nic.rx_errors, tx_errors, nic.overruns, irq_count);
	for (unsigned p = 0; p < npeers; p++) {
		print_mac(p ? "," : "", peers[p]);
		printf("/%lu", heard[p]);
	}
	printf(" ms=%llu %s\n", (unsigned long long)(now_ms() - t0), ok ? "verified" : "FAILED");
	return ok ? 0 : 1;
}
