/*
 * muxvisor-kvm: runs one guest in a KVM VM and forwards its port and MMIO accesses to the
 * muxvisor supervisor over the channel protocol. Port 0xE9 (debug console) and port 0x80
 * (POST delay port) are answered here; everything else goes to the supervisor.
 * Usage: muxvisor-kvm --name G --kernel FILE [--cmdline S] [--connect unix:SOCK] [--mem MiB]
 */
#define _GNU_SOURCE
#include "runner.h"
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 20000000L     /* how often the vCPU is kicked to check for HLT with IF=0 */
#define LINE_MAX_CHARS 240

const char *g_guest_name = "guest";
static struct vm g_vm;
static pthread_t g_vcpu_thread;
static volatile sig_atomic_t g_terminate;
static int g_stamp;

static struct exit_counts counts;                 /* exits, io, mmio, local (exit.c) */
static struct { uint64_t forwarded, unclaimed; } stats;

const char *stop_name(enum stop_reason r) {
    switch (r) {
    case STOP_HLT: return "hlt";
    case STOP_HOST_ERROR: return "host-error";
    case STOP_NO_KVM: return "no-kvm";
    case STOP_SHUTDOWN: return "shutdown";
    case STOP_INTERNAL: return "internal-error";
    case STOP_DISCONNECTED: return "disconnected";
    case STOP_TERMINATED: return "terminated";
    }
    return "unknown";
}

void note(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "muxvisor-kvm[%s]: %s\n", g_guest_name, buf);
}

void die_code(int code, const char *fmt, ...) {
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "muxvisor-kvm[%s]: error: %s\n", g_guest_name, buf);
    fprintf(stderr, "muxvisor-kvm[%s]: exit reason=%s code=%d\n", g_guest_name, stop_name((enum stop_reason)code), code);
    vm_destroy(&g_vm);
    exit(code);
}

/* ---- debug console: one output line per guest line, prefixed with the guest's name ---- */
static char line_buf[LINE_MAX_CHARS];
static size_t line_len;

static void console_flush(void) {
    char out[LINE_MAX_CHARS + 96];
    int n;
    if (g_stamp) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        n = snprintf(out, sizeof out, "[%s @%lld] %.*s\n", g_guest_name,
                     (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, (int)line_len, line_buf);
    } else {
        n = snprintf(out, sizeof out, "[%s] %.*s\n", g_guest_name, (int)line_len, line_buf);
    }
    if (n > (int)sizeof out) n = sizeof out;
    if (write(STDOUT_FILENO, out, (size_t)n) < 0) { /* stdout gone: the guest keeps running */ }
    line_len = 0;
}

static void console_putc(uint8_t c) {
    if (c == '\n') { console_flush(); return; }
    if (c == '\r') return;
    line_buf[line_len++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    if (line_len == LINE_MAX_CHARS) console_flush();
}

static void console_byte(void *ctx, uint8_t c) { (void)ctx; console_putc(c); }

/* ---- signals: a kick makes KVM_RUN return EINTR (KVM_CAP_IMMEDIATE_EXIT closes the race) ---- */
static void on_kick(int sig) {
    (void)sig;
    if (g_vm.run) g_vm.run->immediate_exit = 1;
}

static void on_terminate(int sig) {
    (void)sig;
    g_terminate = 1;
    if (g_vm.run) g_vm.run->immediate_exit = 1;
}

static void kick_vcpu(void) { pthread_kill(g_vcpu_thread, SIGUSR1); }

static void *ticker_main(void *arg) {
    (void)arg;
    struct timespec t = { 0, TICK_NS };
    for (;;) {
        nanosleep(&t, NULL);
        kick_vcpu();
    }
    return NULL;
}

static void install_signals(void) {
    struct sigaction sa = { 0 };
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) < 0) die("sigaction SIGUSR1: %s", strerror(errno));
    sa.sa_handler = on_terminate;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) die("sigaction SIGTERM: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);   /* a dead supervisor shows up as EOF on the channel */
}

