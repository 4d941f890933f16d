/*
 * The accepted connections: one record each, from the accept until libuv has closed the socket, found
 * from a request by the socket's descriptor. A sweep holds two guards that h2o 2.2.5 lacks:
 *
 * - Writes libuv refused. A read error (a reset by the peer) makes libuv mark the stream unwritable;
 *   from then on uv_write fails at once with UV_EPIPE and never calls back. h2o's uv backend ignores
 *   that return value, so the socket waits forever for a write callback and is never closed. Every
 *   TLS connection reset by its client leaks this way: h2o answers the read error by closing, the
 *   close writes a close_notify (SSL_shutdown) and waits for that write to finish. A socket seen in
 *   that state by a sweep and still in it a loop turn later gets the error its write would have
 *   reported, and h2o closes it as it closes any failed write.
 *
 * - The request-arrival deadline. A connection with no request in flight must deliver its next
 *   complete request to a handler within limits.header-timeout of its accept or of its last request's
 *   start or end. h2o bounds this itself for HTTP/1.1 (its req_timeout, set to the same value), not
 *   for HTTP/2, whose idle timer restarts at every frame: a HEADERS frame followed by a CONTINUATION
 *   every few seconds held up to H2O_MAX_REQLEN (408 KiB) of header block per connection for as long as
 *   the client liked. The late connection's socket is shut down, which h2o reads as the peer closing.
 *   WebSockets belong to the hub, which has its own timeouts.
 */
#include <sys/socket.h>
#include "forum.h"

typedef struct conn {
    uv_tcp_t tcp;        /* first: the handle h2o closes is the record */
    h2o_socket_t *sock;  /* h2o's socket over tcp; NULL once h2o has closed it */
    h2o_linklist_t link; /* in open_conns while sock is set */
    int fd;
    unsigned refs;     /* the socket, and each request in flight (a request may end after its socket) */
    unsigned inflight; /* requests handed to a handler and not yet disposed */
    int64_t waiting_since_ms; /* accept, or the last start or end of a request */
    unsigned char owned_by_hub, write_lost_once, shut_down;
} conn_t;

static h2o_linklist_t open_conns = {&open_conns, &open_conns};
static conn_t **by_fd; /* the open connection on each descriptor, NULL elsewhere */
static size_t by_fd_size;
static uv_timer_t sweep_timer, confirm_timer;

static void release(conn_t *c)
{
    if (--c->refs == 0)
        free(c);
}

/* h2o's close callback: its socket is gone and libuv has closed the descriptor */
static void on_closed(uv_handle_t *handle)
{
    conn_t *c = (conn_t *)handle;

    c->sock = NULL;
    h2o_linklist_unlink(&c->link);
    if (c->fd >= 0 && (size_t)c->fd < by_fd_size && by_fd[c->fd] == c)
        by_fd[c->fd] = NULL; /* the descriptor may already belong to a newer connection */
    --forum_server.num_sockets;
    release(c);
}

static int remember_fd(conn_t *c)
{
    if ((size_t)c->fd >= by_fd_size) {
        size_t n = by_fd_size != 0 ? by_fd_size : 1024;
        conn_t **grown;
        while (n <= (size_t)c->fd)
            n *= 2;
        if ((grown = realloc(by_fd, n * sizeof(*by_fd))) == NULL)
            return -1;
        memset(grown + by_fd_size, 0, (n - by_fd_size) * sizeof(*by_fd));
        by_fd = grown;
        by_fd_size = n;
    }
    by_fd[c->fd] = c;
    return 0;
}

void forum_conn_accept(uv_stream_t *listener, h2o_accept_ctx_t *accept_ctx)
{
    /* allocation failures abort, as h2o's do: a connection left unaccepted would stop libuv's accepting */
    conn_t *c = h2o_mem_alloc(sizeof(*c));
    uv_os_fd_t fd;

    memset(c, 0, sizeof(*c));
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    c->fd = fd;
    if (forum_server.num_sockets >= forum_server.conf->limits.connections || forum_server.shutting_down || remember_fd(c) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    ++forum_server.num_sockets;
    c->refs = 1;
    c->waiting_since_ms = forum_mono_ms();
    h2o_linklist_insert(&open_conns, &c->link);
    uv_tcp_nodelay(&c->tcp, 1);
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_closed);
    h2o_accept(accept_ctx, c->sock);
}

static conn_t *conn_of_socket(h2o_socket_t *sock)
{
    int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
    conn_t *c = fd >= 0 && (size_t)fd < by_fd_size ? by_fd[fd] : NULL;
    return c != NULL && c->sock == sock ? c : NULL;
}

static void on_request_disposed(void *p)
{
    conn_t *c = *(conn_t **)p;
    --c->inflight;
    c->waiting_since_ms = forum_mono_ms();
    release(c);
}

