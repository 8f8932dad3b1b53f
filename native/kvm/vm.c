/* VM, guest memory and vCPU setup through the KVM API (Documentation/virt/kvm/api.rst). */
#define _GNU_SOURCE
#include "runner.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define TSS_ADDR 0xfffbd000ul        /* three pages KVM needs below 4 GiB on Intel (KVM_SET_TSS_ADDR) */
#define X86_CR0_PE 0x1               /* protected mode enable */
#define X86_CR0_ET 0x10              /* extension type (always 1 on 486+) */
#define X86_EFLAGS_IF 0x200          /* interrupt enable flag */
#define X86_EFLAGS_FIXED 0x2         /* bit 1 always reads 1 */
#define CPUID_MAX_ENTRIES 100
#define BOOT_STACK_TOP 0x8ff0              /* below the multiboot info at 0x9000 (load.c) */

static int kvm_ioctl(int fd, unsigned long req, unsigned long arg, const char *name) {
    int r;
    do r = ioctl(fd, req, arg); while (r < 0 && (errno == EINTR || errno == EAGAIN));
    if (r < 0) die("%s: %s", name, strerror(errno));
    return r;
}
#define KVM_IOCTL(fd, req, arg) kvm_ioctl((fd), (req), (unsigned long)(arg), #req)

