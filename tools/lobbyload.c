/*
 * lobbyload: the lobby's load client, one process on epoll with non-blocking sockets, so that tens of
 * thousands of WebSockets cost one core at most and the figures are the server's, not the client's.
 *
 *   lobbyload burst|sustained --url ws://127.0.0.1:PORT/ws --cookies FILE -n N [options]
 *
 * --url may be given up to 8 times, for the nodes of one forum: connection i goes to the (i mod n)-th.
 *
 * It opens N WebSockets (cookie lines of FILE round-robin; each connection binds 127.0.0.K, K =
 * 1..--sources, so that ephemeral ports do not run out), counts one as up once its hello has arrived,
 * waits until the presence frames of the arrivals stop (--settle seconds without a frame), then:
 *
 *   burst      --rounds R times: one room.send to the lobby (room 1) from a connection of a user who
 *              has not sent yet (room messages are rate-limited per user), and the time from just
 *              before that send() until every open connection has the room.message (the last
 *              delivery) and until the first has it; --gap ms between rounds. --stepped: a round
 *              starts when a line arrives on stdin (the connections are served meanwhile); "ready" on
 *              stdout says it waits for one, "done ROUND LAST_MS FIRST_MS FRAME_PAYLOAD" that a round is
 *              over; the end of stdin ends the rounds. Two clients stepped in turn, one on forumd and
 *              one on the floor, see the same noise from the rest of the machine.
 *   sustained  --rate M messages a second for --duration seconds, --batch B messages every B/M
 *              seconds, in one write from one user (B > 1: frames that reach the server in one read, so
 *              in one loop turn, to see whether they leave in one write per connection; room messages
 *              are rate-limited per user: B at most the burst, 10 by default). Batches go round the
 *              distinct users. Every connection must receive every message exactly once and in
 *              the order of the server's ids; the tool counts what is missing, doubled and out of
 *              order, and the latency of every delivery (send to arrival).
 *
 * The send time travels in the body ("lb SEQ NANOSECONDS ..."), which every copy carries.
 * --floor: the peer is tools/wsfloor (the kernel's floor), not forumd. Then what is sent is already
 * a room.message frame's payload, padded to --frame-payload bytes (the size forumd's frame had), and
 * the floor writes it back to every connection as it is; everything else is measured the same way.
 * --server-pid: the server's CPU time and its write system calls (/proc/PID/io syscw) during the
 * measured phase, for the writes per connection per turn.
 *
 * Prints one JSON line on stdout. Exit status: 0 when everything verified, 1 when not, 2 on usage
 * errors, 3 when --timeout struck.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { MODE_BURST, MODE_SUSTAINED };

static struct {
    enum mode mode;
    const char *url, *cookies_path;
    long connections;
    int sources, concurrency, rounds, batch, floor, frame_payload, server_pid, room, verbose, stepped;
    double gap_ms, rate, duration, drain, settle, timeout;
} opt = {.connections = -1, .sources = 16, .concurrency = 256, .rounds = 30, .batch = 1, .frame_payload = 0, .room = 1,
         .gap_ms = 200, .rate = 20, .duration = 30, .drain = 10, .settle = 0.5, .timeout = 900};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t t_start;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------------------------------------------ */
/* a log-linear histogram of nanoseconds (about 1.6% per step), as in wsload */

enum { H_DIRECT = 128, H_SUB = 64, H_BUCKETS = H_DIRECT + 57 * H_SUB };

typedef struct {
    uint64_t bucket[H_BUCKETS];
    uint64_t count, max;
    double sum;
} hist_t;

static size_t h_index(uint64_t v)
{
    if (v < H_DIRECT)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v), shift = msb - 6;
    return H_DIRECT + (size_t)(shift - 1) * H_SUB + (size_t)((v >> shift) - H_SUB);
}

static uint64_t h_lower(size_t i)
{
    if (i < H_DIRECT)
        return i;
    size_t k = i - H_DIRECT;
    return (uint64_t)(k % H_SUB + H_SUB) << ((int)(k / H_SUB) + 1);
}

