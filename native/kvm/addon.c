/*
 * muxvisor_kvm.node: the KVM runner as an N-API addon, so the supervisor's own thread
 * answers each exit (no socket round trip; see README.md). run() enters the guest and
 * returns on the next exit that needs JavaScript: a port/MMIO access, a debug-port line,
 * the end of a time slice, or a stop. Port 0x80 and 0xE9 are answered here, as in the
 * helper process. Exit details are read by JS from the kvm_run page (exposed as an
 * ArrayBuffer, offsets from offsets()); a read's value is written back there before the
 * next run(). All calls come from the one JS thread.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include "runner.h"
#include <node_api.h>
#include <uv.h>
#include <poll.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_CHARS 240

enum run_result { RUN_YIELD = 0, RUN_IO = 1, RUN_MMIO = 2, RUN_LINE = 3, RUN_SLEEP = 4, RUN_STOP = 100 };

struct guest {
    struct vm vm;
    int open;
    char name[64];
    char line[LINE_MAX_CHARS + 1];
    size_t line_len;
    int line_ready;
    struct exit_counts counts;   /* exits, io, mmio, local (exit.c) */
};

const char *g_guest_name = "guest";
static jmp_buf *g_on_die;
static char g_die_msg[768];
static int g_die_code;
static struct kvm_run *volatile g_current_run;   /* the vCPU inside KVM_RUN, for the signal handler */
static int g_kick_signal;
/* One periodic timer for the thread kicks whichever vCPU is inside KVM_RUN, so run()
 * returns at least once per slice without two timer syscalls per call. It runs only
 * while guests are open. */
static timer_t g_slice_timer, g_peek_timer;
static int g_slice_timer_made, g_open_guests;
#define SLICE_NS 2000000L
/* A sleeping guest (HLT, IF=1) is re-entered only briefly, to take an interrupt that came
 * in; a full slice inside KVM_RUN would hold the thread every other guest needs. */
#define PEEK_NS 100000L

void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "muxvisor-kvm[%s]: ", g_guest_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* vm.c/load.c report host failures here: unwind to the N-API entry, which throws. */
void die_code(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_die_msg, sizeof g_die_msg, fmt, ap);
    va_end(ap);
    g_die_code = code;
    if (g_on_die) longjmp(*g_on_die, 1);
    fprintf(stderr, "muxvisor-kvm: fatal outside an addon call: %s\n", g_die_msg);
    abort();
}

static void on_kick(int sig) {
    (void)sig;
    struct kvm_run *run = g_current_run;
    if (run) run->immediate_exit = 1;
}

static void slice_timer(long ns) {
    struct itimerspec its = { { 0, ns }, { 0, ns } };
    timer_settime(g_slice_timer, 0, &its, NULL);
}

static void peek_timer(long ns) {
    struct itimerspec its = { { 0, 0 }, { 0, ns } };   /* one-shot; 0 disarms */
    timer_settime(g_peek_timer, 0, &its, NULL);
}

/* After a kick: stop for good, sleep (HLT with IF=1), or just the end of a slice. */
static int after_kick(struct guest *g) {
    g->vm.run->immediate_exit = 0;
    switch (vm_halt_state(&g->vm)) {
    case VM_HALTED_FOR_GOOD: return RUN_STOP + STOP_HLT;
    case VM_SLEEPING: return RUN_SLEEP;
    default: return RUN_YIELD;
    }
}

static napi_value throw_die(napi_env env) {
    char code[16];
    snprintf(code, sizeof code, "%s", g_die_code == STOP_NO_KVM ? "ENOKVM" : "EKVMHOST");
    napi_throw_error(env, code, g_die_msg);
    return NULL;
}

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

static struct guest *arg_guest(napi_env env, napi_value v) {
    struct guest *g = NULL;
    if (napi_get_value_external(env, v, (void **)&g) != napi_ok || !g) {
        napi_throw_type_error(env, NULL, "expected a KVM guest handle");
        return NULL;
    }
    if (!g->open) {
        napi_throw_error(env, NULL, "the KVM guest is closed");
        return NULL;
    }
    return g;
}

