/* Shared declarations of the muxvisor KVM runner (one process per guest). */
#ifndef RUNNER_H
#define RUNNER_H
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

/* Exit codes: why the guest stopped. Also named in the final stderr line and in `bye`. */
enum stop_reason {
    STOP_HLT = 0,            /* HLT with interrupts off: the guest is done */
    STOP_HOST_ERROR = 1,     /* setup or host failure (message on stderr) */
    STOP_NO_KVM = 3,         /* /dev/kvm missing or unusable */
    STOP_SHUTDOWN = 10,      /* triple fault (KVM_EXIT_SHUTDOWN) */
    STOP_INTERNAL = 11,      /* KVM internal error or failed VM entry */
    STOP_DISCONNECTED = 12,  /* the supervisor closed the channel (bye, err or EOF) */
    STOP_TERMINATED = 13,    /* SIGTERM/SIGINT */
};
const char *stop_name(enum stop_reason r);

/* A host failure. The helper process prints "muxvisor-kvm[guest]: error: ..." and exits
 * with `code`; the N-API addon turns it into a thrown JS Error instead (addon.c). */
void die_code(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
#define die(...) die_code(STOP_HOST_ERROR, __VA_ARGS__)
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern const char *g_guest_name;

struct vm {
    int kvm, vmfd, vcpufd;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;           /* guest RAM at guest-physical 0, shared with the supervisor */
    size_t mem_size;
    int mem_fd;             /* the sealed memfd behind mem (PROTOCOL.md hello dma.fd), -1 when closed */
};

void vm_create(struct vm *vm, const char *kvm_dev, size_t mem_size);
void vm_enter_protected(struct vm *vm, uint32_t entry, uint32_t eax, uint32_t ebx);
void vm_enter_real(struct vm *vm, uint16_t cs, uint16_t ip);
void vm_irq_line(struct vm *vm, uint32_t line, int level);
/* 1 when the vCPU sits in HLT with RFLAGS.IF clear (only NMI/INIT could wake it). */
int vm_halted_for_good(struct vm *vm);
/* VM_RUNNING, VM_SLEEPING (HLT waiting for an interrupt) or VM_HALTED_FOR_GOOD. */
enum { VM_RUNNING, VM_SLEEPING, VM_HALTED_FOR_GOOD };
int vm_halt_state(struct vm *vm);
uint64_t vm_rip(struct vm *vm);
void vm_destroy(struct vm *vm);

/* One KVM exit, classified once for both runners (exit.c). */
#define DEBUG_PORT 0xE9       /* Bochs/QEMU debug console: guest output */
#define POST_PORT 0x80        /* POST code / I/O delay port: answered locally, the exit-cost floor */
enum exit_kind {
    EXIT_LOCAL,     /* answered here (DEBUG_PORT, POST_PORT): run again */
    EXIT_IO,        /* port I/O for the device path (vm->run->io) */
    EXIT_MMIO,      /* MMIO for the device path (vm->run->mmio) */
    EXIT_KICKED,    /* KVM_EXIT_INTR: a signal or immediate_exit stopped the vCPU */
    EXIT_STOP,      /* the guest stopped for good: *stop says why */
};
struct exit_counts { uint64_t exits, io, mmio, local; };
/* Counts the exit in *c; console gets each byte the guest writes to DEBUG_PORT. */
enum exit_kind exit_dispatch(struct vm *vm, struct exit_counts *c, void (*console)(void *ctx, uint8_t byte),
                             void *ctx, enum stop_reason *stop);

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002   /* EAX at a multiboot kernel's entry */

/* Image loading: returns the entry point. */
uint32_t load_kernel(struct vm *vm, const char *path);
void load_flat(struct vm *vm, const char *path, uint64_t addr);
/* Multiboot v1 information structure with memory sizes and the command line; returns its address. */
uint32_t write_multiboot_info(struct vm *vm, const char *cmdline);


/* The channel to the supervisor (src/channel/PROTOCOL.md). A reader thread receives
 * replies, IRQ levels and DMA requests; the vCPU thread sends accesses and waits. */
struct access {
    const char *space;      /* "pio" or "mmio" */
    uint64_t addr;
    uint32_t size;          /* 1, 2, 4 or 8 */
    int write;
    uint64_t value;         /* single write value */
    uint32_t count;         /* string I/O repetitions (1 for single) */
    uint8_t *data;          /* string data: written bytes (out), or where read bytes go (in) */
};
struct channel;
struct channel *channel_connect(const char *addr, struct vm *vm, void (*kick)(void));
/* Sends hello and waits for welcome; dies with the supervisor's err message otherwise.
 * with_dma: offer guest RAM's memfd as the DMA memory; token: the guest's credential or NULL. */
void channel_hello(struct channel *ch, const char *guest, int with_dma, const char *token);
/* Forwards one access; fills value / data for reads. Returns -1 when the channel closed. */
int channel_access(struct channel *ch, struct access *acc, uint64_t *value);
/* Non-zero once the supervisor said bye/err or hung up; *why gets a printable reason. */
int channel_closed(struct channel *ch, const char **why);
void channel_bye(struct channel *ch, const char *reason);
#endif