static void h_add(hist_t *h, uint64_t v)
{
    h->bucket[h_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

static double h_quantile_ms(const hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.999999), seen = 0;
    if (want < 1)
        want = 1;
    for (size_t i = 0; i != H_BUCKETS; ++i) {
        seen += h->bucket[i];
        if (seen >= want) {
            uint64_t lo = h_lower(i), hi = i + 1 < H_BUCKETS ? h_lower(i + 1) : lo, mid = lo + (hi - lo) / 2;
            return (double)(mid > h->max ? h->max : mid) / 1e6;
        }
    }
    return (double)h->max / 1e6;
}

static void h_print(FILE *f, const char *name, const hist_t *h)
{
    fprintf(f, "\"%s\":{\"count\":%llu,\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p95_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}", name,
            (unsigned long long)h->count, h->count ? h->sum / (double)h->count / 1e6 : 0.0, h_quantile_ms(h, 0.50),
            h_quantile_ms(h, 0.95), h_quantile_ms(h, 0.99), (double)h->max / 1e6);
}

/* ------------------------------------------------------------------------------------------------ */
/* connections */

enum conn_state { C_CONNECTING, C_UPGRADE, C_OPEN, C_CLOSED };

typedef struct conn {
    int fd;
    enum conn_state state;
    int want_out; /* EPOLLOUT is armed */
    int corked;   /* frames gather in out until flush_out: several in one segment */
    const char *cookie;
    char key[32];
    char *hs; /* the upgrade request, then the response head */
    size_t hs_len, hs_off;
    uint8_t *in; /* the unparsed tail of what was read: a frame cut in two */
    size_t in_len, in_cap;
    uint8_t *out; /* what a send could not write at once */
    size_t out_len;
    int64_t user_id;
    int got_hello;
    /* burst */
    int last_round; /* the newest round it has the message of, -1 none */
    /* sustained */
    uint8_t *seen; /* one bit per sequence number */
    uint64_t distinct, dups;
    int64_t last_id;
} conn_t;

static int ep;
static conn_t *conns;
static long num_conns, next_to_open, num_opening, num_up, num_failed, num_dropped;
/* --url may be given up to MAX_URLS times (several nodes of one forum): connection i goes to the (i mod n)-th */
enum { MAX_URLS = 8 };
static struct sockaddr_in targets[MAX_URLS];
static char host_headers[MAX_URLS][96], ws_path[256];
static int num_targets;
static char **cookies;
static size_t num_cookies;
static long frames_in, msg_frames, error_frames, unparsable, foreign;
static long reads_with_msgs; /* reads that carried at least one room.message */
static int printed;
static uint64_t last_frame_ns;
static int msg_payload_len; /* the size of a room.message payload seen on a connection that did not send it */
static int64_t *senders; /* one connection index per distinct user, in the order their hellos came */
static long num_senders;

static void fail(conn_t *c, const char *why);
static void on_text(conn_t *c, const uint8_t *p, size_t len, int *msgs_in_read);

static void arm(conn_t *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u64 = (uint64_t)(c - conns)};
    if (out != c->want_out) {
        c->want_out = out;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void close_conn(conn_t *c)
{
    if (c->state == C_CLOSED)
        return;
    /* a reset leaves no TIME_WAIT behind to take ports from the next run */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    free(c->hs);
    free(c->in);
    free(c->out);
    c->hs = NULL;
    c->in = c->out = NULL;
}

static void open_more(void);

static void fail(conn_t *c, const char *why)
{
    if (c->state == C_CLOSED)
        return;
    if (c->got_hello) {
        ++num_dropped;
        --num_up;
    } else {
        ++num_failed;
        --num_opening;
    }
    if (opt.verbose || printed < 5) {
        ++printed;
        fprintf(stderr, "lobbyload: connection %ld: %s\n", (long)(c - conns), why);
    }
    close_conn(c);
}

/* Writes what it can now and keeps the rest for EPOLLOUT. */
static void conn_write(conn_t *c, const void *buf, size_t len)
{
    if (c->out_len == 0 && !c->corked) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            fail(c, "send failed");
            return;
        }
        if (n > 0) {
            buf = (const uint8_t *)buf + n;
            len -= (size_t)n;
        }
    }
    if (len == 0)
        return;
    c->out = realloc(c->out, c->out_len + len);
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    if (!c->corked)
        arm(c, 1);
}

static void flush_out(conn_t *c)
{
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            fail(c, "send failed");
        return;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    arm(c, c->out_len != 0);
}

/* A client frame: masked, as RFC 6455 wants from a client. */
static void send_frame(conn_t *c, unsigned opcode, const void *payload, size_t len)
{
    uint8_t *f = malloc(len + 14), *p = f;
    uint32_t mask = (uint32_t)rnd();
    *p++ = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        *p++ = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (uint8_t)(len >> 8);
        *p++ = (uint8_t)len;
    } else {
        *p++ = 0x80 | 127;
        for (int i = 7; i >= 0; --i)
            *p++ = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(p, &mask, 4);
    const uint8_t *m = p, *src = payload;
    p += 4;
    for (size_t i = 0; i != len; ++i)
        p[i] = src[i] ^ m[i & 3];
    conn_write(c, f, (size_t)(p - f) + len);
    free(f);
}