/* A string property, or dflt when it is absent or undefined; 0 when required and missing. */
static int get_string_prop(napi_env env, napi_value obj, const char *key, char *out, size_t len, const char *dflt) {
    napi_value v;
    napi_valuetype type = napi_undefined;
    size_t n;
    if (napi_get_named_property(env, obj, key, &v) == napi_ok) napi_typeof(env, v, &type);
    if (type != napi_string || napi_get_value_string_utf8(env, v, out, len, &n) != napi_ok) {
        snprintf(out, len, "%s", dflt ? dflt : "");
        return dflt != NULL;
    }
    return 1;
}

static void finalize_guest(napi_env env, void *data, void *hint) {
    (void)env; (void)hint;
    struct guest *g = data;
    if (g->open) {
        close(g->vm.vcpufd); close(g->vm.vmfd); close(g->vm.kvm);
        if (--g_open_guests == 0) slice_timer(0);
    }
    /* guest RAM and the kvm_run page stay mapped: ArrayBuffers may still view them */
    free(g);
}

/* create({name, kernel, cmdline, memMiB, kvmDev}) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1) { napi_throw_type_error(env, NULL, "create(options) needs options"); return NULL; }
    char kernel[1024], cmdline[3000], kvm_dev[256], full[8192];
    struct guest *g = calloc(1, sizeof *g);
    if (!g) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
    get_string_prop(env, argv[0], "name", g->name, sizeof g->name, "guest");
    if (!get_string_prop(env, argv[0], "kernel", kernel, sizeof kernel, NULL)) {
        free(g);
        napi_throw_type_error(env, NULL, "create: options.kernel (a multiboot image path) is required");
        return NULL;
    }
    get_string_prop(env, argv[0], "cmdline", cmdline, sizeof cmdline, "");
    get_string_prop(env, argv[0], "kvmDev", kvm_dev, sizeof kvm_dev, "/dev/kvm");
    uint32_t mem_mib = 32;
    napi_value v;
    napi_valuetype type = napi_undefined;
    if (napi_get_named_property(env, argv[0], "memMiB", &v) == napi_ok) napi_typeof(env, v, &type);
    if (type == napi_number) napi_get_value_uint32(env, v, &mem_mib);
    if (mem_mib < 2 || mem_mib > 3072) { free(g); napi_throw_range_error(env, NULL, "memMiB: want 2..3072"); return NULL; }

    g_guest_name = g->name;
    jmp_buf jb;
    g_on_die = &jb;
    if (setjmp(jb)) {
        g_on_die = NULL;
        vm_destroy(&g->vm);
        free(g);   /* fds opened before the failure leak; creation failures are rare and fatal to the guest */
        return throw_die(env);
    }
    vm_create(&g->vm, kvm_dev, (size_t)mem_mib << 20);
    vm_destroy(&g->vm);   /* in-process, nobody else needs the memfd: the mapping is enough */
    uint32_t entry = load_kernel(&g->vm, kernel);
    snprintf(full, sizeof full, "%s%s%s", kernel, cmdline[0] ? " " : "", cmdline);
    uint32_t mbi = write_multiboot_info(&g->vm, full);
    vm_enter_protected(&g->vm, entry, MULTIBOOT_BOOTLOADER_MAGIC, mbi);
    if (!g_slice_timer_made) {
        struct sigevent sev = { 0 };
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = g_kick_signal;
        sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        if (timer_create(CLOCK_MONOTONIC, &sev, &g_slice_timer) < 0) die("timer_create: %s", strerror(errno));
        if (timer_create(CLOCK_MONOTONIC, &sev, &g_peek_timer) < 0) die("timer_create: %s", strerror(errno));
        g_slice_timer_made = 1;
    }
    if (g_open_guests++ == 0) slice_timer(SLICE_NS);
    g_on_die = NULL;
    g->open = 1;
    napi_value handle;
    CHECK(napi_create_external(env, g, finalize_guest, NULL, &handle));
    return handle;
}

