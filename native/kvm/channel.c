/* The peer side of the channel protocol (src/channel/PROTOCOL.md) for one KVM guest. */
#define _GNU_SOURCE
#include "msgpack.h"
#include "runner.h"
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FRAME (1024 * 1024)  /* PROTOCOL.md "Framing" */
#define SEND_BUF (MAX_FRAME + 4)

struct channel {
    int fd;
    struct vm *vm;
    void (*kick)(void);            /* makes the vCPU thread leave KVM_RUN */
    pthread_t reader;
    pthread_mutex_t wlock;         /* one frame on the wire at a time */
    pthread_mutex_t rlock;         /* one reader of the socket at a time (see channel_access) */
    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t cond;
    uint64_t next_id;
    int waiting, replied;
    uint64_t wait_id, rep_value;
    uint8_t *rep_data;             /* where a string read's bytes go */
    uint32_t rep_cap;
    int welcomed, closed;
    char why[256];
    uint8_t *rbuf, *vcpu_buf, *reader_buf;
};

/* The fields of a supervisor message this peer uses; absent ones stay zero. */
struct msg {
    const char *t, *e, *code, *text, *reason, *dev;
    uint32_t tlen, elen, codelen, textlen, reasonlen, devlen, blen;
    uint64_t id, v, line, level, a, n;
    const uint8_t *b;
};

static void write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) { struct pollfd pf = { fd, POLLOUT, 0 }; poll(&pf, 1, -1); continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;   /* the reader thread sees the hang-up and closes the channel */
        p += w;
        n -= (size_t)w;
    }
}