void forum_conn_request_begin(h2o_req_t *req)
{
    conn_t *c = req->conn->callbacks->get_socket != NULL ? conn_of_socket(req->conn->callbacks->get_socket(req->conn)) : NULL;
    conn_t **hold;

    if (c == NULL)
        return;
    hold = h2o_mem_alloc_shared(&req->pool, sizeof(*hold), on_request_disposed);
    *hold = c;
    ++c->refs;
    ++c->inflight;
    c->waiting_since_ms = forum_mono_ms();
}

void forum_conn_owned_by_hub(h2o_socket_t *sock)
{
    conn_t *c = conn_of_socket(sock);
    if (c != NULL)
        c->owned_by_hub = 1;
}

/*
 * h2o waits for a write that libuv refused: libuv will not call back (the stream is unwritable and has
 * nothing queued), so the wait would never end. A write libuv accepted before the stream became
 * unwritable completes at the latest in the loop turn after that, so a socket still waiting in a
 * later turn than the one where it was first seen waits for nothing: it gets the error its write
 * would have reported. Returns WRITE_SUSPECT when first seen, WRITE_RELEASED when released.
 */
enum { WRITE_FINE, WRITE_SUSPECT, WRITE_RELEASED };

static int release_refused_write(conn_t *c)
{
    h2o_socket_cb cb;

    if (uv_is_writable((uv_stream_t *)&c->tcp) || c->tcp.write_queue_size != 0 || !h2o_socket_is_writing(c->sock)) {
        c->write_lost_once = 0;
        return WRITE_FINE;
    }
    if (!c->write_lost_once) {
        c->write_lost_once = 1;
        return WRITE_SUSPECT;
    }
    cb = c->sock->_cb.write;
    c->sock->_cb.write = NULL;
    cb(c->sock, h2o_socket_error_io);
    return WRITE_RELEASED;
}

static int past_deadline(conn_t *c, int64_t now)
{
    if (c->owned_by_hub || c->inflight != 0 || c->shut_down || now - c->waiting_since_ms < forum_server.conf->limits.header_timeout_ms)
        return 0;
    /* h2o sees the end of input (and a failed write, if it writes) and closes the connection its own way */
    shutdown(c->fd, SHUT_RDWR);
    c->shut_down = 1;
    return 1;
}

static void log_released(size_t released)
{
    if (released != 0)
        forum_log(FORUM_LOG_INFO, "released %zu connections whose close libuv had refused (reset by the client)", released);
}

/* the second look at the sockets a sweep suspected, one loop turn later rather than a sweep later */
static void on_confirm(uv_timer_t *timer)
{
    size_t released = 0;
    (void)timer;

    for (h2o_linklist_t *l = open_conns.next; l != &open_conns; l = l->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        if (!uv_is_closing((uv_handle_t *)&c->tcp) && release_refused_write(c) == WRITE_RELEASED)
            ++released;
    }
    log_released(released);
}

static void on_sweep(uv_timer_t *timer)
{
    int64_t now = forum_mono_ms();
    size_t released = 0, suspects = 0, late = 0;
    (void)timer;

    /* nothing below frees a record (libuv's close callbacks come later): the walk is safe */
    for (h2o_linklist_t *l = open_conns.next; l != &open_conns; l = l->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        if (uv_is_closing((uv_handle_t *)&c->tcp))
            continue; /* its descriptor is closed already, and its number may be another's */
        switch (release_refused_write(c)) {
        case WRITE_RELEASED:
            ++released;
            break;
        case WRITE_SUSPECT:
            ++suspects;
            break;
        default:
            if (past_deadline(c, now))
                ++late;
            break;
        }
    }
    if (suspects != 0)
        uv_timer_start(&confirm_timer, on_confirm, 1, 0);
    log_released(released);
    if (late != 0)
        forum_log(FORUM_LOG_INFO, "closed %zu connections that sent no complete request within limits.header-timeout", late);
}

void forum_conn_init(uv_loop_t *loop, const forum_config_t *conf, h2o_globalconf_t *h2o_conf)
{
    /* a quarter of the deadline, at most a second: a late connection is closed within 1.25 times it */
    uint64_t every = conf->limits.header_timeout_ms / 4;
    if (every > 1000)
        every = 1000;
    if (every < 25)
        every = 25;
    h2o_conf->http1.req_timeout = conf->limits.header_timeout_ms;
    uv_timer_init(loop, &sweep_timer);
    uv_timer_start(&sweep_timer, on_sweep, every, every);
    uv_unref((uv_handle_t *)&sweep_timer);
    uv_timer_init(loop, &confirm_timer);
    uv_unref((uv_handle_t *)&confirm_timer);
}