static void start_conn(conn_t *c)
{
    int one = 1;
    struct sockaddr_in src = {.sin_family = AF_INET};
    ++num_opening;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->last_round = -1;
    if (c->fd < 0) {
        c->state = C_CLOSED;
        ++num_failed;
        --num_opening;
        if (printed++ < 5)
            fprintf(stderr, "lobbyload: socket: %s\n", strerror(errno));
        return;
    }
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    src.sin_addr.s_addr = htonl(0x7F000001u + (uint32_t)((c - conns) % opt.sources));
    c->state = C_CONNECTING;
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(c->fd, (struct sockaddr *)&targets[(c - conns) % num_targets], sizeof(targets[0])) != 0 && errno != EINPROGRESS)) {
        fail(c, strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u64 = (uint64_t)(c - conns)};
    c->want_out = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void open_more(void)
{
    while (next_to_open < num_conns && num_opening < opt.concurrency)
        start_conn(&conns[next_to_open++]);
}

static void begin_upgrade(conn_t *c)
{
    uint8_t raw[16];
    for (int i = 0; i != 16; ++i)
        raw[i] = (uint8_t)rnd();
    EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw));
    c->hs = malloc(8192);
    c->hs_len = (size_t)snprintf(c->hs, 8192,
                                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                 "Sec-WebSocket-Version: 13\r\nCookie: %s\r\nUser-Agent: lobbyload\r\n\r\n",
                                 ws_path, host_headers[(c - conns) % num_targets], c->key, c->cookie);
    c->state = C_UPGRADE;
    conn_write(c, c->hs, c->hs_len);
    c->hs_len = 0; /* the buffer now gathers the response head */
}

static int accept_ok(conn_t *c, const char *head, size_t len)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char cat[128], expect[64];
    uint8_t digest[SHA_DIGEST_LENGTH];
    if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0)
        return 0;
    snprintf(cat, sizeof(cat), "%s%s", c->key, guid);
    SHA1((const uint8_t *)cat, strlen(cat), digest);
    EVP_EncodeBlock((unsigned char *)expect, digest, sizeof(digest));
    const char *v = memmem(head, len, "Sec-WebSocket-Accept: ", 22);
    if (v == NULL)
        v = memmem(head, len, "sec-websocket-accept: ", 22);
    return v != NULL && strncmp(v + 22, expect, strlen(expect)) == 0;
}

/* Parses the frames in buf (server frames are not masked); keeps an incomplete tail. */
static void parse_frames(conn_t *c, const uint8_t *buf, size_t len)
{
    int msgs = 0;
    const uint8_t *p = buf, *end = buf + len;
    if (c->in_len != 0) {
        if (c->in_len + len > c->in_cap) {
            c->in_cap = c->in_len + len;
            c->in = realloc(c->in, c->in_cap);
        }
        memcpy(c->in + c->in_len, buf, len);
        c->in_len += len;
        p = c->in;
        end = c->in + c->in_len;
    }
    while (end - p >= 2 && c->state == C_OPEN) {
        unsigned opcode = p[0] & 0x0f, fin = p[0] & 0x80;
        size_t hl = 2;
        uint64_t plen = p[1] & 0x7f;
        if (p[1] & 0x80) {
            fail(c, "a masked frame from the server");
            return;
        }
        if (plen == 126) {
            if (end - p < 4)
                break;
            plen = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (plen == 127) {
            if (end - p < 10)
                break;
            plen = 0;
            for (int i = 0; i != 8; ++i)
                plen = plen << 8 | p[2 + i];
            hl = 10;
        }
        if ((uint64_t)(end - p) < hl + plen)
            break;
        const uint8_t *payload = p + hl;
        p += hl + plen;
        if (!fin) {
            fail(c, "a fragmented frame");
            return;
        }
        ++frames_in;
        last_frame_ns = now_ns();
        if (opcode == 1)
            on_text(c, payload, (size_t)plen, &msgs);
        else if (opcode == 9)
            send_frame(c, 10, payload, (size_t)plen);
        else if (opcode == 8) {
            fail(c, "closed by the server");
            return;
        }
    }
    if (c->state != C_OPEN)
        return;
    if (msgs > 0)
        ++reads_with_msgs;
    size_t rest = (size_t)(end - p);
    if (c->in_len != 0) {
        memmove(c->in, p, rest);
        c->in_len = rest;
    } else if (rest != 0) {
        if (rest > c->in_cap) {
            c->in_cap = rest < 4096 ? 4096 : rest;
            c->in = realloc(c->in, c->in_cap);
        }
        memcpy(c->in, p, rest);
        c->in_len = rest;
    }
}

static uint8_t rbuf[1 << 18];

static void on_readable(conn_t *c)
{
    if (c->state == C_UPGRADE) {
        ssize_t n = recv(c->fd, c->hs + c->hs_len, 8191 - c->hs_len, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            fail(c, "the server closed during the upgrade");
            return;
        }
        c->hs_len += (size_t)n;
        c->hs[c->hs_len] = '\0';
        char *e = strstr(c->hs, "\r\n\r\n");
        if (e == NULL) {
            if (c->hs_len >= 8191)
                fail(c, "response head too long");
            return;
        }
        size_t head = (size_t)(e + 4 - c->hs);
        if (!accept_ok(c, c->hs, head)) {
            char line[128];
            snprintf(line, sizeof(line), "upgrade refused: %.*s", (int)strcspn(c->hs, "\r\n") % 100, c->hs);
            fail(c, line);
            return;
        }
        c->state = C_OPEN;
        size_t rest = c->hs_len - head;
        uint8_t first[8192];
        memcpy(first, c->hs + head, rest);
        free(c->hs);
        c->hs = NULL;
        if (rest != 0)
            parse_frames(c, first, rest);
        return;
    }
    ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        fail(c, n == 0 ? "the server ended the connection" : strerror(errno));
        return;
    }
    parse_frames(c, rbuf, (size_t)n);
}