/* 0 on success, -1 on EOF or error. */
static int read_all(int fd, uint8_t *p, size_t n) {
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static struct mp_w frame_begin(uint8_t *buf) { return (struct mp_w){ buf + 4, buf + 4 + MAX_FRAME, 0 }; }

static void frame_send(struct channel *ch, struct mp_w *o, uint8_t *buf) {
    if (o->overflow) die("channel: frame larger than %d bytes", MAX_FRAME);
    uint8_t *b = buf;
    uint32_t n = (uint32_t)(o->p - (buf + 4));
    b[0] = (uint8_t)n; b[1] = (uint8_t)(n >> 8); b[2] = (uint8_t)(n >> 16); b[3] = (uint8_t)(n >> 24);
    pthread_mutex_lock(&ch->wlock);
    write_all(ch->fd, b, n + 4);
    pthread_mutex_unlock(&ch->wlock);
}

static void mark_closed(struct channel *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mark_closed(struct channel *ch, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&ch->lock);
    if (!ch->closed) {
        va_start(ap, fmt);
        vsnprintf(ch->why, sizeof ch->why, fmt, ap);
        va_end(ap);
        ch->closed = 1;
    }
    pthread_cond_broadcast(&ch->cond);
    pthread_mutex_unlock(&ch->lock);
    ch->kick();
}

static int parse(const uint8_t *p, uint32_t len, struct msg *m) {
    struct mp_r in = { p, p + len };
    uint32_t n;
    memset(m, 0, sizeof *m);
    if (mp_read_map(&in, &n)) return -1;
    while (n--) {
        const char *k;
        uint32_t kl;
        if (mp_read_str(&in, &k, &kl)) return -1;
        int r;
#define STR(name, field) else if (mp_str_is(k, kl, name)) r = mp_read_str(&in, &m->field, &m->field##len)
#define UINT(name, field) else if (mp_str_is(k, kl, name)) r = mp_read_uint(&in, &m->field)
        if (0) r = 0;
        STR("t", t); STR("e", e); STR("code", code); STR("msg", text); STR("reason", reason); STR("dev", dev);
        UINT("id", id); UINT("v", v); UINT("line", line); UINT("level", level); UINT("a", a); UINT("n", n);
        else if (mp_str_is(k, kl, "b")) r = mp_read_bin(&in, &m->b, &m->blen);
        else r = mp_skip(&in);
#undef STR
#undef UINT
        if (r) return -1;
    }
    return m->t ? 0 : -1;
}

static void on_rep(struct channel *ch, const struct msg *m) {
    pthread_mutex_lock(&ch->lock);
    if (!ch->waiting || m->id != ch->wait_id) {
        pthread_mutex_unlock(&ch->lock);
        note("channel: rep for id %llu that nobody waits for (ignored)", (unsigned long long)m->id);
        return;
    }
    ch->rep_value = m->v;
    if (ch->rep_data) {
        uint32_t n = m->blen < ch->rep_cap ? m->blen : ch->rep_cap;
        if (m->b) memcpy(ch->rep_data, m->b, n);
        memset(ch->rep_data + n, 0xff, ch->rep_cap - n);   /* a short answer reads as all-ones */
    }
    if (m->e) note("access refused: %.*s", (int)m->elen, m->e);
    ch->replied = 1;
    pthread_cond_broadcast(&ch->cond);
    pthread_mutex_unlock(&ch->lock);
}

/* dmar/dmaw: the supervisor reaches guest memory through messages (when the hello offered no dma.fd). */
static void on_dma(struct channel *ch, const struct msg *m, int write) {
    struct mp_w o = frame_begin(ch->reader_buf);
    uint64_t len = write ? m->blen : m->n;
    int inside = m->a <= ch->vm->mem_size && len <= ch->vm->mem_size - m->a && len <= MAX_FRAME - 64;
    mp_map(&o, inside && write ? 2 : 3);
    mp_str(&o, "t"); mp_str(&o, write ? "dmak" : "dmad");
    mp_str(&o, "id"); mp_uint(&o, m->id);
    if (!inside) {
        mp_str(&o, "e"); mp_str(&o, "outside guest memory");
    } else if (write) {
        memcpy(ch->vm->mem + m->a, m->b, m->blen);
    } else {
        mp_str(&o, "b"); mp_bin(&o, ch->vm->mem + m->a, (uint32_t)m->n);
    }
    frame_send(ch, &o, ch->reader_buf);
}

/* Reads and handles one frame; -1 once the channel is closed. Called with rlock held. */
static int read_one(struct channel *ch) {
    uint8_t hdr[4];
    if (read_all(ch->fd, hdr, 4)) { mark_closed(ch, "supervisor hung up"); return -1; }
    uint32_t len = hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (len == 0 || len > MAX_FRAME) { mark_closed(ch, "protocol error: frame of %u bytes", len); return -1; }
    if (read_all(ch->fd, ch->rbuf, len)) { mark_closed(ch, "supervisor hung up mid-frame"); return -1; }
    struct msg m;
    if (parse(ch->rbuf, len, &m)) { mark_closed(ch, "protocol error: malformed frame"); return -1; }
    if (mp_str_is(m.t, m.tlen, "rep")) on_rep(ch, &m);
    else if (mp_str_is(m.t, m.tlen, "irq")) vm_irq_line(ch->vm, (uint32_t)m.line, m.level != 0);
    else if (mp_str_is(m.t, m.tlen, "dmar")) on_dma(ch, &m, 0);
    else if (mp_str_is(m.t, m.tlen, "dmaw")) on_dma(ch, &m, 1);
    else if (mp_str_is(m.t, m.tlen, "reset")) note("device %.*s was reset: %.*s", (int)m.devlen, m.dev, (int)m.reasonlen, m.reason);
    else if (mp_str_is(m.t, m.tlen, "welcome")) {
        pthread_mutex_lock(&ch->lock);
        ch->welcomed = 1;
        pthread_cond_broadcast(&ch->cond);
        pthread_mutex_unlock(&ch->lock);
    } else if (mp_str_is(m.t, m.tlen, "err")) {
        mark_closed(ch, "supervisor error %.*s: %.*s", (int)m.codelen, m.code, (int)m.textlen, m.text);
        return -1;
    } else if (mp_str_is(m.t, m.tlen, "bye")) {
        mark_closed(ch, "supervisor said bye%s%.*s", m.reason ? ": " : "", (int)m.reasonlen, m.reason ? m.reason : "");
        return -1;
    } else note("channel: unknown message type %.*s (ignored)", (int)m.tlen, m.t);
    return 0;
}

/* Handles what arrives while the vCPU runs (irq, dma, reset, bye). While the vCPU thread
 * waits for a reply it reads the socket itself, so this thread only reads when it can
 * take rlock and data is still there. */
static void *reader_main(void *arg) {
    struct channel *ch = arg;
    for (;;) {
        struct pollfd pf = { ch->fd, POLLIN, 0 };
        if (poll(&pf, 1, -1) < 0 && errno != EINTR) { mark_closed(ch, "channel poll: %s", strerror(errno)); break; }
        pthread_mutex_lock(&ch->rlock);
        pf.revents = 0;
        int ready = poll(&pf, 1, 0) > 0;
        int r = ready ? read_one(ch) : 0;
        pthread_mutex_unlock(&ch->rlock);
        if (r < 0 || channel_closed(ch, NULL)) break;
    }
    return NULL;
}

/* addr: "unix:PATH", "tcp:HOST:PORT", or a plain socket path. */
static int dial(const char *addr) {
    if (strncmp(addr, "tcp:", 4) == 0) {
        char host[256];
        const char *colon = strrchr(addr + 4, ':');
        if (!colon || (size_t)(colon - addr - 4) >= sizeof host) die("channel address %s: want tcp:HOST:PORT", addr);
        memcpy(host, addr + 4, (size_t)(colon - addr - 4));
        host[colon - addr - 4] = 0;
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
        int r = getaddrinfo(host, colon + 1, &hints, &res);
        if (r) die("channel address %s: %s", addr, gai_strerror(r));
        int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) die("channel connect %s: %s", addr, strerror(errno));
        freeaddrinfo(res);
        return fd;
    }
    const char *path = strncmp(addr, "unix:", 5) == 0 ? addr + 5 : addr;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) die("channel socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("channel socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("channel connect %s: %s", path, strerror(errno));
    return fd;
}

