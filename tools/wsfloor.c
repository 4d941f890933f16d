/*
 * wsfloor: the kernel's floor for a broadcast over WebSockets, the yardstick of the lobby benchmark.
 *
 *   wsfloor [--port P] [--timeout S]
 *
 * A minimal server with nothing in the way: it listens on 127.0.0.1 (P = 0: a free port, printed as
 * `port N` on stdout), answers every WebSocket upgrade with its 101 and a hello frame
 * ({"type":"hello","user":{"id":K}}, K = the connection's number, so that every connection is a user
 * of its own), and when a text frame arrives from any connection it builds the server frame once and
 * write(2)s it to every open connection in the order they came, one call each. No queue, no event loop
 * library, no JSON: what forumd does for one lobby message minus everything but the system calls.
 * Measured by tools/lobbyload --floor, the same client forumd is measured with.
 * It runs until it is killed or --timeout seconds have passed.
 */
#define _GNU_SOURCE /* accept4, memmem */
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

enum { C_UPGRADE, C_OPEN };

typedef struct fconn {
    int fd, state;
    char head[8192];
    size_t head_len;
    uint8_t *in; /* a client frame cut in two */
    size_t in_len;
    uint8_t *out; /* what a write could not take at once */
    size_t out_len;
} fconn_t;

static int ep, lfd;
static fconn_t **conns; /* by descriptor */
static int *order;      /* open connections' descriptors in the order they upgraded; -1: a hole */
static long *pos;       /* by descriptor: its place in order */
static long num_order, holes, cap_fds;
static long long broadcasts, partial_writes;

static void drop(int fd)
{
    fconn_t *c = conns[fd];
    if (c == NULL)
        return;
    if (c->state == C_OPEN) {
        order[pos[fd]] = -1; /* closed up before the next broadcast: thousands leave at once at the end of a run */
        ++holes;
    }
    close(fd);
    free(c->in);
    free(c->out);
    free(c);
    conns[fd] = NULL;
}

static void compact(void)
{
    long k = 0;
    for (long i = 0; i != num_order; ++i)
        if (order[i] >= 0) {
            pos[order[i]] = k;
            order[k++] = order[i];
        }
    num_order = k;
    holes = 0;
}

static void put(fconn_t *c, const uint8_t *buf, size_t len)
{
    if (c->out_len == 0) {
        ssize_t n = write(c->fd, buf, len);
        if (n < 0 && errno != EAGAIN) {
            drop(c->fd);
            return;
        }
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
        if (len == 0)
            return;
        ++partial_writes;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->out = realloc(c->out, c->out_len + len);
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
}

static size_t frame_header(uint8_t *h, size_t len)
{
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i != 8; ++i)
        h[2 + i] = (uint8_t)((uint64_t)len >> (8 * (7 - i)));
    return 10;
}

/* The whole point: one frame, built once, one write(2) per open connection. */
static void broadcast(const uint8_t *payload, size_t len)
{
    uint8_t *f = malloc(len + 10);
    size_t hl = frame_header(f, len);
    memcpy(f + hl, payload, len);
    if (holes != 0)
        compact();
    for (long i = 0; i < num_order; ++i)
        if (order[i] >= 0)
            put(conns[order[i]], f, hl + len);
    free(f);
    ++broadcasts;
}

static void upgrade(fconn_t *c)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char cat[128], accept_key[64], resp[512], hello[96];
    uint8_t digest[SHA_DIGEST_LENGTH], hh[10];
    const char *k = memmem(c->head, c->head_len, "Sec-WebSocket-Key: ", 19);
    if (k == NULL) {
        drop(c->fd);
        return;
    }
    k += 19;
    size_t kl = strcspn(k, "\r\n");
    snprintf(cat, sizeof(cat), "%.*s%s", (int)(kl < 64 ? kl : 64), k, guid);
    SHA1((const uint8_t *)cat, strlen(cat), digest);
    EVP_EncodeBlock((unsigned char *)accept_key, digest, sizeof(digest));
    int hn = snprintf(hello, sizeof(hello), "{\"type\":\"hello\",\"user\":{\"id\":%d}}", c->fd);
    size_t hl = frame_header(hh, (size_t)hn);
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept_key);
    memcpy(resp + n, hh, hl);
    memcpy(resp + n + hl, hello, (size_t)hn);
    c->state = C_OPEN;
    if (num_order == cap_fds)
        compact();
    pos[c->fd] = num_order;
    order[num_order++] = c->fd;
    put(c, (const uint8_t *)resp, (size_t)n + hl + (size_t)hn);
}