static void on_event(conn_t *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            fail(c, strerror(err));
            return;
        }
        arm(c, 0);
        begin_upgrade(c);
        return;
    }
    if ((events & EPOLLOUT) && c->out_len != 0)
        flush_out(c);
    if (c->state != C_CLOSED && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        on_readable(c);
}

/* ------------------------------------------------------------------------------------------------ */
/* frames: the server's are scanned by hand; the bodies this tool sends contain no quotes */

static int read_int(const uint8_t *p, const uint8_t *end, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const uint8_t *v = memmem(p, (size_t)(end - p), key, kl);
    if (v == NULL)
        return 0;
    v += kl;
    int neg = v < end && *v == '-';
    int64_t x = 0;
    const uint8_t *d = v + neg;
    while (d < end && *d >= '0' && *d <= '9')
        x = x * 10 + (*d++ - '0');
    if (d == v + neg)
        return 0;
    *out = neg ? -x : x;
    return 1;
}

static void on_message(conn_t *c, const uint8_t *p, size_t len, const uint8_t *body);

static void on_text(conn_t *c, const uint8_t *p, size_t len, int *msgs_in_read)
{
    static const char prefix[] = "{\"type\":\"";
    const uint8_t *end = p + len;
    if (len < sizeof(prefix) + 4 || memcmp(p, prefix, sizeof(prefix) - 1) != 0) {
        ++unparsable;
        return;
    }
    const uint8_t *t = p + sizeof(prefix) - 1;
    if (memcmp(t, "room.message\"", 13) == 0) {
        const uint8_t *body = memmem(t, (size_t)(end - t), "\"body\":\"lb ", 11);
        if (body == NULL) {
            ++foreign;
            return;
        }
        ++msg_frames;
        ++*msgs_in_read;
        on_message(c, p, len, body + 11);
    } else if (memcmp(t, "hello\"", 6) == 0) {
        const uint8_t *u = memmem(t, (size_t)(end - t), "\"user\":", 7);
        int64_t id;
        if (u == NULL || !read_int(u, end, "\"id\":", &id) || c->got_hello) {
            ++unparsable;
            return;
        }
        c->user_id = id;
        c->got_hello = 1;
        --num_opening;
        ++num_up;
        /* the first connection of each user may send: room messages are rate-limited per user */
        long i = 0;
        while (i != num_senders && conns[senders[i]].user_id != id)
            ++i;
        if (i == num_senders && num_senders < 100000)
            senders[num_senders++] = c - conns;
        open_more();
    } else if (memcmp(t, "error\"", 6) == 0) {
        ++error_frames;
        if (printed++ < 5)
            fprintf(stderr, "lobbyload: error frame on connection %ld: %.*s\n", (long)(c - conns), (int)(len < 300 ? len : 300), p);
    }
    /* presence, typing and the rest: counted in frames_in only */
}

/* ------------------------------------------------------------------------------------------------ */
/* the server's CPU time and write system calls, from /proc */