static void unmap_finalizer(napi_env env, void *data, void *hint) {
    (void)env;
    munmap(data, (size_t)(uintptr_t)hint);
}

/* memory(h) -> ArrayBuffer over guest RAM (guest-physical 0..size): the guest's DMA window. */
static napi_value js_memory(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], ab;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = arg_guest(env, argv[0]);
    if (!g) return NULL;
    CHECK(napi_create_external_arraybuffer(env, g->vm.mem, g->vm.mem_size, unmap_finalizer,
                                           (void *)(uintptr_t)g->vm.mem_size, &ab));
    return ab;
}

/* runPage(h) -> ArrayBuffer over the vCPU's kvm_run page: exit details and IN data. */
static napi_value js_run_page(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], ab;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = arg_guest(env, argv[0]);
    if (!g) return NULL;
    CHECK(napi_create_external_arraybuffer(env, g->vm.run, g->vm.run_size, unmap_finalizer,
                                           (void *)(uintptr_t)g->vm.run_size, &ab));
    return ab;
}

static void console_putc(struct guest *g, uint8_t c);
static void console_byte(void *ctx, uint8_t c) { console_putc(ctx, c); }

static void console_putc(struct guest *g, uint8_t c) {
    if (c == '\r') return;
    if (c != '\n') g->line[g->line_len++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
    if (c == '\n' || g->line_len == LINE_MAX_CHARS) { g->line[g->line_len] = 0; g->line_ready = 1; }
}


/* One KVM_RUN pass; returns a run_result, RUN_STOP + stop_reason, or -1 to keep going. */
static int one_exit(struct guest *g) {
    struct kvm_run *r = g->vm.run;
    g_current_run = r;
    int rc = ioctl(g->vm.vcpufd, KVM_RUN, 0);
    g_current_run = NULL;
    if (rc < 0) {
        if (errno != EINTR && errno != EAGAIN) die("KVM_RUN: %s", strerror(errno));
        return after_kick(g);
    }
    enum stop_reason why;
    switch (exit_dispatch(&g->vm, &g->counts, console_byte, g, &why)) {
    case EXIT_LOCAL:
        return g->line_ready ? RUN_LINE : -1;
    case EXIT_IO:
        return RUN_IO;
    case EXIT_MMIO:
        return RUN_MMIO;
    case EXIT_KICKED:
        return after_kick(g);
    case EXIT_STOP:
    default:
        return RUN_STOP + why;
    }
}

/* run(h, peek) -> RUN_* code. Local exits (0x80, 0xE9 without a full line) loop in C.
 * peek: the guest was sleeping; leave KVM_RUN after PEEK_NS if nothing wakes it. */
static napi_value js_run(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2], out;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = arg_guest(env, argv[0]);
    if (!g) return NULL;
    bool peek = false;
    if (argc > 1) napi_get_value_bool(env, argv[1], &peek);
    g_guest_name = g->name;
    if (g->line_ready) { g->line_len = 0; g->line_ready = 0; }   /* a line JS did not fetch */
    jmp_buf jb;
    g_on_die = &jb;
    if (setjmp(jb)) { g_on_die = NULL; if (peek) peek_timer(0); return throw_die(env); }
    if (peek) peek_timer(PEEK_NS);
    int res;
    while ((res = one_exit(g)) < 0) {}
    if (peek) peek_timer(0);
    g_on_die = NULL;
    CHECK(napi_create_int32(env, res, &out));
    return out;
}

/* line(h) -> the debug-port line that made run() return RUN_LINE. */
static napi_value js_line(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], out;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = arg_guest(env, argv[0]);
    if (!g) return NULL;
    CHECK(napi_create_string_utf8(env, g->line, g->line_len, &out));
    g->line_len = 0;
    g->line_ready = 0;
    return out;
}