/* Client frames are masked; a text frame is broadcast, a close ends the connection, the rest is ignored. */
static void frames(fconn_t *c, const uint8_t *buf, size_t len)
{
    uint8_t *joined = NULL;
    if (c->in_len != 0) {
        joined = malloc(c->in_len + len);
        memcpy(joined, c->in, c->in_len);
        memcpy(joined + c->in_len, buf, len);
        buf = joined;
        len += c->in_len;
        free(c->in);
        c->in = NULL;
        c->in_len = 0;
    }
    const uint8_t *p = buf, *end = buf + len;
    int fd = c->fd;
    while (end - p >= 6) {
        uint64_t plen = p[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (end - p < 8)
                break;
            plen = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (plen == 127) {
            if (end - p < 14)
                break;
            plen = 0;
            for (int i = 0; i != 8; ++i)
                plen = plen << 8 | p[2 + i];
            hl = 10;
        }
        if (!(p[1] & 0x80) || plen > (1u << 20)) {
            drop(fd);
            goto Exit;
        }
        if ((uint64_t)(end - p) < hl + 4 + plen)
            break;
        unsigned opcode = p[0] & 0x0f;
        const uint8_t *mask = p + hl;
        uint8_t *payload = malloc(plen + 1);
        for (uint64_t i = 0; i != plen; ++i)
            payload[i] = p[hl + 4 + i] ^ mask[i & 3];
        p += hl + 4 + plen;
        if (opcode == 1)
            broadcast(payload, (size_t)plen);
        free(payload);
        if (opcode == 8) {
            drop(fd);
            goto Exit;
        }
        if (conns[fd] == NULL)
            goto Exit;
    }
    if (p != end) {
        c->in_len = (size_t)(end - p);
        c->in = malloc(c->in_len);
        memcpy(c->in, p, c->in_len);
    }
Exit:
    free(joined);
}

static void on_readable(fconn_t *c)
{
    static uint8_t buf[1 << 16];
    if (c->state == C_UPGRADE) {
        ssize_t n = read(c->fd, c->head + c->head_len, sizeof(c->head) - 1 - c->head_len);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN)
                return;
            drop(c->fd);
            return;
        }
        c->head_len += (size_t)n;
        c->head[c->head_len] = '\0';
        char *e = strstr(c->head, "\r\n\r\n");
        if (e == NULL) {
            if (c->head_len >= sizeof(c->head) - 1)
                drop(c->fd);
            return;
        }
        int fd = c->fd;
        size_t rest = c->head_len - (size_t)(e + 4 - c->head);
        upgrade(c);
        if (conns[fd] != NULL && rest != 0)
            frames(c, (const uint8_t *)e + 4, rest);
        return;
    }
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        drop(c->fd);
        return;
    }
    frames(c, buf, (size_t)n);
}

static void on_writable(fconn_t *c)
{
    ssize_t n = write(c->fd, c->out, c->out_len);
    if (n < 0) {
        if (errno != EAGAIN)
            drop(c->fd);
        return;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
    if (c->out_len == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void on_accept(void)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (fd >= cap_fds) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fconn_t *c = calloc(1, sizeof(*c));
        c->fd = fd;
        conns[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {{"port", required_argument, NULL, 'p'}, {"timeout", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
    int port = 0, ch;
    double timeout = 3600;
    struct rlimit rl;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (ch == 'p')
            port = atoi(optarg);
        else if (ch == 't')
            timeout = atof(optarg);
        else {
            fprintf(stderr, "usage: wsfloor [--port P] [--timeout S]\n");
            return 2;
        }
    }
    /* every connection is a descriptor: as many as the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    cap_fds = rl.rlim_cur > 1048576 ? 1048576 : (long)rl.rlim_cur;
    conns = calloc((size_t)cap_fds, sizeof(*conns));
    order = calloc((size_t)cap_fds, sizeof(*order));
    pos = calloc((size_t)cap_fds, sizeof(*pos));

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    socklen_t alen = sizeof(addr);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("wsfloor: listen");
        return 1;
    }
    printf("port %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t_end = (double)ts.tv_sec + timeout;
    static struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, 1000);
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                on_accept();
                continue;
            }
            fconn_t *c = conns[fd];
            if (c == NULL)
                continue;
            if ((evs[i].events & EPOLLOUT) && c->out_len != 0)
                on_writable(c);
            if (conns[fd] != NULL && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(c);
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((double)ts.tv_sec > t_end)
            break;
    }
    fprintf(stderr, "wsfloor: %lld broadcasts, %lld partial writes\n", broadcasts, partial_writes);
    return 0;
}
