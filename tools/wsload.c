/*
 * wsload: a WebSocket load generator for forumd's benchmarks (libuv + wslay as a client, OpenSSL for wss).
 *
 *   wsload MODE --url ws://127.0.0.1:PORT/ws --cookies FILE [options]
 *
 * --url may be given up to 8 times, for the nodes of one forum: connection i goes to the (i mod n)-th
 * (in chat mode the two of a pair, 2i and 2i+1, are then on two different nodes).
 *
 * Every connection binds a source address 127.0.0.K (K = 1..--sources) before it connects, so that
 * many connections do not run out of ephemeral ports; it upgrades with `Cookie: sid=...` (the
 * cookie lines of FILE, reused round-robin) and counts as up once the hello frame has arrived.
 * Then, by MODE:
 *
 *   idle       holds the connections for --duration seconds, then sends {"type":"ping"} on each and
 *              counts the pongs (each connection must answer exactly once).
 *   chat       pairs connection 2i with 2i+1 (distinct users); each one sends message.send frames to its
 *              partner, either keeping --window W unacknowledged per sender, or at --rate R messages/s in
 *              total. The send time travels in client_id (the sender's copy, the acknowledgement) and in
 *              the body (the recipient's copy). Records send->delivery latency, and verifies that every
 *              message reached both its sender and its recipient exactly once and in order.
 *   broadcast  holds the connections and, --repeats times, POSTs /api/posts itself (--http URL) and
 *              measures the time until the last connection has the post.created frame; with --external
 *              someone else posts (--repeats posts are awaited) and the time runs from the first arrival.
 *   logins     no WebSockets: POST /api/auth/login at --rate R per second for --duration seconds as
 *              PREFIX1..PREFIXn (--login-prefix, --login-count, --password); counts the answers.
 *
 * Prints one JSON line on stdout. It stops by itself: the phases are bounded by --duration, --drain
 * and --timeout (a hard limit over the whole run). Only loopback addresses are accepted as targets.
 * Exit status: 0 when everything verified, 1 when something did not, 2 on usage errors, 3 on timeout.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <wslay/wslay.h>
#include <yajl/yajl_tree.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ------------------------------------------------------------------------------------------------ */
/* options and global state */

enum mode { MODE_IDLE, MODE_CHAT, MODE_BROADCAST, MODE_LOGINS };

static struct {
    enum mode mode;
    const char *url, *http_url, *cookies_path, *login_prefix, *password;
    long connections;  /* -1: as many as cookies */
    int sources;
    double duration, timeout, drain, settle;
    int concurrency;
    int window;
    double rate;
    int body_size;
    int repeats;
    int external;
    long login_count;
    int server_pid;
    int verbose;
} opt = {.connections = -1, .sources = 8, .duration = 5, .timeout = 0, .drain = 10, .settle = 0.3, .concurrency = 256,
         .window = 16, .rate = 0, .body_size = 64, .repeats = 10, .login_prefix = "bench", .password = "bench-password",
         .login_count = 1000};

static uv_loop_t *loop;
/* --url may be given up to MAX_URLS times (the nodes of one forum): connection i goes to the (i mod n)-th */
enum { MAX_URLS = 8 };
static struct sockaddr_in targets[MAX_URLS], http_target;
static int num_targets;
static int use_tls;
static SSL_CTX *ssl_ctx;
static char host_headers[MAX_URLS][64], http_host_header[64], ws_path[256];
static char **cookies;
static size_t num_cookies;
static uint64_t t_start; /* uv_hrtime() at start */
static int finished, timed_out;
static uv_timer_t hard_timer, phase_timer, tick_timer;
static uv_prepare_t flush_prepare;
static uv_check_t flush_check;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t now_ns(void)
{
    return uv_hrtime() - t_start;
}

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------------------------------------------ */
/* a log-linear histogram of nanoseconds: exact below 128, then 64 linear steps per power of two (~1.6%) */

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
    int shift = (int)(k / H_SUB) + 1;
    return (uint64_t)(k % H_SUB + H_SUB) << shift;
}

