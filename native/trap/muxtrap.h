// Shared declarations of the user-mode trap shim (libmuxtrap.so). See README.md.
#ifndef MUXTRAP_H
#define MUXTRAP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

// Exit status when the channel to the supervisor is lost mid-run (EX_SOFTWARE).
#define MT_EXIT_CHANNEL 70
// Largest string I/O chunk sent in one `acc` (elements are split over several accesses).
#define MT_CHUNK 4096

enum mt_space { MT_PIO = 0, MT_MMIO = 1, MT_PCICFG = 2 };
enum mt_mode { MT_MODE_OFF, MT_MODE_ECHO, MT_MODE_CHANNEL };

struct mt_acc {
	enum mt_space space;
	uint64_t addr;
	uint8_t size;         // 1, 2, 4, 8
	uint8_t write;        // 1 = write
	uint64_t value;       // single writes
	uint32_t count;       // elements (string I/O), >= 1
	const uint8_t *data;  // string writes: count*size bytes
};

struct mt_rep {
	uint64_t value;       // single reads
	uint8_t *data;        // string reads: caller's buffer of count*size bytes
	int refused;          // the supervisor answered with `e`
};

// A mapped device BAR: [start, start+len) of our address space is PROT_NONE and
// stands for bus addresses [bus, bus+len).
struct mt_region {
	uintptr_t start;
	size_t len;
	uint64_t bus;
};

struct mt_dma {
	uint64_t base;    // bus address of byte 0
	uint64_t size;
	uint8_t *mem;     // our mapping (NULL: no DMA memory)
	int fd;           // the memfd (what /dev/muxvisor-dma opens)
	int shared;       // it is sealed and announced in hello by number (else dmar/dmaw only)
};

struct mt_slot;
struct mt_slot_file {
	struct mt_slot *mem;  // our mapping of the sealed memfd (NULL: no slot offered)
};

extern enum mt_mode mt_mode;
extern int mt_trace_fd;
extern struct mt_dma mt_dma;
extern struct mt_slot_file mt_slot_file;

// connect.c: the connection is made when the program first reaches for hardware.
void mt_connect_prepare(void); // constructor: read the environment
void mt_connect(void);         // idempotent, thread-safe, async-signal-safe; exits on failure
void mt_disconnect(void);      // destructor: bye

// channel.c: the socket to the supervisor.
int mt_chan_open(const char *path, const char *guest, const char *token, uint64_t spin_us); // token: "" for none
int mt_chan_access(const struct mt_acc *a, struct mt_rep *r); // 0, or -1 when lost
void mt_chan_start_reader(void);
void mt_chan_bye(const char *reason);
void mt_chan_forget(void);
// For slot.c, with the channel lock held:
uint32_t mt_chan_frames(void);          // frames read from the socket so far
void mt_chan_pump(void);                // read and handle one frame (blocks); exits when lost
void mt_chan_pump_if_readable(void);    // the same, only if the socket has data or EOF
void mt_chan_ring(void);                // the doorbell: a `ring` frame
void mt_chan_lost(const char *why);     // message and exit 70

// slot.c: the shared-memory fast path for accesses.
int mt_slot_create(uint64_t spin_us, int always); // before hello
void mt_slot_settle(int accepted);      // after welcome
int mt_slot_on(void);
int mt_slot_access(const struct mt_acc *a, struct mt_rep *r); // 0, or 1: use the socket
void mt_slot_forget(void);

// interpose.c: libc's own sigaction (ours only records the program's SIGSEGV wishes).
extern int (*mt_real_sigaction)(int, const struct sigaction *, struct sigaction *);

// handler.c: the SIGSEGV handler and the program's own SIGSEGV disposition.
void mt_install_handler(void);
int mt_app_sigaction(const struct sigaction *act, struct sigaction *old);
int mt_region_add(uintptr_t start, size_t len, uint64_t bus);
void mt_region_remove(uintptr_t start, size_t len);
void mt_access(struct mt_acc *a, struct mt_rep *r); // echo/channel/off dispatch

// irq.c: the UIO-style interrupt fd.
int mt_uio_open(int flags);
int mt_uio_is(int fd);
void mt_uio_forget(int fd);
ssize_t mt_uio_read(int fd, void *buf, size_t n);
void mt_irq_level(uint32_t line, int level);

// say.c: async-signal-safe messages to stderr.
struct mt_msg {
	char b[768];
	size_t n;
};
void msg_s(struct mt_msg *m, const char *s);
void msg_x(struct mt_msg *m, uint64_t v);  // 0x-prefixed hex
void msg_u(struct mt_msg *m, uint64_t v);  // decimal
void msg_bytes(struct mt_msg *m, const uint8_t *b, size_t n); // "0f b6 07"
void msg_out(struct mt_msg *m, int fd);    // writes and resets
// "muxtrap: WHAT: strerror(errno)" for a failed syscall, at constructor time.
void mt_perror(const char *what, const char *detail);
int mt_write_all(int fd, const void *b, size_t n);
int mt_read_all(int fd, void *b, size_t n); // 0, or -1 (EOF sets errno = ECONNRESET)

#endif
