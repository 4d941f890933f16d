/*
 * tlsreset: resets TLS connections right after their handshake, many times, and tells whether forumd
 * released them (its /_status descriptor and connection counts return to where they were).
 *
 *   tlsreset --port TLS_PORT --status-port HTTP_PORT [--count 10000] [--threads 4] [--wait 30]
 *
 * Each connection completes a TLS handshake and is then closed with a TCP reset (SO_LINGER 0, no
 * close_notify). They alternate between HTTP/1.1 (ALPN http/1.1 over TLS 1.2, whose handshake the
 * server finishes before the client does) and HTTP/2 (ALPN h2: the client's preface is sent and the
 * server's SETTINGS frame read first, so h2o has started HTTP/2 when the reset comes).
 *
 * /_status is read over plain HTTP on --status-port before the flood, right after it, and then every
 * half second until both counts are back or --wait seconds have passed (a forumd without the
 * descriptor count shows -1 for it, and only its connections are compared). Prints one JSON line.
 * Bounded: at most 1,000,000 connections, 64 threads, 5 s per socket operation; only loopback targets.
 * Exit status: 0 when the counts came back, 1 when they did not, 2 on usage or setup errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

static struct {
    struct sockaddr_in tls, status;
    long count, threads, wait_s;
    SSL_CTX *h1_ctx, *h2_ctx;
} opt = {.count = 10000, .threads = 4, .wait_s = 30};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long next_index, done_h1, done_h2, failed;

typedef struct {
    long long fds, http;
} counts_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const struct sockaddr_in *addr)
{
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One connection: the handshake, the HTTP/2 preface exchange for h2, then a reset. 0 when all went as planned. */
static int reset_one(int h2)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                  "\x00\x00\x00\x04\x00\x00\x00\x00\x00"; /* an empty SETTINGS frame */
    struct linger lg = {1, 0};
    const unsigned char *alpn;
    unsigned alpn_len;
    unsigned char head[9];
    int fd, ret = -1;
    SSL *ssl = NULL;

    if ((fd = connect_to(&opt.tls)) < 0)
        return -1;
    if ((ssl = SSL_new(h2 ? opt.h2_ctx : opt.h1_ctx)) == NULL)
        goto Exit;
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1)
        goto Exit;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len != (h2 ? 2u : 8u))
        goto Exit;
    if (h2) {
        int got = 0, r;
        if (SSL_write(ssl, preface, sizeof(preface) - 1) != (int)sizeof(preface) - 1)
            goto Exit;
        while (got < 9 && (r = SSL_read(ssl, head + got, 9 - got)) > 0)
            got += r;
        if (got != 9 || head[3] != 4) /* the server's SETTINGS */
            goto Exit;
    }
    ret = 0;
Exit:
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    SSL_free(ssl); /* no SSL_shutdown: no close_notify, only the reset */
    close(fd);
    ERR_clear_error();
    return ret;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        long i;
        int h2, r;
        pthread_mutex_lock(&lock);
        i = next_index < opt.count ? next_index++ : -1;
        pthread_mutex_unlock(&lock);
        if (i < 0)
            break;
        h2 = (int)(i & 1);
        r = reset_one(h2);
        pthread_mutex_lock(&lock);
        if (r != 0)
            ++failed;
        else if (h2)
            ++done_h2;
        else
            ++done_h1;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* GET /_status over HTTP/1.0 (the server closes after the answer): its descriptor and HTTP connection counts. */
static int read_status(counts_t *out)
{
    static const char req[] = "GET /_status HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    static const char *fds_path[] = {"fds", NULL}, *http_path[] = {"connections", "http", NULL};
    char buf[65536], errbuf[128];
    size_t len = 0;
    ssize_t r;
    int fd, ret = -1;
    char *body;
    yajl_val root = NULL, fds, http;

    if ((fd = connect_to(&opt.status)) < 0)
        return -1;
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
        goto Exit;
    while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || (body = strstr(buf, "\r\n\r\n")) == NULL)
        goto Exit;
    if ((root = yajl_tree_parse(body + 4, errbuf, sizeof(errbuf))) == NULL)
        goto Exit;
    fds = yajl_tree_get(root, fds_path, yajl_t_number);
    http = yajl_tree_get(root, http_path, yajl_t_number);
    if (http == NULL)
        goto Exit;
    out->fds = fds != NULL ? YAJL_GET_INTEGER(fds) : -1; /* a forumd older than the count: connections only */
    out->http = YAJL_GET_INTEGER(http);
    ret = 0;