static void h_add(hist_t *h, uint64_t v)
{
    h->bucket[h_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

/* the value at quantile q (0..1): the middle of its bucket, never above the maximum seen */
static uint64_t h_quantile(const hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.999999), seen = 0;
    if (want < 1)
        want = 1;
    for (size_t i = 0; i != H_BUCKETS; ++i) {
        seen += h->bucket[i];
        if (seen >= want) {
            uint64_t lo = h_lower(i), hi = i + 1 < H_BUCKETS ? h_lower(i + 1) : lo;
            uint64_t mid = lo + (hi - lo) / 2;
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

/* "name":{"count":..,"p50_ms":..,...} */
static void h_print(FILE *f, const char *name, const hist_t *h)
{
    fprintf(f, "\"%s\":{\"count\":%llu,\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p95_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,"
               "\"max_ms\":%.4f}",
            name, (unsigned long long)h->count, h->count ? h->sum / (double)h->count / 1e6 : 0.0, h_quantile(h, 0.50) / 1e6,
            h_quantile(h, 0.90) / 1e6, h_quantile(h, 0.95) / 1e6, h_quantile(h, 0.99) / 1e6, h_quantile(h, 0.999) / 1e6, h->max / 1e6);
}

/* ------------------------------------------------------------------------------------------------ */
/* a growable bit set: which sequence numbers have arrived */

typedef struct {
    uint8_t *bits;
    size_t cap; /* in bits */
} bitset_t;

/* sets bit i and returns whether it was set already */
static int bits_set(bitset_t *b, uint64_t i)
{
    if (i >= b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap <= i)
            cap *= 2;
        b->bits = realloc(b->bits, cap / 8);
        memset(b->bits + b->cap / 8, 0, (cap - b->cap) / 8);
        b->cap = cap;
    }
    int was = (b->bits[i / 8] >> (i % 8)) & 1;
    b->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    return was;
}

/* ------------------------------------------------------------------------------------------------ */
/* connections */

enum conn_state { C_CONNECTING, C_TLS, C_UPGRADE, C_OPEN, C_CLOSED };

typedef struct seqcheck {
    bitset_t seen;
    uint64_t distinct, dups, out_of_order, next_max; /* next_max: 1 + the largest seq seen */
} seqcheck_t;

typedef struct conn conn_t;
struct conn {
    int fd;
    uv_poll_t poll;
    int poll_events, poll_started;
    int index;
    enum conn_state state;
    SSL *ssl;
    int tls_want_write;
    const char *cookie;
    char key[32];
    char *hs_out; /* the upgrade request while it is being written */
    size_t hs_out_len, hs_out_off;
    char *hs_in; /* the response head while it is being read */
    size_t hs_in_len;
    uint8_t *left; /* bytes that followed the response head: the first frames */
    size_t left_len, left_off;
    wslay_event_context_ptr ws;
    conn_t *next_pending;
    int pending;
    int64_t user_id;
    int got_hello;
    /* idle */
    int pongs;
    uint64_t ping_sent_ns;
    /* chat */
    conn_t *peer;
    uint64_t sent, sent_in_window;
    seqcheck_t acks, deliveries; /* as a sender: its own copies, and its partner's */
    int64_t last_msg_id;
    /* broadcast */
    int64_t last_post_id;
};

static conn_t *conns;
static long num_conns, next_to_open, num_opening, num_up, num_failed, num_dropped;
static conn_t *pending_head;
static uint64_t t_all_up;
static long frames_in, frames_other, error_frames, unparsable;
static int printed_errors;

static void conn_fail(conn_t *c, const char *why);
static void update_poll(conn_t *c);
static void on_poll(uv_poll_t *h, int status, int events);
static void check_all_up(void);
static void on_conn_up(conn_t *c);
static void on_text(conn_t *c, const char *msg, size_t len);
static void open_more(void);

/* --- reading and writing, plain or TLS: >0 bytes, 0 end of stream, -1 would block, -2 error --- */

static ssize_t io_read(conn_t *c, void *buf, size_t len)
{
    if (c->ssl == NULL) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    int n = SSL_read(c->ssl, buf, (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = 1;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -2;
    }
}

static ssize_t io_write(conn_t *c, const void *buf, size_t len)
{
    if (c->ssl == NULL) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    c->tls_want_write = 0;
    int n = SSL_write(c->ssl, buf, (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = 1;
        return -1;
    default:
        ERR_clear_error();
        return -2;
    }
}

/* --- wslay callbacks --- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    conn_t *c = user;
    (void)flags;
    if (c->left != NULL) {
        size_t n = c->left_len - c->left_off;
        if (n > len)
            n = len;
        memcpy(buf, c->left + c->left_off, n);
        c->left_off += n;
        if (c->left_off == c->left_len) {
            free(c->left);
            c->left = NULL;
        }
        return (ssize_t)n;
    }
    ssize_t n = io_read(c, buf, len);
    if (n > 0)
        return n;
    wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    conn_t *c = user;
    (void)flags;
    ssize_t n = io_write(c, data, len);
    if (n >= 0)
        return n;
    wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = rnd();
        memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
    }
    return 0;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    conn_t *c = user;
    (void)ctx;
    if (arg->opcode == WSLAY_TEXT_FRAME)
        on_text(c, (const char *)arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks ws_callbacks = {ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb};

/* --- the deferred flush: queued frames go out once per loop turn --- */

static void schedule_flush(conn_t *c)
{
    if (c->pending || c->state != C_OPEN)
        return;
    c->pending = 1;
    c->next_pending = pending_head;
    pending_head = c;
}

static void flush_pending(void)
{
    while (pending_head != NULL) {
        conn_t *c = pending_head;
        pending_head = c->next_pending;
        c->pending = 0;
        if (c->state != C_OPEN)
            continue;
        if (wslay_event_send(c->ws) != 0) {
            conn_fail(c, "send failed");
            continue;
        }
        update_poll(c);
    }
}

static void on_flush_prepare(uv_prepare_t *h)
{
    (void)h;
    flush_pending();
}

static void on_flush_check(uv_check_t *h)
{
    (void)h;
    flush_pending();
}

static void ws_send_text(conn_t *c, const char *text, size_t len)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    if (c->state != C_OPEN)
        return;
    /* a refusal (the close has begun) is not acted on here, inside wslay's callbacks: the poll sees the end */
    if (wslay_event_queue_msg(c->ws, &msg) == 0)
        schedule_flush(c);
}

/* --- the connection's life --- */

static void on_poll_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    close(c->fd);
    c->fd = -1;
}

static void conn_close(conn_t *c, int abort_it)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    if (abort_it) {
        /* a reset leaves no TIME_WAIT behind on either side */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->ws != NULL) {
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
    free(c->hs_in);
    free(c->hs_out);
    free(c->left);
    c->hs_in = c->hs_out = NULL;
    c->left = NULL;
    if (c->poll_started) {
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    } else if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_fail(conn_t *c, const char *why)
{
    if (c->state == C_CLOSED)
        return;
    if (c->got_hello) {
        ++num_dropped;
    } else {
        ++num_failed;
        --num_opening;
    }
    if (opt.verbose || printed_errors < 5) {
        ++printed_errors;
        fprintf(stderr, "wsload: connection %d: %s\n", c->index, why);
    }
    int was_up = c->got_hello;
    conn_close(c, 1);
    if (!was_up) {
        open_more();
        check_all_up();
    }
}

static void update_poll(conn_t *c)
{
    int ev = 0;
    if (c->state == C_CLOSED)
        return;
    switch (c->state) {
    case C_CONNECTING:
        ev = UV_WRITABLE;
        break;
    case C_TLS:
        ev = UV_READABLE | (c->tls_want_write ? UV_WRITABLE : 0);
        break;
    case C_UPGRADE:
        ev = c->hs_out_off < c->hs_out_len ? UV_WRITABLE : UV_READABLE;
        break;
    case C_OPEN:
        ev = UV_READABLE | (wslay_event_want_write(c->ws) || c->tls_want_write ? UV_WRITABLE : 0);
        break;
    default:
        break;
    }
    if (ev != c->poll_events) {
        c->poll_events = ev;
        uv_poll_start(&c->poll, ev, on_poll);
    }
}

static void base64(const uint8_t *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void start_upgrade(conn_t *c)
{
    uint8_t raw[16];
    for (int i = 0; i != 16; ++i)
        raw[i] = (uint8_t)rnd();
    base64(raw, sizeof(raw), c->key);
    c->hs_out = malloc(1024);
    int n = snprintf(c->hs_out, 1024,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nCookie: %s\r\nUser-Agent: wsload\r\n\r\n",
                     ws_path, host_headers[c->index % num_targets], c->key, c->cookie);
    c->hs_out_len = (size_t)n;
    c->hs_out_off = 0;
    c->hs_in = malloc(8192);
    c->hs_in_len = 0;
    c->state = C_UPGRADE;
}

/* true when the response head is a 101 with the right Sec-WebSocket-Accept */
static int check_upgrade(conn_t *c, const char *head, size_t len)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char cat[128], expect[64];
    uint8_t digest[SHA_DIGEST_LENGTH];
    if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0)
        return 0;
    snprintf(cat, sizeof(cat), "%s%s", c->key, guid);
    SHA1((const uint8_t *)cat, strlen(cat), digest);
    base64(digest, sizeof(digest), expect);
    for (const char *p = head; p < head + len;) {
        const char *eol = memchr(p, '\n', (size_t)(head + len - p));
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > 22 && strncasecmp(p, "sec-websocket-accept:", 21) == 0) {
            const char *v = p + 21;
            while (*v == ' ')
                ++v;
            return strncmp(v, expect, strlen(expect)) == 0;
        }
        p = eol + 1;
    }
    return 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    conn_t *c = h->data;
    if (c->state == C_CLOSED)
        return;
    if (status < 0 && c->state != C_OPEN) {
        conn_fail(c, uv_strerror(status));
        return;
    }
    switch (c->state) {
    case C_CONNECTING: {
        int err = 0;
        socklen_t elen = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            conn_fail(c, strerror(err));
            return;
        }
        if (use_tls) {
            c->ssl = SSL_new(ssl_ctx);
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_connect_state(c->ssl);
            c->state = C_TLS;
        } else {
            start_upgrade(c);
        }
    }
        /* fall through: try to make progress right away */
        __attribute__((fallthrough));
    case C_TLS:
        if (c->state == C_TLS) {
            c->tls_want_write = 0;
            int r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE)
                    c->tls_want_write = 1;
                else if (e != SSL_ERROR_WANT_READ) {
                    ERR_clear_error();
                    conn_fail(c, "TLS handshake failed");
                    return;
                }
                break;
            }
            start_upgrade(c);
        }
        __attribute__((fallthrough));
    case C_UPGRADE:
        while (c->hs_out_off < c->hs_out_len) {
            ssize_t n = io_write(c, c->hs_out + c->hs_out_off, c->hs_out_len - c->hs_out_off);
            if (n == -1)
                break;
            if (n < 0) {
                conn_fail(c, "cannot write the upgrade request");
                return;
            }
            c->hs_out_off += (size_t)n;
        }
        if (c->hs_out_off < c->hs_out_len)
            break;
        for (;;) {
            ssize_t n = io_read(c, c->hs_in + c->hs_in_len, 8191 - c->hs_in_len);
            if (n == -1)
                break;
            if (n <= 0) {
                conn_fail(c, "the server closed during the upgrade");
                return;
            }
            c->hs_in_len += (size_t)n;
            c->hs_in[c->hs_in_len] = '\0';
            char *end = strstr(c->hs_in, "\r\n\r\n");
            if (end == NULL) {
                if (c->hs_in_len >= 8191) {
                    conn_fail(c, "response head too long");
                    return;
                }
                continue;
            }
            size_t head_len = (size_t)(end + 4 - c->hs_in);
            if (!check_upgrade(c, c->hs_in, head_len)) {
                char line[128];
                size_t l = strcspn(c->hs_in, "\r\n");
                snprintf(line, sizeof(line), "upgrade refused: %.*s", (int)(l < 100 ? l : 100), c->hs_in);
                conn_fail(c, line);
                return;
            }
            if (c->hs_in_len > head_len) {
                c->left_len = c->hs_in_len - head_len;
                c->left = malloc(c->left_len);
                memcpy(c->left, c->hs_in + head_len, c->left_len);
                c->left_off = 0;
            }
            free(c->hs_in);
            free(c->hs_out);
            c->hs_in = c->hs_out = NULL;
            wslay_event_context_client_init(&c->ws, &ws_callbacks, c);
            wslay_event_config_set_max_recv_msg_length(c->ws, 16 * 1024 * 1024);
            c->state = C_OPEN;
            events |= UV_READABLE; /* the first frames may be in `left` already */
            goto Open;
        }
        break;
    case C_OPEN:
    Open:
        if (status < 0) {
            conn_fail(c, uv_strerror(status));
            return;
        }
        if ((events & UV_READABLE) || (c->tls_want_write && (events & UV_WRITABLE))) {
            if (wslay_event_recv(c->ws) != 0) {
                conn_fail(c, "the connection ended");
                return;
            }
            if (c->state != C_OPEN)
                return;
        }
        if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
            conn_fail(c, "send failed");
            return;
        }
        if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
            conn_fail(c, "closed by the server");
            return;
        }
        break;
    default:
        break;
    }
    update_poll(c);
}