static long long proc_cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* write(2), writev(2), send*(2) calls of every thread of the process so far */
static long long proc_syscw(int pid)
{
    char path[64], line[128];
    long long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/io", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "syscw: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

static long long ticks0, syscw0, syscw1;
static uint64_t measure_t0;
static double server_cpu_pct = -1, self_cpu_pct;
static struct rusage self0;

static void measure_begin(void)
{
    measure_t0 = now_ns();
    getrusage(RUSAGE_SELF, &self0);
    if (opt.server_pid > 0) {
        ticks0 = proc_cpu_ticks(opt.server_pid);
        syscw0 = proc_syscw(opt.server_pid);
    }
}

static void measure_end(void)
{
    struct rusage u;
    double wall = (double)(now_ns() - measure_t0) / 1e9;
    getrusage(RUSAGE_SELF, &u);
    double cpu = (double)(u.ru_utime.tv_sec - self0.ru_utime.tv_sec) + (double)(u.ru_utime.tv_usec - self0.ru_utime.tv_usec) / 1e6 +
                 (double)(u.ru_stime.tv_sec - self0.ru_stime.tv_sec) + (double)(u.ru_stime.tv_usec - self0.ru_stime.tv_usec) / 1e6;
    self_cpu_pct = wall > 0 ? 100 * cpu / wall : 0;
    if (opt.server_pid > 0) {
        long long t1 = proc_cpu_ticks(opt.server_pid);
        syscw1 = proc_syscw(opt.server_pid);
        if (t1 >= 0 && ticks0 >= 0 && wall > 0)
            server_cpu_pct = 100.0 * (double)(t1 - ticks0) / (double)sysconf(_SC_CLK_TCK) / wall;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* sending a lobby message: room.send to forumd, or the ready room.message payload to the floor */

static long sent_total;

static void send_lobby(conn_t *c, long seq, uint64_t t_ns)
{
    char buf[8192];
    int n;
    if (opt.floor) {
        n = snprintf(buf, sizeof(buf), "{\"type\":\"room.message\",\"message\":{\"id\":%ld,\"room\":%d,\"body\":\"lb %ld %llu ", seq + 1,
                     opt.room, seq, (unsigned long long)t_ns);
        int tail = 3; /* "}} */
        while (n < opt.frame_payload - tail && n < (int)sizeof(buf) - 8)
            buf[n++] = 'x';
        memcpy(buf + n, "\"}}", 3);
        n += 3;
    } else {
        /* client_id: unique across runs too, or a repeated one would be taken for a retry and not delivered again */
        n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"room.send\",\"room\":%d,\"client_id\":\"lb-%llx-%ld\",\"body\":\"lb %ld %llu one to everyone online\"}",
                     opt.room, (unsigned long long)t_start, seq, seq, (unsigned long long)t_ns);
    }
    send_frame(c, 1, buf, (size_t)n);
    ++sent_total;
}

/* ------------------------------------------------------------------------------------------------ */
/* burst */

typedef struct {
    uint64_t t0, first, last;
    long seen;
    int complete;
} round_t;

static round_t *rounds;
static int cur = -1, rounds_complete;
static long round_dups, round_stale;
static hist_t last_hist, first_hist;

/* ------------------------------------------------------------------------------------------------ */
/* sustained */

static uint64_t *t_sent; /* by sequence number */
static long planned, seq_next;
static hist_t lat_hist;
static long out_of_order, dups_total, beyond;

static void on_message(conn_t *c, const uint8_t *p, size_t len, const uint8_t *body)
{
    uint64_t now = now_ns();
    const uint8_t *end = p + len;
    char *stop;
    long seq = strtol((const char *)body, &stop, 10);
    if ((const uint8_t *)stop == body || stop[0] != ' ') {
        ++unparsable;
        return;
    }
    if (opt.mode == MODE_BURST) {
        if (seq != cur || cur < 0) {
            ++round_stale;
            return;
        }
        if (c->last_round == cur) {
            ++round_dups;
            return;
        }
        /* the size of the frame everyone else gets (the sender's copy carries its client_id) */
        if (msg_payload_len == 0 && memmem(p, len, "\"client_id\"", 11) == NULL)
            msg_payload_len = (int)len;
        c->last_round = cur;
        round_t *r = &rounds[cur];
        if (r->seen++ == 0)
            r->first = now;
        r->last = now;
        return;
    }
    if (seq < 0 || seq >= planned) {
        ++beyond;
        return;
    }
    int64_t id;
    const uint8_t *m = memmem(p, len, "\"message\":{", 11);
    if (m == NULL || !read_int(m, end, "\"id\":", &id)) {
        ++unparsable;
        return;
    }
    if (msg_payload_len == 0 && memmem(p, len, "\"client_id\"", 11) == NULL)
        msg_payload_len = (int)len;
    if (c->seen == NULL)
        c->seen = calloc((size_t)planned / 8 + 1, 1);
    if (c->seen[seq / 8] & (1u << (seq % 8))) {
        ++c->dups;
        ++dups_total;
        return;
    }
    c->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
    ++c->distinct;
    if (id <= c->last_id)
        ++out_of_order;
    c->last_id = id;
    h_add(&lat_hist, now - t_sent[seq]);
}

/* ------------------------------------------------------------------------------------------------ */
/* setup */

static int parse_url(const char *url)
{
    if (strncmp(url, "ws://", 5) != 0 || num_targets == MAX_URLS)
        return -1;
    struct sockaddr_in *target = &targets[num_targets];
    char *host_header = host_headers[num_targets];
    const char *p = url + 5, *colon = strchr(p, ':'), *slash = strchr(p, '/');
    char ip[64];
    if (colon == NULL || (slash != NULL && slash < colon) || (size_t)(colon - p) >= sizeof(ip))
        return -1;
    memcpy(ip, p, (size_t)(colon - p));
    ip[colon - p] = '\0';
    target->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &target->sin_addr) != 1 || (ntohl(target->sin_addr.s_addr) >> 24) != 127)
        return -1; /* loopback only */
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    target->sin_port = htons((uint16_t)port);
    snprintf(host_header, sizeof(host_headers[0]), "%.63s:%d", ip, port);
    snprintf(ws_path, sizeof(ws_path), "%s", slash != NULL ? slash : "/");
    ++num_targets;
    return 0;
}