/* irq(h, line, level): KVM_IRQ_LINE on the in-kernel PIC/IOAPIC. */
static napi_value js_irq(napi_env env, napi_callback_info info) {
    size_t argc = 3;
    napi_value argv[3];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = arg_guest(env, argv[0]);
    if (!g) return NULL;
    uint32_t line = 0;
    bool level = false;
    napi_get_value_uint32(env, argv[1], &line);
    napi_get_value_bool(env, argv[2], &level);
    jmp_buf jb;
    g_on_die = &jb;
    if (setjmp(jb)) { g_on_die = NULL; return throw_die(env); }
    vm_irq_line(&g->vm, line, level);
    g_on_die = NULL;
    return NULL;
}

static void set_u64(napi_env env, napi_value obj, const char *key, uint64_t v) {
    napi_value n;
    napi_create_double(env, (double)v, &n);
    napi_set_named_property(env, obj, key, n);
}

/* loopBusy() -> true when the event loop has work now: I/O completions (its epoll fd is
 * readable), expired timers or pending immediates. A guest loop then yields; otherwise it
 * keeps the thread, which keeps exits cheap. */
static napi_value js_loop_busy(napi_env env, napi_callback_info info) {
    (void)info;
    uv_loop_t *loop = NULL;
    napi_value out;
    int busy = 1;
    if (napi_get_uv_event_loop(env, (struct uv_loop_s **)&loop) == napi_ok && loop) {
        struct pollfd pf = { uv_backend_fd(loop), POLLIN, 0 };
        busy = uv_backend_timeout(loop) == 0 || poll(&pf, 1, 0) > 0;
    }
    CHECK(napi_get_boolean(env, busy, &out));
    return out;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], out;
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = NULL;
    CHECK(napi_get_value_external(env, argv[0], (void **)&g));
    CHECK(napi_create_object(env, &out));
    set_u64(env, out, "exits", g->counts.exits);
    set_u64(env, out, "io", g->counts.io);
    set_u64(env, out, "mmio", g->counts.mmio);
    set_u64(env, out, "local", g->counts.local);
    return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    struct guest *g = NULL;
    CHECK(napi_get_value_external(env, argv[0], (void **)&g));
    if (g && g->open) {
        g->open = 0;
        if (--g_open_guests == 0) slice_timer(0);
        close(g->vm.vcpufd);
        close(g->vm.vmfd);
        close(g->vm.kvm);
    }
    return NULL;
}

/* offsets() -> where JS finds exit details in the kvm_run page (linux/kvm.h layout). */
static napi_value js_offsets(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value out;
    CHECK(napi_create_object(env, &out));
#define OFF(key, field) set_u64(env, out, key, offsetof(struct kvm_run, field))
    OFF("exitReason", exit_reason);
    OFF("ioDirection", io.direction);
    OFF("ioSize", io.size);
    OFF("ioPort", io.port);
    OFF("ioCount", io.count);
    OFF("ioDataOffset", io.data_offset);
    OFF("mmioPhysAddr", mmio.phys_addr);
    OFF("mmioData", mmio.data);
    OFF("mmioLen", mmio.len);
    OFF("mmioIsWrite", mmio.is_write);
#undef OFF
    return out;
}

static napi_value init(napi_env env, napi_value exports) {
    g_kick_signal = SIGRTMIN + 4;   /* Node uses SIGUSR1 (inspector); real-time signals are free */
    struct sigaction sa = { 0 };
    sa.sa_handler = on_kick;
    sa.sa_flags = SA_RESTART;   /* other syscalls of this thread restart; KVM_RUN returns EINTR anyway */
    sigemptyset(&sa.sa_mask);
    if (sigaction(g_kick_signal, &sa, NULL) < 0) {
        napi_throw_error(env, NULL, "sigaction for the KVM kick signal failed");
        return NULL;
    }
    static const struct { const char *name; napi_callback fn; } fns[] = {
        { "create", js_create }, { "memory", js_memory }, { "runPage", js_run_page }, { "run", js_run },
        { "line", js_line }, { "irq", js_irq }, { "stats", js_stats }, { "close", js_close }, { "offsets", js_offsets },
        { "loopBusy", js_loop_busy },
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        napi_value f;
        CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
        CHECK(napi_set_named_property(env, exports, fns[i].name, f));
    }
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