/* ---- exits ---- */
static uint64_t get_le(const uint8_t *p, uint32_t size) {
    uint64_t v = 0;
    for (uint32_t i = 0; i < size; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, uint32_t size, uint64_t v) {
    for (uint32_t i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Sends the access to the supervisor; without one, reads see all-ones (nothing is there). */
static void forward(struct channel *ch, struct access *acc, uint8_t *single) {
    uint64_t value = ~0ull;
    stats.forwarded++;
    if (!ch || channel_access(ch, acc, &value) < 0) {
        stats.unclaimed++;
        if (!acc->write) memset(acc->data ? acc->data : single, 0xff, acc->count * acc->size);
        return;
    }
    if (!acc->write && acc->count == 1) put_le(single, acc->size, value);
}

/* A port access exit_dispatch did not answer locally: to the supervisor. */
static void handle_io(struct channel *ch) {
    struct kvm_run *r = g_vm.run;
    uint8_t *data = (uint8_t *)r + r->io.data_offset;
    int out = r->io.direction == KVM_EXIT_IO_OUT;
    uint32_t size = r->io.size, count = r->io.count;
    struct access acc = {
        .space = "pio", .addr = r->io.port, .size = size, .write = out,
        .value = count == 1 && out ? get_le(data, size) : 0, .count = count,
        .data = count > 1 ? data : NULL,
    };
    forward(ch, &acc, data);
}

static void handle_mmio(struct channel *ch) {
    struct kvm_run *r = g_vm.run;
    struct access acc = {
        .space = "mmio", .addr = r->mmio.phys_addr, .size = r->mmio.len, .write = r->mmio.is_write,
        .value = r->mmio.is_write ? get_le(r->mmio.data, r->mmio.len) : 0, .count = 1, .data = NULL,
    };
    forward(ch, &acc, r->mmio.data);
}

/* Why the vCPU stopped; 0 (STOP_HLT) included. Returns -1 to keep running. */
static int check_after_kick(struct channel *ch) {
    g_vm.run->immediate_exit = 0;
    if (g_terminate) return STOP_TERMINATED;
    if (ch && channel_closed(ch, NULL)) return STOP_DISCONNECTED;
    if (vm_halted_for_good(&g_vm)) return STOP_HLT;
    return -1;
}

static enum stop_reason run_loop(struct channel *ch) {
    for (;;) {
        int stop;
        if (ioctl(g_vm.vcpufd, KVM_RUN, 0) < 0) {
            if (errno != EINTR && errno != EAGAIN) die("KVM_RUN: %s", strerror(errno));
            if ((stop = check_after_kick(ch)) >= 0) return (enum stop_reason)stop;
            continue;
        }
        enum stop_reason why;
        switch (exit_dispatch(&g_vm, &counts, console_byte, NULL, &why)) {
        case EXIT_LOCAL:
            break;
        case EXIT_IO:
            handle_io(ch);
            break;
        case EXIT_MMIO:
            handle_mmio(ch);
            break;
        case EXIT_KICKED:
            if ((stop = check_after_kick(ch)) >= 0) return (enum stop_reason)stop;
            break;
        case EXIT_STOP:
            if (why == STOP_SHUTDOWN)
                note("guest shut down (triple fault) at rip 0x%llx", (unsigned long long)vm_rip(&g_vm));
            return why;
        }
        if (ch && channel_closed(ch, NULL)) return STOP_DISCONNECTED;
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: muxvisor-kvm --name NAME (--kernel ELF|--flat BIN --load-addr A [--entry A] [--real-mode])\n"
            "                    [--cmdline STR] [--mem MiB] [--connect unix:PATH|tcp:HOST:PORT]\n"
            "                    [--kvm-dev /dev/kvm] [--no-dma-fd] [--stamp]   (token: $MUXVISOR_TOKEN)\n");
    exit(STOP_HOST_ERROR);
}

static uint64_t num(const char *s, const char *opt) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || end == s) die("%s: not a number: %s", opt, s);
    return v;
}

int main(int argc, char **argv) {
    const char *kernel = NULL, *flat = NULL, *cmdline = "", *connect_to = NULL;
    const char *kvm_dev = "/dev/kvm";
    uint64_t load_addr = 0x100000, entry = UINT64_MAX, mem_mib = 32;
    int real_mode = 0, dma_fd = 1;
    static const struct option opts[] = {
        { "name", 1, 0, 'n' }, { "kernel", 1, 0, 'k' }, { "flat", 1, 0, 'f' }, { "load-addr", 1, 0, 'l' },
        { "entry", 1, 0, 'e' }, { "real-mode", 0, 0, 'r' }, { "cmdline", 1, 0, 'c' }, { "mem", 1, 0, 'm' },
        { "connect", 1, 0, 'C' }, { "kvm-dev", 1, 0, 'K' },
        { "no-dma-fd", 0, 0, 'D' }, { "stamp", 0, 0, 's' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': g_guest_name = optarg; break;
        case 'k': kernel = optarg; break;
        case 'f': flat = optarg; break;
        case 'l': load_addr = num(optarg, "--load-addr"); break;
        case 'e': entry = num(optarg, "--entry"); break;
        case 'r': real_mode = 1; break;
        case 'c': cmdline = optarg; break;
        case 'm': mem_mib = num(optarg, "--mem"); break;
        case 'C': connect_to = optarg; break;
        case 'K': kvm_dev = optarg; break;
        case 'D': dma_fd = 0; break;
        case 's': g_stamp = 1; break;
        default: usage();
        }
    }
    if (!kernel == !flat || optind != argc) usage();
    if (mem_mib < 2 || mem_mib > 3072) die("--mem %llu: want 2..3072 MiB", (unsigned long long)mem_mib);

    g_vcpu_thread = pthread_self();
    install_signals();
    vm_create(&g_vm, kvm_dev, (size_t)mem_mib << 20);
    if (kernel) {
        uint32_t start = load_kernel(&g_vm, kernel);
        /* Like GRUB and QEMU, the command line starts with the kernel's path. */
        char full[4096];
        snprintf(full, sizeof full, "%s%s%s", kernel, cmdline[0] ? " " : "", cmdline);
        uint32_t info = write_multiboot_info(&g_vm, full);
        vm_enter_protected(&g_vm, start, MULTIBOOT_BOOTLOADER_MAGIC, info);
    } else {
        load_flat(&g_vm, flat, load_addr);
        uint64_t start = entry == UINT64_MAX ? load_addr : entry;
        if (real_mode) vm_enter_real(&g_vm, (uint16_t)(start >> 4 & 0xF000), (uint16_t)(start & 0xFFFF));
        else vm_enter_protected(&g_vm, (uint32_t)start, 0, 0);
    }

    struct channel *ch = NULL;
    if (connect_to) {
        /* The guest's credential (src/channel/peer-auth.ts), read once and not kept in the
         * environment. Guest RAM is offered by descriptor number: only a peer on this machine,
         * over a Unix socket, can share it; over TCP the supervisor uses dmar/dmaw. */
        char token[512] = "";
        const char *t = getenv("MUXVISOR_TOKEN");
        if (t) snprintf(token, sizeof token, "%s", t);
        unsetenv("MUXVISOR_TOKEN");
        ch = channel_connect(connect_to, &g_vm, kick_vcpu);
        channel_hello(ch, g_guest_name, dma_fd && strncmp(connect_to, "tcp:", 4) != 0, token);
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_t ticker;
    pthread_sigmask(SIG_BLOCK, &block, &old);   /* signals are for the vCPU thread */
    int r = pthread_create(&ticker, NULL, ticker_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) die("pthread_create ticker: %s", strerror(r));

    enum stop_reason why = run_loop(ch);
    if (line_len) console_flush();
    const char *chan_why = NULL;
    if (why == STOP_DISCONNECTED && ch) channel_closed(ch, &chan_why);
    if (chan_why) note("%s", chan_why);
    if (stats.unclaimed && !ch) note("%llu accesses reached no device (no --connect): reads saw all-ones",
                                     (unsigned long long)stats.unclaimed);
    fprintf(stderr, "muxvisor-kvm[%s]: exit reason=%s code=%d exits=%llu io=%llu mmio=%llu local=%llu forwarded=%llu\n",
            g_guest_name, stop_name(why), (int)why, (unsigned long long)counts.exits, (unsigned long long)counts.io,
            (unsigned long long)counts.mmio, (unsigned long long)counts.local, (unsigned long long)stats.forwarded);
    if (ch) channel_bye(ch, stop_name(why));
    vm_destroy(&g_vm);
    return (int)why;
}