static void conn_start(conn_t *c)
{
    struct sockaddr_in src = {0};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        ++num_opening;
        conn_fail(c, strerror(errno));
        return;
    }
    ++num_opening;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7F000001u + (uint32_t)(c->index % opt.sources));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
        conn_fail(c, strerror(errno));
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&targets[c->index % num_targets], sizeof(targets[0])) != 0 && errno != EINPROGRESS) {
        conn_fail(c, strerror(errno));
        return;
    }
    c->state = C_CONNECTING;
    uv_poll_init(loop, &c->poll, c->fd);
    c->poll.data = c;
    c->poll_started = 1;
    c->poll_events = UV_WRITABLE;
    uv_poll_start(&c->poll, UV_WRITABLE, on_poll);
}

static void open_more(void)
{
    static int busy; /* a connection that fails at once calls back here: the outer loop goes on */
    if (busy)
        return;
    busy = 1;
    while (next_to_open < num_conns && num_opening < opt.concurrency && !finished)
        conn_start(&conns[next_to_open++]);
    busy = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* frames: the server's frames are scanned by hand (they are written in a fixed shape, and the texts
 * this tool sends contain no quotes); the hello alone is parsed as a tree */

static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    const char *f = memmem(p, (size_t)(end - p), needle, n);
    return f != NULL ? f + n : NULL;
}

static int read_int(const char *p, const char *end, const char *key, int64_t *out)
{
    const char *v = find(p, end, key);
    if (v == NULL)
        return 0;
    char *stop;
    long long x = strtoll(v, &stop, 10);
    if (stop == v)
        return 0;
    *out = x;
    return 1;
}

static void mode_on_hello(conn_t *c);
static void chat_on_message(conn_t *c, const char *p, const char *end);
static void idle_on_pong(conn_t *c);
static void broadcast_on_post(conn_t *c, const char *p, const char *end);

static void on_text(conn_t *c, const char *msg, size_t len)
{
    const char *end = msg + len, *p;
    static const char prefix[] = "{\"type\":\"";
    ++frames_in;
    if (len < sizeof(prefix) || memcmp(msg, prefix, sizeof(prefix) - 1) != 0) {
        ++unparsable;
        return;
    }
    p = msg + sizeof(prefix) - 1;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL) {
        ++unparsable;
        return;
    }
    size_t tl = (size_t)(q - p);
#define IS(s) (tl == sizeof(s) - 1 && memcmp(p, s, tl) == 0)
    if (IS("message")) {
        chat_on_message(c, q, end);
    } else if (IS("pong")) {
        idle_on_pong(c);
    } else if (IS("post.created")) {
        broadcast_on_post(c, q, end);
    } else if (IS("hello")) {
        char err[128], *copy = strndup(msg, len);
        yajl_val tree = yajl_tree_parse(copy, err, sizeof(err));
        const char *path[] = {"user", "id", NULL};
        yajl_val id = tree != NULL ? yajl_tree_get(tree, path, yajl_t_number) : NULL;
        if (id != NULL && YAJL_IS_INTEGER(id) && !c->got_hello) {
            c->user_id = YAJL_GET_INTEGER(id);
            c->got_hello = 1;
            on_conn_up(c);
        } else {
            ++unparsable;
        }
        yajl_tree_free(tree);
        free(copy);
    } else if (IS("error")) {
        ++error_frames;
        if (printed_errors < 5) {
            ++printed_errors;
            fprintf(stderr, "wsload: error frame on connection %d: %.*s\n", c->index, (int)(len < 300 ? len : 300), msg);
        }
    } else {
        ++frames_other; /* presence, typing, user.created, comment.created */
    }
#undef IS
}

static void on_conn_up(conn_t *c)
{
    --num_opening;
    ++num_up;
    mode_on_hello(c);
    open_more();
}

/* ------------------------------------------------------------------------------------------------ */
/* a minimal HTTP/1.1 client (Connection: close) for the posts and logins it makes */

typedef struct http_req http_req_t;
struct http_req {
    int fd;
    uv_poll_t poll;
    char *out;
    size_t out_len, out_off;
    char in[2048];
    size_t in_len;
    int connected;
    uint64_t t0;
    void (*done)(http_req_t *r, int status);
    long tag;
    http_req_t *prev, *next; /* every request in flight */
};

static long http_inflight;
static http_req_t *http_list;

static void http_closed(uv_handle_t *h)
{
    http_req_t *r = h->data;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        http_list = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    close(r->fd);
    free(r->out);
    free(r);
    --http_inflight;
}