static void read_cookies(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    size_t cap = 0;
    if (f == NULL) {
        fprintf(stderr, "lobbyload: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (num_cookies == cap) {
            cap = cap ? cap * 2 : 1024;
            cookies = realloc(cookies, cap * sizeof(*cookies));
        }
        cookies[num_cookies++] = strdup(line);
    }
    fclose(f);
}

/* Runs the loop once: waits at most timeout_ms for events and handles them. */
enum { STDIN_TAG = -1 };
static int stdin_state; /* --stepped: 1 a line has come, -1 end of input */

/* --stepped: takes what stdin holds; a line is the word to run the next round */
static void on_stdin(void)
{
    char buf[256];
    ssize_t n = read(0, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        stdin_state = -1;
        epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        return;
    }
    if (memchr(buf, '\n', (size_t)n) != NULL && stdin_state == 0)
        stdin_state = 1;
}

static void poll_once(int timeout_ms)
{
    static struct epoll_event evs[1024];
    int n = epoll_wait(ep, evs, 1024, timeout_ms);
    for (int i = 0; i < n; ++i) {
        if (evs[i].data.u64 == (uint64_t)STDIN_TAG) {
            on_stdin();
            continue;
        }
        conn_t *c = &conns[evs[i].data.u64];
        if (c->state != C_CLOSED)
            on_event(c, evs[i].events);
    }
}

static int over_time(void)
{
    return opt.timeout > 0 && now_ns() - t_start > (uint64_t)(opt.timeout * 1e9);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt.connections + 32 > rl.rlim_cur) {
        fprintf(stderr, "lobbyload: %ld connections need more descriptors than the limit (%llu)\n", opt.connections,
                (unsigned long long)rl.rlim_cur);
        exit(2);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: lobbyload burst|sustained --url ws://127.0.0.1:PORT/ws --cookies FILE -n N\n"
                    "  [--sources K] [--concurrency C] [--settle S] [--timeout S] [--server-pid PID] [--room ID]\n"
                    "  burst: [--rounds R] [--gap MS] [--drain S] [--stepped]\n"
                    "  sustained: [--rate M] [--duration S] [--batch B] [--drain S]\n"
                    "  [--floor --frame-payload BYTES]   the peer is tools/wsfloor\n");
    exit(2);
}

/* --stepped: keeps the connections served until the next line (1) or the end of stdin (0) */
static int wait_go(void)
{
    printf("ready\n");
    fflush(stdout);
    while (stdin_state == 0 && !over_time())
        poll_once(50);
    if (stdin_state != 1)
        return 0;
    stdin_state = 0;
    return 1;
}

static int rounds_run;

static int run_burst(void)
{
    rounds = calloc((size_t)opt.rounds, sizeof(*rounds));
    measure_begin();
    for (int r = 0; r != opt.rounds && !over_time(); ++r) {
        long sender = senders[r % num_senders];
        if (opt.stepped && !wait_go())
            break;
        ++rounds_run;
        if (conns[sender].state != C_OPEN)
            continue;
        cur = r;
        rounds[r].t0 = now_ns();
        send_lobby(&conns[sender], r, rounds[r].t0);
        uint64_t deadline = rounds[r].t0 + (uint64_t)(opt.drain * 1e9);
        while (rounds[r].seen < num_up && now_ns() < deadline)
            poll_once(5);
        if (rounds[r].seen >= num_up) {
            rounds[r].complete = 1;
            ++rounds_complete;
            h_add(&last_hist, rounds[r].last - rounds[r].t0);
            h_add(&first_hist, rounds[r].first - rounds[r].t0);
        } else {
            fprintf(stderr, "lobbyload: round %d: %ld of %ld connections had the message after %.1f s\n", r, rounds[r].seen, num_up,
                    opt.drain);
        }
        /* a pause, so that a round's tail (acknowledgements, the sender's copy) does not overlap the next */
        uint64_t until = now_ns() + (uint64_t)(opt.gap_ms * 1e6);
        while (now_ns() < until)
            poll_once(1);
        if (opt.stepped) {
            printf("done %d %.4f %.4f %d\n", r, rounds[r].complete ? (double)(rounds[r].last - rounds[r].t0) / 1e6 : -1.0,
                   rounds[r].complete ? (double)(rounds[r].first - rounds[r].t0) / 1e6 : -1.0, msg_payload_len);
            fflush(stdout);
        }
    }
    if (opt.stepped)
        while (stdin_state == 0 && wait_go())
            ; /* more lines than --rounds: nothing more to run */
    measure_end();
    return rounds_run > 0 && rounds_complete == rounds_run && round_dups == 0 && error_frames == 0 ? 0 : 1;
}