static void open_kvm(struct vm *vm, const char *kvm_dev) {
    vm->kvm = open(kvm_dev, O_RDWR | O_CLOEXEC);
    if (vm->kvm < 0)
        die_code(STOP_NO_KVM,
                 "cannot open %s: %s. KVM is needed: load the kvm_intel or kvm_amd module, enable "
                 "VT-x/AMD-V (or nested virtualization on the host), and give this user read-write "
                 "access to %s (e.g. the kvm group)",
                 kvm_dev, strerror(errno), kvm_dev);
    int version = ioctl(vm->kvm, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        die_code(STOP_NO_KVM, "%s: KVM_GET_API_VERSION returned %d, need %d", kvm_dev, version, KVM_API_VERSION);
    static const struct { int cap; const char *name; } needed[] = {
        { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
        { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
        { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
        { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
    };
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (ioctl(vm->kvm, KVM_CHECK_EXTENSION, needed[i].cap) <= 0)
            die_code(STOP_NO_KVM, "%s lacks %s", kvm_dev, needed[i].name);
}

/* Guest RAM is a memfd sealed against shrinking, growing and further seals: the helper offers
 * it to the supervisor as the DMA window by descriptor number (PROTOCOL.md "DMA memory"), and
 * it has no name anybody could open, replace or leave behind. */
static void create_memory(struct vm *vm, size_t size) {
    int fd = memfd_create("muxvisor-kvm-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) die("guest memory: memfd_create: %s", strerror(errno));
    vm->mem_fd = fd;
    if (ftruncate(fd, (off_t)size) < 0) die("guest memory: ftruncate %zu bytes: %s", size, strerror(errno));
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) die("guest memory: fcntl(F_ADD_SEALS): %s", strerror(errno));
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) die("guest memory: mmap %zu bytes: %s", size, strerror(errno));
    vm->mem = mem;
    vm->mem_size = size;
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = size, .userspace_addr = (uintptr_t)mem,
    };
    KVM_IOCTL(vm->vmfd, KVM_SET_USER_MEMORY_REGION, &region);
}

/* Without KVM_SET_CPUID2 the guest sees an empty CPUID; hand it what the host supports. */
static void set_cpuid(struct vm *vm) {
    size_t bytes = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, bytes);
    if (!cpuid) die("cpuid: out of memory");
    cpuid->nent = CPUID_MAX_ENTRIES;
    KVM_IOCTL(vm->kvm, KVM_GET_SUPPORTED_CPUID, cpuid);
    KVM_IOCTL(vm->vcpufd, KVM_SET_CPUID2, cpuid);
    free(cpuid);
}

void vm_create(struct vm *vm, const char *kvm_dev, size_t mem_size) {
    memset(vm, 0, sizeof *vm);
    vm->kvm = vm->vmfd = vm->vcpufd = vm->mem_fd = -1;
    open_kvm(vm, kvm_dev);
    vm->vmfd = KVM_IOCTL(vm->kvm, KVM_CREATE_VM, 0);
    KVM_IOCTL(vm->vmfd, KVM_SET_TSS_ADDR, TSS_ADDR);
    /* In-kernel PIC/IOAPIC/LAPIC and PIT: their port accesses never leave the kernel. */
    KVM_IOCTL(vm->vmfd, KVM_CREATE_IRQCHIP, 0);
    struct kvm_pit_config pit = { .flags = 0 };
    KVM_IOCTL(vm->vmfd, KVM_CREATE_PIT2, &pit);
    create_memory(vm, mem_size);
    vm->vcpufd = KVM_IOCTL(vm->vmfd, KVM_CREATE_VCPU, 0);
    int run_size = KVM_IOCTL(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    void *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpufd, 0);
    if (run == MAP_FAILED) die("mmap of kvm_run (%d bytes): %s", run_size, strerror(errno));
    vm->run = run;
    vm->run_size = (size_t)run_size;
    set_cpuid(vm);
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type) {
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
        .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
}

/* Multiboot v1 machine state (spec 3.2): flat 4 GiB segments, CR0.PE, paging off, IF clear. */
void vm_enter_protected(struct vm *vm, uint32_t entry, uint32_t eax, uint32_t ebx) {
    struct kvm_sregs sregs;
    KVM_IOCTL(vm->vcpufd, KVM_GET_SREGS, &sregs);
    flat_segment(&sregs.cs, 0x08, 0xb);   /* execute/read, accessed */
    flat_segment(&sregs.ds, 0x10, 0x3);   /* read/write, accessed */
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
    sregs.cr4 = 0;
    sregs.efer = 0;
    KVM_IOCTL(vm->vcpufd, KVM_SET_SREGS, &sregs);
    /* ESP is undefined for multiboot; a stack in low RAM spares a sloppy kernel a push into nowhere. */
    struct kvm_regs regs = { .rip = entry, .rax = eax, .rbx = ebx, .rsp = BOOT_STACK_TOP, .rflags = X86_EFLAGS_FIXED };
    KVM_IOCTL(vm->vcpufd, KVM_SET_REGS, &regs);
}

void vm_enter_real(struct vm *vm, uint16_t cs, uint16_t ip) {
    struct kvm_sregs sregs;
    KVM_IOCTL(vm->vcpufd, KVM_GET_SREGS, &sregs);
    sregs.cs.selector = cs;
    sregs.cs.base = (uint64_t)cs << 4;
    KVM_IOCTL(vm->vcpufd, KVM_SET_SREGS, &sregs);
    struct kvm_regs regs = { .rip = ip, .rflags = X86_EFLAGS_FIXED };
    KVM_IOCTL(vm->vcpufd, KVM_SET_REGS, &regs);
}

void vm_irq_line(struct vm *vm, uint32_t line, int level) {
    struct kvm_irq_level irq = { .irq = line, .level = level ? 1 : 0 };
    KVM_IOCTL(vm->vmfd, KVM_IRQ_LINE, &irq);
}

int vm_halt_state(struct vm *vm) {
    struct kvm_mp_state mp;
    KVM_IOCTL(vm->vcpufd, KVM_GET_MP_STATE, &mp);
    if (mp.mp_state != KVM_MP_STATE_HALTED) return VM_RUNNING;
    struct kvm_regs regs;
    KVM_IOCTL(vm->vcpufd, KVM_GET_REGS, &regs);
    return regs.rflags & X86_EFLAGS_IF ? VM_SLEEPING : VM_HALTED_FOR_GOOD;
}

uint64_t vm_rip(struct vm *vm) {
    struct kvm_regs regs;
    KVM_IOCTL(vm->vcpufd, KVM_GET_REGS, &regs);
    return regs.rip;
}

int vm_halted_for_good(struct vm *vm) { return vm_halt_state(vm) == VM_HALTED_FOR_GOOD; }

void vm_destroy(struct vm *vm) {
    if (vm->mem_fd >= 0) close(vm->mem_fd);   /* the mapping keeps the memory while it lives */
    vm->mem_fd = -1;
}
