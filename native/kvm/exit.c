/* The one dispatch of a KVM exit, for the helper process (main.c) and the N-API addon (addon.c):
 * what the vCPU stopped for, with the local ports answered here — 0xE9 (Bochs/QEMU debug
 * console: each byte written goes to the caller's console, a read returns 0xE9) and 0x80 (POST
 * code / I/O delay: writes ignored, reads 0, the exit-cost floor). The caller forwards IO and
 * MMIO exits to its device path and decides what a kick means for it. */
#include "runner.h"
#include <string.h>

enum exit_kind exit_dispatch(struct vm *vm, struct exit_counts *c, void (*console)(void *ctx, uint8_t byte),
                             void *ctx, enum stop_reason *stop) {
    struct kvm_run *r = vm->run;
    c->exits++;
    switch (r->exit_reason) {
    case KVM_EXIT_IO: {
        uint8_t *data = (uint8_t *)r + r->io.data_offset;
        size_t bytes = (size_t)r->io.size * r->io.count;
        c->io++;
        if (r->io.port == DEBUG_PORT) {
            c->local++;
            if (r->io.direction == KVM_EXIT_IO_OUT)
                for (uint32_t i = 0; i < r->io.count; i++) console(ctx, data[i * r->io.size]);
            else memset(data, DEBUG_PORT, bytes);
            return EXIT_LOCAL;
        }
        if (r->io.port == POST_PORT) {
            c->local++;
            if (r->io.direction == KVM_EXIT_IO_IN) memset(data, 0, bytes);
            return EXIT_LOCAL;
        }
        return EXIT_IO;
    }
    case KVM_EXIT_MMIO:
        c->mmio++;
        return EXIT_MMIO;
    case KVM_EXIT_INTR:
        return EXIT_KICKED;
    case KVM_EXIT_HLT:   /* only without an in-kernel LAPIC; kept for completeness */
        *stop = STOP_HLT;
        return EXIT_STOP;
    case KVM_EXIT_SHUTDOWN:
        *stop = STOP_SHUTDOWN;
        return EXIT_STOP;
    case KVM_EXIT_INTERNAL_ERROR:
        note("KVM internal error, suberror %u, at rip 0x%llx", r->internal.suberror, (unsigned long long)vm_rip(vm));
        *stop = STOP_INTERNAL;
        return EXIT_STOP;
    case KVM_EXIT_FAIL_ENTRY:
        note("VM entry failed, hardware reason 0x%llx", (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
        *stop = STOP_INTERNAL;
        return EXIT_STOP;
    default:
        note("unexpected KVM exit reason %u", r->exit_reason);
        *stop = STOP_INTERNAL;
        return EXIT_STOP;
    }
}