static int run_sustained(void)
{
    long batches = (long)(opt.rate * opt.duration / opt.batch + 0.5);
    uint64_t period = (uint64_t)(1e9 * opt.batch / opt.rate), t0;
    planned = batches * opt.batch;
    t_sent = calloc((size_t)planned + 1, sizeof(*t_sent));
    measure_begin();
    t0 = now_ns();
    for (long b = 0; b != batches && !over_time(); ++b) {
        uint64_t due = t0 + (uint64_t)b * period;
        for (;;) {
            uint64_t now = now_ns();
            if (now >= due)
                break;
            poll_once((int)((due - now) / 1000000));
        }
        /* a batch is one write of one sender: its frames reach the server in one read, so in one loop turn */
        conn_t *s = &conns[senders[b % num_senders]];
        s->corked = 1;
        for (int k = 0; k != opt.batch; ++k) {
            long seq = seq_next++;
            t_sent[seq] = now_ns();
            if (s->state == C_OPEN)
                send_lobby(s, seq, t_sent[seq]);
        }
        s->corked = 0;
        if (s->state == C_OPEN && s->out_len != 0)
            flush_out(s);
    }
    /* the drain: until every connection has every message, or --drain seconds */
    uint64_t deadline = now_ns() + (uint64_t)(opt.drain * 1e9);
    for (;;) {
        long long have = 0;
        for (long i = 0; i != num_conns; ++i)
            if (conns[i].state == C_OPEN)
                have += (long long)conns[i].distinct;
        if (have >= (long long)num_up * seq_next || now_ns() >= deadline)
            break;
        for (int k = 0; k != 20; ++k)
            poll_once(5);
    }
    measure_end();
    return 0;
}