static void http_finish(http_req_t *r, int status)
{
    if (uv_is_closing((uv_handle_t *)&r->poll))
        return;
    struct linger lg = {1, 0};
    setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    uv_poll_stop(&r->poll);
    if (r->done != NULL)
        r->done(r, status);
    uv_close((uv_handle_t *)&r->poll, http_closed);
}

static void http_on_poll(uv_poll_t *h, int status, int events)
{
    http_req_t *r = h->data;
    (void)events;
    if (status < 0) {
        http_finish(r, -1);
        return;
    }
    if (!r->connected) {
        int err = 0;
        socklen_t elen = sizeof(err);
        getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0) {
            http_finish(r, -1);
            return;
        }
        r->connected = 1;
    }
    while (r->out_off < r->out_len) {
        ssize_t n = send(r->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            http_finish(r, -1);
            return;
        }
        r->out_off += (size_t)n;
        if (r->out_off == r->out_len)
            uv_poll_start(&r->poll, UV_READABLE, http_on_poll);
    }
    for (;;) {
        char sink[4096];
        size_t room = sizeof(r->in) - 1 - r->in_len;
        ssize_t n = room > 0 ? recv(r->fd, r->in + r->in_len, room, 0) : recv(r->fd, sink, sizeof(sink), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            break;
        }
        if (n == 0)
            break;
        if (room > 0)
            r->in_len += (size_t)n;
    }
    r->in[r->in_len] = '\0';
    int code = -1;
    if (r->in_len >= 12 && memcmp(r->in, "HTTP/1.", 7) == 0)
        code = atoi(r->in + 9);
    http_finish(r, code);
}

static int http_send(const char *method, const char *path, const char *cookie, const char *body, void (*done)(http_req_t *, int),
                     long tag)
{
    http_req_t *r = calloc(1, sizeof(*r));
    size_t blen = body != NULL ? strlen(body) : 0;
    r->out = malloc(1024 + blen);
    r->out_len = (size_t)snprintf(r->out, 1024 + blen,
                                  "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: wsload\r\n%s%s%s"
                                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                  method, path, http_host_header, cookie != NULL ? "Cookie: " : "", cookie != NULL ? cookie : "",
                                  cookie != NULL ? "\r\n" : "", blen, body != NULL ? body : "");
    r->done = done;
    r->tag = tag;
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        free(r->out);
        free(r);
        return -1;
    }
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(r->fd, (struct sockaddr *)&http_target, sizeof(http_target)) != 0 && errno != EINPROGRESS) {
        close(r->fd);
        free(r->out);
        free(r);
        return -1;
    }
    ++http_inflight;
    r->next = http_list;
    if (http_list != NULL)
        http_list->prev = r;
    http_list = r;
    r->t0 = now_ns();
    uv_poll_init(loop, &r->poll, r->fd);
    r->poll.data = r;
    uv_poll_start(&r->poll, UV_WRITABLE, http_on_poll);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* the server's memory and CPU, from /proc */