struct channel *channel_connect(const char *addr, struct vm *vm, void (*kick)(void)) {
    struct channel *ch = calloc(1, sizeof *ch);
    if (!ch) die("channel: out of memory");
    ch->fd = dial(addr);
    ch->vm = vm;
    ch->kick = kick;
    ch->next_id = 1;
    ch->rbuf = malloc(MAX_FRAME);
    ch->vcpu_buf = malloc(SEND_BUF);
    ch->reader_buf = malloc(SEND_BUF);
    if (!ch->rbuf || !ch->vcpu_buf || !ch->reader_buf) die("channel: out of memory");
    pthread_mutex_init(&ch->wlock, NULL);
    pthread_mutex_init(&ch->rlock, NULL);
    pthread_mutex_init(&ch->lock, NULL);
    pthread_cond_init(&ch->cond, NULL);
    /* The kick signal is for the vCPU thread; the reader must never take it. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int r = pthread_create(&ch->reader, NULL, reader_main, ch);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) die("channel: pthread_create: %s", strerror(r));
    return ch;
}

void channel_hello(struct channel *ch, const char *guest, int with_dma, const char *token) {
    static const char *caps[] = { "pio", "mmio", "irq", "dma", "string" };
    struct mp_w o = frame_begin(ch->vcpu_buf);
    int tok = token && *token;
    mp_map(&o, 4 + (with_dma ? 1 : 0) + (tok ? 1 : 0));
    mp_str(&o, "t"); mp_str(&o, "hello");
    mp_str(&o, "v"); mp_uint(&o, 1);
    mp_str(&o, "guest"); mp_str(&o, guest);
    mp_str(&o, "caps"); mp_arr(&o, 5);
    for (int i = 0; i < 5; i++) mp_str(&o, caps[i]);
    if (tok) { mp_str(&o, "token"); mp_str(&o, token); }
    if (with_dma) {
        mp_str(&o, "dma"); mp_map(&o, 3);
        mp_str(&o, "fd"); mp_uint(&o, (uint64_t)ch->vm->mem_fd);
        mp_str(&o, "base"); mp_uint(&o, 0);
        mp_str(&o, "size"); mp_uint(&o, ch->vm->mem_size);
    }
    frame_send(ch, &o, ch->vcpu_buf);
    pthread_mutex_lock(&ch->lock);
    while (!ch->welcomed && !ch->closed) pthread_cond_wait(&ch->cond, &ch->lock);
    int ok = ch->welcomed;
    pthread_mutex_unlock(&ch->lock);
    if (!ok) die_code(STOP_DISCONNECTED, "hello refused: %s", ch->why);
}

int channel_access(struct channel *ch, struct access *acc, uint64_t *value) {
    int string = acc->count > 1;
    pthread_mutex_lock(&ch->lock);
    if (ch->closed) { pthread_mutex_unlock(&ch->lock); return -1; }
    uint64_t id = ch->wait_id = ch->next_id++;
    ch->waiting = 1;
    ch->replied = 0;
    ch->rep_data = !acc->write && string ? acc->data : NULL;
    ch->rep_cap = acc->count * acc->size;
    pthread_mutex_unlock(&ch->lock);

    struct mp_w o = frame_begin(ch->vcpu_buf);
    mp_map(&o, 6 + (string ? 1 : 0) + (acc->write ? 1 : 0));
    mp_str(&o, "t"); mp_str(&o, "acc");
    mp_str(&o, "id"); mp_uint(&o, id);
    mp_str(&o, "sp"); mp_str(&o, acc->space);
    mp_str(&o, "a"); mp_uint(&o, acc->addr);
    mp_str(&o, "s"); mp_uint(&o, acc->size);
    mp_str(&o, "d"); mp_str(&o, acc->write ? "w" : "r");
    if (string) { mp_str(&o, "n"); mp_uint(&o, acc->count); }
    if (acc->write && string) { mp_str(&o, "b"); mp_bin(&o, acc->data, acc->count * acc->size); }
    else if (acc->write) { mp_str(&o, "v"); mp_uint(&o, acc->value); }
    frame_send(ch, &o, ch->vcpu_buf);

    /* Read the reply on this thread: a hand-off from the reader thread would add a wakeup
     * to every exit. Frames that come first (irq, dma) are handled on the way. */
    pthread_mutex_lock(&ch->rlock);
    for (;;) {
        pthread_mutex_lock(&ch->lock);
        int done = ch->replied || ch->closed;
        pthread_mutex_unlock(&ch->lock);
        if (done || read_one(ch) < 0) break;
    }
    pthread_mutex_unlock(&ch->rlock);
    pthread_mutex_lock(&ch->lock);
    int ok = ch->replied;
    ch->waiting = 0;
    *value = ch->rep_value;
    pthread_mutex_unlock(&ch->lock);
    return ok ? 0 : -1;
}

int channel_closed(struct channel *ch, const char **why) {
    pthread_mutex_lock(&ch->lock);
    int closed = ch->closed;
    pthread_mutex_unlock(&ch->lock);
    if (closed && why) *why = ch->why;
    return closed;
}

void channel_bye(struct channel *ch, const char *reason) {
    if (channel_closed(ch, NULL)) return;
    struct mp_w o = frame_begin(ch->vcpu_buf);
    mp_map(&o, 2);
    mp_str(&o, "t"); mp_str(&o, "bye");
    mp_str(&o, "reason"); mp_str(&o, reason);
    frame_send(ch, &o, ch->vcpu_buf);
    shutdown(ch->fd, SHUT_WR);
}