int main(int argc, char **argv)
{
    int url_bad = 0;
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},         {"cookies", required_argument, NULL, 'c'},
        {"connections", required_argument, NULL, 'n'}, {"sources", required_argument, NULL, 'S'},
        {"concurrency", required_argument, NULL, 'C'}, {"rounds", required_argument, NULL, 'r'},
        {"gap", required_argument, NULL, 'g'},         {"rate", required_argument, NULL, 'R'},
        {"duration", required_argument, NULL, 'd'},    {"batch", required_argument, NULL, 'b'},
        {"drain", required_argument, NULL, 'D'},       {"settle", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},     {"server-pid", required_argument, NULL, 'p'},
        {"floor", no_argument, NULL, 'F'},             {"frame-payload", required_argument, NULL, 'f'},
        {"room", required_argument, NULL, 'm'},        {"verbose", no_argument, NULL, 'v'},
        {"stepped", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "burst") == 0)
        opt.mode = MODE_BURST;
    else if (strcmp(argv[1], "sustained") == 0)
        opt.mode = MODE_SUSTAINED;
    else
        usage();
    optind = 2;
    while ((ch = getopt_long(argc, argv, "n:v", longs, NULL)) != -1) {
        switch (ch) {
        case 'u':
            opt.url = optarg;
            if (parse_url(optarg) != 0)
                opt.url = NULL, url_bad = 1;
            break;
        case 'c': opt.cookies_path = optarg; break;
        case 'n': opt.connections = atol(optarg); break;
        case 'S': opt.sources = atoi(optarg); break;
        case 'C': opt.concurrency = atoi(optarg); break;
        case 'r': opt.rounds = atoi(optarg); break;
        case 'g': opt.gap_ms = atof(optarg); break;
        case 'R': opt.rate = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'b': opt.batch = atoi(optarg); break;
        case 'D': opt.drain = atof(optarg); break;
        case 's': opt.settle = atof(optarg); break;
        case 't': opt.timeout = atof(optarg); break;
        case 'p': opt.server_pid = atoi(optarg); break;
        case 'F': opt.floor = 1; break;
        case 'f': opt.frame_payload = atoi(optarg); break;
        case 'm': opt.room = atoi(optarg); break;
        case 'v': opt.verbose = 1; break;
        case 'P': opt.stepped = 1; break;
        default: usage();
        }
    }
    if (opt.url == NULL || url_bad || opt.cookies_path == NULL || opt.sources < 1 || opt.sources > 250 ||
        opt.concurrency < 1 || opt.rounds < 1 || opt.batch < 1 || opt.rate <= 0 || opt.duration <= 0 || optind != argc)
        usage();
    read_cookies(opt.cookies_path);
    if (num_cookies == 0) {
        fprintf(stderr, "lobbyload: no cookies in %s\n", opt.cookies_path);
        return 2;
    }
    if (opt.connections < 0)
        opt.connections = (long)num_cookies;
    raise_nofile();
    t_start = now_ns();
    rng ^= t_start;
    num_conns = opt.connections;
    conns = calloc((size_t)num_conns, sizeof(*conns));
    senders = calloc(100000, sizeof(*senders));
    for (long i = 0; i != num_conns; ++i) {
        conns[i].fd = -1;
        conns[i].cookie = cookies[(size_t)i % num_cookies];
    }
    ep = epoll_create1(EPOLL_CLOEXEC);

    /* connect, then let the presence frames of the arrivals pass before measuring anything */
    open_more();
    while (num_up + num_failed + num_dropped < num_conns && !over_time())
        poll_once(50);
    uint64_t t_up = now_ns();
    last_frame_ns = t_up;
    while (now_ns() - last_frame_ns < (uint64_t)(opt.settle * 1e9) && !over_time())
        poll_once(20);
    double connect_s = (double)(t_up - t_start) / 1e9, settle_s = (double)(now_ns() - t_up) / 1e9;
    long frames_before = frames_in, reads_before = reads_with_msgs;
    (void)frames_before;

    if (opt.stepped) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)STDIN_TAG};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0) {
            fprintf(stderr, "lobbyload: --stepped needs a pipe on stdin\n");
            return 2;
        }
    }
    int code = 2;
    if (num_up == 0 || num_senders == 0) {
        fprintf(stderr, "lobbyload: no connection came up\n");
        code = 1;
    } else if (opt.mode == MODE_BURST) {
        code = run_burst();
    } else {
        code = run_sustained();
    }
    int timed_out = over_time();

    /* the verdict for sustained: every open connection has every message, once, in order */
    long long missing = 0;
    if (opt.mode == MODE_SUSTAINED)
        for (long i = 0; i != num_conns; ++i)
            if (conns[i].state == C_OPEN)
                missing += seq_next - (long long)conns[i].distinct;
    long deliveries = msg_frames;
    if (opt.mode == MODE_SUSTAINED && (missing != 0 || dups_total != 0 || out_of_order != 0 || error_frames != 0 || num_dropped != 0 ||
                                       beyond != 0 || seq_next != planned))
        code = 1;
    if (opt.mode == MODE_BURST && (num_dropped != 0 || num_failed != 0))
        code = 1;
    if (timed_out)
        code = 3;

    printf("{\"mode\":\"%s\",\"floor\":%s,\"requested\":%ld,\"up\":%ld,\"failed\":%ld,\"dropped\":%ld,\"users\":%ld,\"connect_s\":%.3f,"
           "\"settle_s\":%.3f,\"frames_in\":%ld,\"error_frames\":%ld,\"unparsable\":%ld,\"foreign\":%ld,\"frame_payload\":%d,"
           "\"sent\":%ld,\"deliveries\":%ld,\"reads_with_messages\":%ld,\"messages_per_read\":%.3f,\"server_cpu_pct\":%.1f,"
           "\"client_cpu_pct\":%.1f,",
           opt.mode == MODE_BURST ? "burst" : "sustained", opt.floor ? "true" : "false", num_conns, num_up, num_failed, num_dropped,
           num_senders, connect_s, settle_s, frames_in, error_frames, unparsable, foreign, msg_payload_len, sent_total, deliveries,
           reads_with_msgs - reads_before,
           reads_with_msgs - reads_before > 0 ? (double)deliveries / (double)(reads_with_msgs - reads_before) : 0.0, server_cpu_pct,
           self_cpu_pct);
    if (opt.server_pid > 0)
        printf("\"server_writes\":%lld,", syscw1 - syscw0);
    if (opt.mode == MODE_BURST) {
        printf("\"rounds\":%d,\"rounds_complete\":%d,\"duplicates\":%ld,\"stale\":%ld,", rounds_run, rounds_complete, round_dups,
               round_stale);
        h_print(stdout, "last", &last_hist);
        putchar(',');
        h_print(stdout, "first", &first_hist);
        printf(",\"last_per_round_ms\":[");
        for (int r = 0; r != rounds_run; ++r)
            printf("%s%.3f", r ? "," : "", rounds[r].complete ? (double)(rounds[r].last - rounds[r].t0) / 1e6 : -1.0);
        printf("]");
    } else {
        printf("\"rate\":%.1f,\"duration_s\":%.1f,\"batch\":%d,\"planned\":%ld,\"missing\":%lld,\"duplicates\":%ld,\"out_of_order\":%ld,"
               "\"beyond\":%ld,\"deliveries_per_s\":%.1f,",
               opt.rate, opt.duration, opt.batch, planned, missing, dups_total, out_of_order, beyond,
               (double)deliveries / opt.duration);
        h_print(stdout, "latency", &lat_hist);
    }
    printf(",\"verified\":%s,\"timed_out\":%s}\n", code == 0 ? "true" : "false", timed_out ? "true" : "false");
    fflush(stdout);
    for (long i = 0; i != num_conns; ++i)
        close_conn(&conns[i]);
    return code;
}