static long proc_rss_kib(int pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* user + system CPU time of a process, in clock ticks */
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

static long rss_before = -1, rss_after = -1;
static long long server_ticks0 = -1, server_ticks1 = -1;
static uint64_t measure_t0, measure_t1;
static struct rusage self_usage0;

static void measure_begin(void)
{
    measure_t0 = now_ns();
    getrusage(RUSAGE_SELF, &self_usage0);
    if (opt.server_pid > 0)
        server_ticks0 = proc_cpu_ticks(opt.server_pid);
}

static double self_cpu_pct, server_cpu_pct = -1;

static void measure_end(void)
{
    struct rusage u;
    measure_t1 = now_ns();
    getrusage(RUSAGE_SELF, &u);
    double wall = (double)(measure_t1 - measure_t0) / 1e9;
    double cpu = (double)(u.ru_utime.tv_sec - self_usage0.ru_utime.tv_sec) + (u.ru_utime.tv_usec - self_usage0.ru_utime.tv_usec) / 1e6 +
                 (double)(u.ru_stime.tv_sec - self_usage0.ru_stime.tv_sec) + (u.ru_stime.tv_usec - self_usage0.ru_stime.tv_usec) / 1e6;
    self_cpu_pct = wall > 0 ? 100.0 * cpu / wall : 0;
    if (opt.server_pid > 0 && server_ticks0 >= 0 && (server_ticks1 = proc_cpu_ticks(opt.server_pid)) >= 0 && wall > 0)
        server_cpu_pct = 100.0 * (double)(server_ticks1 - server_ticks0) / (double)sysconf(_SC_CLK_TCK) / wall;
}

/* ------------------------------------------------------------------------------------------------ */
/* the phases every WebSocket mode shares: connect, (settle), run, finish */

static void finish(int code);
static void mode_start(void);

static uint64_t t_settled;

static void on_settled(uv_timer_t *t)
{
    (void)t;
    t_settled = now_ns();
    if (opt.server_pid > 0)
        rss_after = proc_rss_kib(opt.server_pid);
    mode_start();
}

static int all_up_reported;
static long settle_frames;
static uint64_t settle_since, settle_began;

/* the server is done with the connection storm when no frame has arrived for --settle seconds */
static void on_settle_tick(uv_timer_t *t)
{
    uint64_t now = now_ns();
    if (frames_in != settle_frames) {
        settle_frames = frames_in;
        settle_since = now;
    }
    if (now - settle_since >= (uint64_t)(opt.settle * 1e9) || now - settle_began >= 60 * 1000000000ull) {
        uv_timer_stop(t);
        on_settled(t);
    }
}

static void check_all_up(void)
{
    if (all_up_reported || num_up + num_failed < num_conns)
        return;
    all_up_reported = 1;
    t_all_up = now_ns();
    if (num_up == 0) {
        fprintf(stderr, "wsload: no connection came up\n");
        finish(1);
        return;
    }
    /* let the presence frames that the arrivals caused pass before measuring anything */
    settle_frames = frames_in;
    settle_since = settle_began = now_ns();
    uv_timer_start(&phase_timer, on_settle_tick, 20, 20);
}

/* ------------------------------------------------------------------------------------------------ */
/* idle */

static hist_t ping_hist;
static long pongs_ok, pongs_extra, pings_sent;

static void idle_done(uv_timer_t *t)
{
    (void)t;
    finish(0);
}

static void idle_check(uv_timer_t *t)
{
    (void)t;
    if (pongs_ok >= pings_sent) {
        uv_timer_stop(&tick_timer);
        uv_timer_stop(&phase_timer);
        finish(0);
    }
}

static void idle_ping_all(uv_timer_t *t)
{
    static const char ping[] = "{\"type\":\"ping\"}";
    (void)t;
    measure_begin();
    for (long i = 0; i != num_conns; ++i) {
        conn_t *c = &conns[i];
        if (c->state != C_OPEN || !c->got_hello)
            continue;
        c->ping_sent_ns = now_ns();
        ws_send_text(c, ping, sizeof(ping) - 1);
        ++pings_sent;
    }
    uv_timer_start(&tick_timer, idle_check, 5, 5);
    uv_timer_start(&phase_timer, idle_done, (uint64_t)(opt.drain * 1000), 0);
}

static void idle_on_pong(conn_t *c)
{
    if (c->pongs++ == 0 && c->ping_sent_ns != 0) {
        ++pongs_ok;
        h_add(&ping_hist, now_ns() - c->ping_sent_ns);
    } else {
        ++pongs_extra;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* chat */

static hist_t deliver_hist, ack_hist, lag_hist;
static uint64_t chat_sent, chat_t_stop, chat_last_delivery, delivered_in_window, acked_in_window;
static int chat_sending;
static long pairs;
static long foreign_messages, id_order_errors, throttled;
static double rate_sent;
static uint64_t rr_next;
static char *padding;

static void chat_send(conn_t *s, uint64_t t_ns)
{
    char buf[512];
    uint64_t seq = s->sent++;
    int n = snprintf(buf, sizeof(buf), "{\"type\":\"message.send\",\"to\":%lld,\"client_id\":\"%llu.%llu\",\"body\":\"m %llu %llu %s\"}",
                     (long long)s->peer->user_id, (unsigned long long)seq, (unsigned long long)t_ns, (unsigned long long)seq,
                     (unsigned long long)t_ns, padding);
    ++chat_sent;
    ws_send_text(s, buf, (size_t)n);
}

static void seq_arrived(seqcheck_t *sc, uint64_t seq)
{
    if (bits_set(&sc->seen, seq)) {
        ++sc->dups;
        return;
    }
    ++sc->distinct;
    if (seq + 1 < sc->next_max)
        ++sc->out_of_order; /* a later one came first */
    else
        sc->next_max = seq + 1;
}

static void chat_on_message(conn_t *c, const char *p, const char *end)
{
    int64_t id, from, to;
    const char *m = find(p, end, "\"message\":{");
    uint64_t now = now_ns();
    if (m == NULL || !read_int(m, end, "\"id\":", &id) || !read_int(m, end, "\"from\":", &from) || !read_int(m, end, "\"to\":", &to)) {
        ++unparsable;
        return;
    }
    if (id <= c->last_msg_id)
        ++id_order_errors;
    c->last_msg_id = id;
    if (c->peer == NULL) {
        ++foreign_messages;
        return;
    }
    unsigned long long seq, t;
    if (from == c->user_id && to == c->peer->user_id) {
        /* our own copy: the acknowledgement, with the client_id */
        const char *cid = find(m, end, "\"client_id\":\"");
        if (cid == NULL || sscanf(cid, "%llu.%llu", &seq, &t) != 2) {
            ++unparsable;
            return;
        }
        seq_arrived(&c->acks, seq);
        h_add(&ack_hist, now > t ? now - t : 0);
        if (chat_sending)
            ++acked_in_window;
        if (chat_sending && opt.rate <= 0 && c->sent - c->acks.distinct < (uint64_t)opt.window)
            chat_send(c, now_ns());
    } else if (from == c->peer->user_id && to == c->user_id) {
        /* the partner's message: the delivery being measured */
        const char *b = find(m, end, "\"body\":\"");
        if (b == NULL || sscanf(b, "m %llu %llu", &seq, &t) != 2) {
            ++unparsable;
            return;
        }
        seq_arrived(&c->peer->deliveries, seq);
        h_add(&deliver_hist, now > t ? now - t : 0);
        chat_last_delivery = now;
        if (chat_sending)
            ++delivered_in_window;
    } else {
        ++foreign_messages;
    }
}

static int chat_complete(void)
{
    for (long i = 0; i != 2 * pairs; ++i) {
        conn_t *c = &conns[i];
        if (c->state == C_OPEN && (c->acks.distinct < c->sent || c->deliveries.distinct < c->sent))
            return 0;
    }
    return 1;
}

static void chat_drain_check(uv_timer_t *t)
{
    (void)t;
    if (chat_complete()) {
        uv_timer_stop(&tick_timer);
        uv_timer_stop(&phase_timer);
        finish(0);
    }
}

static void chat_drain_over(uv_timer_t *t)
{
    (void)t;
    uv_timer_stop(&tick_timer);
    finish(0);
}

static void chat_stop_sending(uv_timer_t *t)
{
    (void)t;
    chat_sending = 0;
    chat_t_stop = now_ns();
    measure_end();
    uv_timer_stop(&tick_timer);
    uv_timer_start(&tick_timer, chat_drain_check, 5, 5);
    uv_timer_start(&phase_timer, chat_drain_over, (uint64_t)(opt.drain * 1000), 0);
}

/* fixed rate: what is due by now goes out, round robin over the senders, stamped with when it was due */
static void chat_rate_tick(uv_timer_t *t)
{
    (void)t;
    if (!chat_sending)
        return;
    uint64_t now = now_ns();
    double due = (double)(now - measure_t0) / 1e9 * opt.rate;
    long senders = 2 * pairs;
    while (rate_sent <= due) { /* message k is due at k / rate */
        uint64_t when = measure_t0 + (uint64_t)(rate_sent / opt.rate * 1e9);
        long tries = 0;
        conn_t *s;
        do {
            s = &conns[rr_next++ % (uint64_t)senders];
        } while ((s->state != C_OPEN || s->sent - s->acks.distinct >= 100000) && ++tries < senders);
        rate_sent += 1;
        if (tries >= senders) {
            ++throttled;
            continue;
        }
        /* stamped when it leaves: the timer's 1 ms grain is this tool's, not the server's; how late the
         * tool itself was (coordinated omission) is reported separately as send_lag */
        h_add(&lag_hist, now - when);
        chat_send(s, now);
    }
}

static void chat_start(void)
{
    padding = malloc((size_t)opt.body_size + 1);
    for (int i = 0; i != opt.body_size; ++i)
        padding[i] = "abcdefghijklmnopqrstuvwxyz"[i % 26];
    padding[opt.body_size] = '\0';
    /* partners: 2i and 2i+1, both up, two different users */
    pairs = num_conns / 2;
    for (long i = 0; i != pairs; ++i) {
        conn_t *a = &conns[2 * i], *b = &conns[2 * i + 1];
        if (a->state != C_OPEN || b->state != C_OPEN || !a->got_hello || !b->got_hello)
            continue;
        if (a->user_id == b->user_id) {
            fprintf(stderr, "wsload: chat needs a different user on each side of a pair (cookies %ld and %ld are both user %lld)\n",
                    2 * i, 2 * i + 1, (long long)a->user_id);
            finish(2);
            return;
        }
        a->peer = b;
        b->peer = a;
    }
    chat_sending = 1;
    measure_begin();
    if (opt.rate > 0) {
        uv_timer_start(&tick_timer, chat_rate_tick, 1, 1);
    } else {
        for (long i = 0; i != 2 * pairs; ++i)
            for (int w = 0; w != opt.window && conns[i].peer != NULL; ++w)
                chat_send(&conns[i], now_ns());
    }
    uv_timer_start(&phase_timer, chat_stop_sending, (uint64_t)(opt.duration * 1000), 0);
}

/* ------------------------------------------------------------------------------------------------ */
/* broadcast */

typedef struct round {
    int64_t post_id;
    uint64_t t0, first, last;
    long seen;
    int status; /* the POST's answer */
    int complete;
} round_t;

static round_t *rounds;
static int num_rounds, current_round = -1;
static hist_t last_hist, first_hist;
static long post_dups, post_foreign, rounds_complete;

static void broadcast_next(uv_timer_t *t);

static void broadcast_round_over(void)
{
    round_t *r = &rounds[current_round];
    if (r->seen >= num_up) {
        r->complete = 1;
        ++rounds_complete;
        h_add(&last_hist, r->last - r->t0);
        h_add(&first_hist, r->first - r->t0);
    }
    if (current_round + 1 >= opt.repeats) {
        uv_timer_stop(&phase_timer);
        measure_end();
        finish(0);
        return;
    }
    /* a pause between posts, so that one round's tail does not overlap the next */
    uv_timer_start(&phase_timer, broadcast_next, 50, 0);
}

static void broadcast_timeout(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "wsload: round %d: %ld of %ld connections had the post after %.1f s\n", current_round, rounds[current_round].seen,
            num_up, opt.drain);
    broadcast_round_over();
}

static void broadcast_posted(http_req_t *req, int status)
{
    if (req->tag < num_rounds)
        rounds[req->tag].status = status;
    if (status != 201 && printed_errors < 5) {
        ++printed_errors;
        fprintf(stderr, "wsload: POST /api/posts answered %d: %.200s\n", status, req->in);
    }
}

static void broadcast_next(uv_timer_t *t)
{
    char body[256];
    (void)t;
    round_t *r = &rounds[++current_round];
    memset(r, 0, sizeof(*r));
    if (opt.external) {
        r->t0 = 0; /* from the first arrival */
    } else {
        snprintf(body, sizeof(body), "{\"title\":\"broadcast %d\",\"body\":\"one post to every open connection\",\"categories\":[\"general\"]}",
                 current_round);
        r->t0 = now_ns();
        if (http_send("POST", "/api/posts", cookies[0], body, broadcast_posted, current_round) != 0)
            fprintf(stderr, "wsload: cannot connect for POST\n");
    }
    uv_timer_start(&phase_timer, broadcast_timeout, (uint64_t)(opt.drain * 1000), 0);
}

static void broadcast_on_post(conn_t *c, const char *p, const char *end)
{
    int64_t id;
    uint64_t now = now_ns();
    if (!read_int(p, end, "\"post\":{\"id\":", &id)) {
        ++unparsable;
        return;
    }
    if (current_round < 0 || current_round >= num_rounds) {
        ++post_foreign;
        return;
    }
    round_t *r = &rounds[current_round];
    if (r->post_id == 0 && (current_round == 0 || id > rounds[current_round - 1].post_id)) {
        r->post_id = id;
        if (opt.external)
            r->t0 = now;
    }
    if (id != r->post_id) {
        ++post_foreign;
        return;
    }
    if (c->last_post_id == id) {
        ++post_dups;
        return;
    }
    c->last_post_id = id;
    if (r->seen++ == 0)
        r->first = now;
    r->last = now;
    if (r->seen == num_up) {
        uv_timer_stop(&phase_timer);
        broadcast_round_over();
    }
}

static void broadcast_start(void)
{
    num_rounds = opt.repeats;
    rounds = calloc((size_t)num_rounds, sizeof(*rounds));
    measure_begin();
    if (opt.external) {
        /* the first post opens round 0 */
        current_round = 0;
        uv_timer_start(&phase_timer, broadcast_timeout, (uint64_t)((opt.duration + opt.drain) * 1000), 0);
    } else {
        broadcast_next(NULL);
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* logins */

static hist_t login_hist;
static long logins_sent, logins_ok, logins_busy, logins_limited, logins_other;
static double logins_due;
static int logins_sending;

static void login_done(http_req_t *r, int status)
{
    if (status == 200) {
        ++logins_ok;
        h_add(&login_hist, now_ns() - r->t0);
    } else if (status == 503) {
        ++logins_busy;
    } else if (status == 429) {
        ++logins_limited;
    } else {
        ++logins_other;
        if (printed_errors < 5) {
            ++printed_errors;
            fprintf(stderr, "wsload: login answered %d: %.200s\n", status, r->in);
        }
    }
}

static void logins_tick(uv_timer_t *t)
{
    (void)t;
    if (!logins_sending) {
        if (http_inflight == 0) {
            uv_timer_stop(&tick_timer);
            uv_timer_stop(&phase_timer);
            finish(0);
        }
        return;
    }
    double due = (double)(now_ns() - measure_t0) / 1e9 * opt.rate;
    while (logins_due + 1 <= due) {
        char body[256];
        logins_due += 1;
        snprintf(body, sizeof(body), "{\"login\":\"%s%ld\",\"password\":\"%s\"}", opt.login_prefix, logins_sent % opt.login_count + 1,
                 opt.password);
        ++logins_sent;
        if (http_send("POST", "/api/auth/login", NULL, body, login_done, 0) != 0)
            ++logins_other;
    }
}

static void logins_drain_over(uv_timer_t *t)
{
    (void)t;
    uv_timer_stop(&tick_timer);
    finish(0);
}

static void logins_stop(uv_timer_t *t)
{
    (void)t;
    logins_sending = 0;
    measure_end();
    uv_timer_start(&phase_timer, logins_drain_over, (uint64_t)(opt.drain * 1000), 0);
}

/* ------------------------------------------------------------------------------------------------ */
/* the mode dispatch, the result, the end */

static void mode_on_hello(conn_t *c)
{
    (void)c;
    check_all_up();
}

static void mode_start(void)
{
    switch (opt.mode) {
    case MODE_IDLE:
        uv_timer_start(&phase_timer, idle_ping_all, (uint64_t)(opt.duration * 1000), 0);
        break;
    case MODE_CHAT:
        chat_start();
        break;
    case MODE_BROADCAST:
        broadcast_start();
        break;
    case MODE_LOGINS:
        break;
    }
}

static const char *mode_name(void)
{
    static const char *const names[] = {"idle", "chat", "broadcast", "logins"};
    return names[opt.mode];
}

/* prints the result; returns whether every check passed */
static int print_result(void)
{
    FILE *f = stdout;
    int ok = 1;
    double elapsed = (double)(measure_t1 - measure_t0) / 1e9;

    fprintf(f, "{\"mode\":\"%s\",\"timeout\":%s", mode_name(), timed_out ? "true" : "false");
    if (opt.mode != MODE_LOGINS) {
        fprintf(f, ",\"connections\":%ld,\"up\":%ld,\"failed\":%ld,\"dropped\":%ld,\"connect_s\":%.3f,\"settled_s\":%.3f,\"frames_in\":%ld,\"error_frames\":%ld,"
                   "\"unparsable\":%ld",
                num_conns, num_up, num_failed, num_dropped, t_all_up / 1e9, t_settled / 1e9, frames_in, error_frames, unparsable);
        ok = num_up == num_conns && num_dropped == 0 && error_frames == 0 && unparsable == 0;
    }
    if (opt.server_pid > 0) {
        fprintf(f, ",\"server_rss_before_kib\":%ld,\"server_rss_after_kib\":%ld", rss_before, rss_after);
        if (num_up > 0 && rss_before >= 0 && rss_after >= 0)
            fprintf(f, ",\"server_rss_per_conn_bytes\":%.1f", (double)(rss_after - rss_before) * 1024.0 / (double)num_up);
        fprintf(f, ",\"server_cpu_pct\":%.1f", server_cpu_pct);
    }
    fprintf(f, ",\"client_cpu_pct\":%.1f", self_cpu_pct);
    switch (opt.mode) {
    case MODE_IDLE:
        fprintf(f, ",\"pings\":%ld,\"pongs\":%ld,\"extra_pongs\":%ld,\"all_answered\":%s,", pings_sent, pongs_ok, pongs_extra,
                pongs_ok == num_conns && pongs_extra == 0 ? "true" : "false");
        h_print(f, "ping", &ping_hist);
        ok = ok && pongs_ok == num_conns && pongs_extra == 0;
        break;
    case MODE_CHAT: {
        uint64_t sent = 0, acks = 0, deliv = 0, dup = 0, ooo = 0;
        for (long i = 0; i != 2 * pairs; ++i) {
            conn_t *c = &conns[i];
            sent += c->sent;
            acks += c->acks.distinct;
            deliv += c->deliveries.distinct;
            dup += c->acks.dups + c->deliveries.dups;
            ooo += c->acks.out_of_order + c->deliveries.out_of_order;
        }
        uint64_t missing = (sent - acks) + (sent - deliv);
        int verified = missing == 0 && dup == 0 && ooo == 0 && id_order_errors == 0 && foreign_messages == 0 && ok;
        double span = chat_last_delivery > measure_t0 ? (double)(chat_last_delivery - measure_t0) / 1e9 : 0;
        fprintf(f, ",\"pairs\":%ld,\"window\":%d,\"rate\":%.1f,\"duration_s\":%.3f,\"sent\":%llu,\"acked\":%llu,\"delivered\":%llu,"
                   "\"missing\":%llu,\"duplicates\":%llu,\"out_of_order\":%llu,\"id_order_errors\":%ld,\"foreign\":%ld,\"throttled\":%ld,"
                   "\"verified\":%s,\"delivered_per_s\":%.1f,\"acked_per_s\":%.1f,\"overall_delivered_per_s\":%.1f,",
                pairs, opt.rate > 0 ? 0 : opt.window, opt.rate, elapsed, (unsigned long long)sent, (unsigned long long)acks,
                (unsigned long long)deliv, (unsigned long long)missing, (unsigned long long)dup, (unsigned long long)ooo, id_order_errors,
                foreign_messages, throttled, verified ? "true" : "false", elapsed > 0 ? delivered_in_window / elapsed : 0,
                elapsed > 0 ? acked_in_window / elapsed : 0, span > 0 ? deliv / span : 0);
        h_print(f, "latency", &deliver_hist);
        fputc(',', f);
        h_print(f, "ack_latency", &ack_hist);
        if (opt.rate > 0) {
            fputc(',', f);
            h_print(f, "send_lag", &lag_hist);
        }
        ok = verified;
        break;
    }
    case MODE_BROADCAST:
        fprintf(f, ",\"repeats\":%d,\"rounds_complete\":%ld,\"duplicates\":%ld,\"foreign\":%ld,\"all_delivered\":%s,", opt.repeats,
                rounds_complete, post_dups, post_foreign, rounds_complete == opt.repeats && post_dups == 0 ? "true" : "false");
        h_print(f, "last", &last_hist);
        fputc(',', f);
        h_print(f, "first", &first_hist);
        ok = ok && rounds_complete == opt.repeats && post_dups == 0;
        break;
    case MODE_LOGINS:
        fprintf(f, ",\"rate\":%.2f,\"duration_s\":%.3f,\"sent\":%ld,\"succeeded\":%ld,\"busy_503\":%ld,\"limited_429\":%ld,\"other\":%ld,", opt.rate,
                elapsed, logins_sent, logins_ok, logins_busy, logins_limited, logins_other);
        h_print(f, "latency", &login_hist);
        ok = logins_other == 0 && logins_limited == 0;
        break;
    }
    fprintf(f, ",\"ok\":%s}\n", ok && !timed_out ? "true" : "false");
    fflush(f);
    return ok;
}

static int exit_code;
static uv_timer_t end_timer;

static void on_end(uv_timer_t *t)
{
    (void)t;
    for (long i = 0; i != num_conns; ++i)
        conn_close(&conns[i], 1);
    for (http_req_t *r = http_list; r != NULL; r = r->next) {
        if (!uv_is_closing((uv_handle_t *)&r->poll)) {
            struct linger lg = {1, 0};
            setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            uv_close((uv_handle_t *)&r->poll, http_closed);
        }
    }
    uv_stop(loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(int code)
{
    if (finished)
        return;
    finished = 1;
    if (measure_t1 == 0 && measure_t0 != 0)
        measure_end();
    int ok = code == 2 ? 0 : print_result();
    exit_code = code == 2 ? 2 : timed_out ? 3 : ok ? 0 : 1;
    /* the connections close on the next turn: this may run inside one of their callbacks */
    uv_timer_start(&end_timer, on_end, 0, 0);
}

static void on_hard_timeout(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "wsload: hard timeout (%.0f s) reached\n", opt.timeout);
    timed_out = 1;
    finish(3);
}

/* ------------------------------------------------------------------------------------------------ */
/* setup */

/* ws://127.0.0.1:8080/ws -> address, Host header, path; only loopback addresses are accepted */
static int parse_url(const char *url, int *tls, struct sockaddr_in *addr, char *host, size_t hostlen, char *path, size_t pathlen)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0 || strncmp(url, "http://", 7) == 0) {
        *tls = 0;
    } else if (strncmp(url, "wss://", 6) == 0 || strncmp(url, "https://", 8) == 0) {
        *tls = 1;
    } else {
        return -1;
    }
    p = strstr(url, "://") + 3;
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    if (colon == NULL || (slash != NULL && slash < colon))
        return -1;
    char ip[64];
    size_t iplen = (size_t)(colon - p);
    if (iplen >= sizeof(ip))
        return -1;
    memcpy(ip, p, iplen);
    ip[iplen] = '\0';
    if (strcmp(ip, "localhost") == 0)
        strcpy(ip, "127.0.0.1");
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &addr->sin_addr) != 1 || (ntohl(addr->sin_addr.s_addr) >> 24) != 127)
        return -1; /* loopback only */
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    addr->sin_port = htons((uint16_t)port);
    snprintf(host, hostlen, "%s:%d", ip, port);
    snprintf(path, pathlen, "%s", slash != NULL ? slash : "/");
    return 0;
}

static void read_cookies(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    size_t cap = 0;
    if (f == NULL) {
        fprintf(stderr, "wsload: %s: %s\n", path, strerror(errno));
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

static void usage(void)
{
    fprintf(stderr,
            "usage: wsload idle|chat|broadcast|logins [options]\n"
            "  --url ws[s]://127.0.0.1:PORT/ws   the WebSocket endpoint (loopback only)\n"
            "  --http http://127.0.0.1:PORT      for the POSTs of broadcast and logins\n"
            "  --cookies FILE                    one sid=HEX per line (from seed)\n"
            "  -n, --connections N               default: one per cookie\n"
            "  --sources K                       source addresses 127.0.0.1..K (default 8)\n"
            "  --concurrency C                   handshakes in flight at once (default 256)\n"
            "  --duration S                      idle: hold time; chat: sending time; logins: time (default 5)\n"
            "  --drain S                         time allowed for answers after a phase (default 10)\n"
            "  --settle S                        once all are up, wait for S seconds without a frame (default 0.3)\n"
            "  --timeout S                       hard limit for the whole run (default: generous)\n"
            "  --window W                        chat: unacknowledged messages per sender (default 16)\n"
            "  --rate R                          chat: messages/s in total instead of a window; logins: logins/s\n"
            "  --body-size B                     chat: padding in each body (default 64)\n"
            "  --repeats R                       broadcast: posts (default 10)\n"
            "  --external                        broadcast: someone else posts; time from the first arrival\n"
            "  --login-prefix P --login-count N --password PW   logins: accounts P1..PN\n"
            "  --server-pid PID                  report the server's RSS and CPU from /proc\n"
            "  -v, --verbose\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},         {"http", required_argument, NULL, 'H'},
        {"cookies", required_argument, NULL, 'c'},     {"connections", required_argument, NULL, 'n'},
        {"sources", required_argument, NULL, 'S'},     {"concurrency", required_argument, NULL, 'C'},
        {"duration", required_argument, NULL, 'd'},    {"drain", required_argument, NULL, 'D'},
        {"settle", required_argument, NULL, 's'},      {"timeout", required_argument, NULL, 't'},
        {"window", required_argument, NULL, 'w'},      {"rate", required_argument, NULL, 'r'},
        {"body-size", required_argument, NULL, 'b'},   {"repeats", required_argument, NULL, 'R'},
        {"external", no_argument, NULL, 'E'},          {"login-prefix", required_argument, NULL, 'L'},
        {"login-count", required_argument, NULL, 'N'}, {"password", required_argument, NULL, 'P'},
        {"server-pid", required_argument, NULL, 'p'},  {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    int c;

    if (argc < 2)
        usage();
    if (strcmp(argv[1], "idle") == 0)
        opt.mode = MODE_IDLE;
    else if (strcmp(argv[1], "chat") == 0)
        opt.mode = MODE_CHAT;
    else if (strcmp(argv[1], "broadcast") == 0)
        opt.mode = MODE_BROADCAST;
    else if (strcmp(argv[1], "logins") == 0)
        opt.mode = MODE_LOGINS;
    else
        usage();
    optind = 2;
    while ((c = getopt_long(argc, argv, "n:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (num_targets == MAX_URLS ||
                parse_url(optarg, &use_tls, &targets[num_targets], host_headers[num_targets], sizeof(host_headers[0]), ws_path, sizeof(ws_path)) != 0) {
                fprintf(stderr, "wsload: --url must be ws:// or wss:// to a loopback address with a port (at most %d of them)\n", MAX_URLS);
                return 2;
            }
            opt.url = optarg;
            ++num_targets;
            break;
        case 'H': opt.http_url = optarg; break;
        case 'c': opt.cookies_path = optarg; break;
        case 'n': opt.connections = atol(optarg); break;
        case 'S': opt.sources = atoi(optarg); break;
        case 'C': opt.concurrency = atoi(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'D': opt.drain = atof(optarg); break;
        case 's': opt.settle = atof(optarg); break;
        case 't': opt.timeout = atof(optarg); break;
        case 'w': opt.window = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'b': opt.body_size = atoi(optarg); break;
        case 'R': opt.repeats = atoi(optarg); break;
        case 'E': opt.external = 1; break;
        case 'L': opt.login_prefix = optarg; break;
        case 'N': opt.login_count = atol(optarg); break;
        case 'P': opt.password = optarg; break;
        case 'p': opt.server_pid = atoi(optarg); break;
        case 'v': opt.verbose = 1; break;
        default: usage();
        }
    }
    if (optind != argc || opt.sources < 1 || opt.sources > 250 || opt.concurrency < 1 || opt.window < 1 || opt.body_size < 0 ||
        opt.body_size > 4000 - 50 || opt.repeats < 1 || opt.duration < 0 || opt.login_count < 1)
        usage();
    if (opt.timeout <= 0)
        opt.timeout = opt.duration + 2 * opt.drain + 120;

    int tls_unused;
    char http_path[8];
    if (opt.http_url != NULL &&
        (parse_url(opt.http_url, &tls_unused, &http_target, http_host_header, sizeof(http_host_header), http_path, sizeof(http_path)) != 0 ||
         tls_unused)) {
        fprintf(stderr, "wsload: --http must be http://127.x.x.x:PORT (plain HTTP on a loopback address)\n");
        return 2;
    }
    if (opt.mode == MODE_LOGINS) {
        if (opt.http_url == NULL || opt.rate <= 0) {
            fprintf(stderr, "wsload: logins needs --http and --rate\n");
            return 2;
        }
    } else {
        if (opt.url == NULL || opt.cookies_path == NULL)
            usage();
        if (opt.mode == MODE_BROADCAST && !opt.external && opt.http_url == NULL) {
            fprintf(stderr, "wsload: broadcast needs --http (or --external)\n");
            return 2;
        }
        read_cookies(opt.cookies_path);
        if (num_cookies == 0) {
            fprintf(stderr, "wsload: no cookies in %s\n", opt.cookies_path);
            return 2;
        }
        num_conns = opt.connections < 0 ? (long)num_cookies : opt.connections;
        if (opt.mode == MODE_CHAT && (num_conns > (long)num_cookies || num_conns < 2)) {
            fprintf(stderr, "wsload: chat needs 2..%zu connections, one per cookie\n", num_cookies);
            return 2;
        }
    }

    /* as many descriptors as allowed; fewer connections than asked if the hard limit is lower */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (num_conns + 64 > (long)rl.rlim_cur) {
        fprintf(stderr, "wsload: RLIMIT_NOFILE is %llu: %ld connections instead of %ld\n", (unsigned long long)rl.rlim_cur,
                (long)rl.rlim_cur - 64, num_conns);
        num_conns = (long)rl.rlim_cur - 64;
    }
    signal(SIGPIPE, SIG_IGN);
    if (use_tls) {
        ssl_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL); /* the bench's self-signed certificate */
    }
    uint64_t seed;
    if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) == 1)
        rng ^= seed | 1;

    loop = uv_default_loop();
    t_start = uv_hrtime();
    uv_timer_init(loop, &hard_timer);
    uv_timer_init(loop, &phase_timer);
    uv_timer_init(loop, &tick_timer);
    uv_timer_init(loop, &end_timer);
    uv_prepare_init(loop, &flush_prepare);
    uv_check_init(loop, &flush_check);
    uv_prepare_start(&flush_prepare, on_flush_prepare);
    uv_check_start(&flush_check, on_flush_check);
    uv_timer_start(&hard_timer, on_hard_timeout, (uint64_t)(opt.timeout * 1000), 0);

    if (opt.server_pid > 0)
        rss_before = proc_rss_kib(opt.server_pid);
    if (opt.mode == MODE_LOGINS) {
        logins_sending = 1;
        measure_begin();
        uv_timer_start(&tick_timer, logins_tick, 1, 1);
        uv_timer_start(&phase_timer, logins_stop, (uint64_t)(opt.duration * 1000), 0);
    } else {
        conns = calloc((size_t)num_conns, sizeof(*conns));
        for (long i = 0; i != num_conns; ++i) {
            conns[i].index = (int)i;
            conns[i].fd = -1;
            conns[i].cookie = cookies[(size_t)i % num_cookies];
        }
        open_more();
    }
    uv_run(loop, UV_RUN_DEFAULT);

    /* close everything and let the closes run, then free, so that a sanitizer build reports no leak */
    if (!finished) /* stopped otherwise: only on_end stops the loop */
        on_end(NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_walk, NULL);
    while (uv_run(loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(loop);
    for (long i = 0; i != num_conns; ++i) {
        free(conns[i].acks.seen.bits);
        free(conns[i].deliveries.seen.bits);
    }
    free(conns);
    for (size_t i = 0; i != num_cookies; ++i)
        free(cookies[i]);
    free(cookies);
    free(rounds);
    free(padding);
    if (ssl_ctx != NULL)
        SSL_CTX_free(ssl_ctx);
    return exit_code;
}