Exit:
    yajl_tree_free(root);
    close(fd);
    return ret;
}

static int loopback_addr(const char *host, int port, struct sockaddr_in *out)
{
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    return (ntohl(out->sin_addr.s_addr) >> 24) == 127 ? 0 : -1;
}

static SSL_CTX *client_ctx(const unsigned char *alpn, unsigned alpn_len, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* a full handshake each time, as a flood does */
    SSL_CTX_set_alpn_protos(ctx, alpn, alpn_len);
    return ctx;
}

static void usage(void)
{
    fprintf(stderr, "usage: tlsreset --port TLS_PORT --status-port HTTP_PORT [--host 127.0.0.1] [--count 10000] "
                    "[--threads 4] [--wait 30]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", 1, NULL, 'p'},    {"status-port", 1, NULL, 's'}, {"host", 1, NULL, 'H'},
                                             {"count", 1, NULL, 'n'},   {"threads", 1, NULL, 't'},     {"wait", 1, NULL, 'w'},
                                             {NULL, 0, NULL, 0}};
    const char *host = "127.0.0.1";
    int port = 0, status_port = 0, c, back = 0;
    pthread_t threads[64];
    counts_t before, just_after = {-1, -1}, after = {-1, -1};
    double started, flood_s, deadline;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 's': status_port = atoi(optarg); break;
        case 'H': host = optarg; break;
        case 'n': opt.count = atol(optarg); break;
        case 't': opt.threads = atol(optarg); break;
        case 'w': opt.wait_s = atol(optarg); break;
        default: usage();
        }
    }
    if (opt.count < 1 || opt.count > 1000000 || opt.threads < 1 || opt.threads > 64 || opt.wait_s < 0 || opt.wait_s > 3600)
        usage();
    if (loopback_addr(host, port, &opt.tls) != 0 || loopback_addr(host, status_port, &opt.status) != 0) {
        fprintf(stderr, "tlsreset: only an IPv4 loopback host (127.0.0.0/8) and valid ports are accepted\n");
        return 2;
    }
    opt.h1_ctx = client_ctx((const unsigned char *)"\x08http/1.1", 9, TLS1_2_VERSION);
    opt.h2_ctx = client_ctx((const unsigned char *)"\x02h2", 3, TLS1_3_VERSION);
    if (opt.h1_ctx == NULL || opt.h2_ctx == NULL || read_status(&before) != 0) {
        fprintf(stderr, "tlsreset: cannot read http://%s:%d/_status\n", host, status_port);
        return 2;
    }

    started = now_s();
    for (long i = 0; i != opt.threads; ++i)
        pthread_create(&threads[i], NULL, worker, NULL);
    for (long i = 0; i != opt.threads; ++i)
        pthread_join(threads[i], NULL);
    flood_s = now_s() - started;

    read_status(&just_after);
    for (deadline = now_s() + opt.wait_s;;) {
        if (read_status(&after) == 0 && after.fds == before.fds && after.http == before.http) {
            back = 1;
            break;
        }
        if (now_s() >= deadline)
            break;
        usleep(500000);
    }
    printf("{\"resets\":%ld,\"h1\":%ld,\"h2\":%ld,\"failed\":%ld,\"flood_s\":%.1f,"
           "\"before\":{\"fds\":%lld,\"http\":%lld},\"just_after\":{\"fds\":%lld,\"http\":%lld},"
           "\"after\":{\"fds\":%lld,\"http\":%lld},\"released\":%s,\"waited_s\":%.1f}\n",
           done_h1 + done_h2, done_h1, done_h2, failed, flood_s, before.fds, before.http, just_after.fds, just_after.http,
           after.fds, after.http, back ? "true" : "false", now_s() - started - flood_s);
    SSL_CTX_free(opt.h1_ctx);
    SSL_CTX_free(opt.h2_ctx);
    return back ? 0 : 1;
}
