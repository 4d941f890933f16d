/*
 * What one connection can make the server hold, and how fast it may open HTTP/2 streams.
 *
 * h2o 2.2.5 keeps every answer of an HTTP/2 stream in memory until the client's flow-control window lets
 * it out, applies its idle timeout only to connections with no request in progress, and has no cap on
 * streams opened and reset. It cannot be patched here, so forumd watches from its own side:
 *   - every request passes forum_conn_admit (the first handler of every path): the connection's entry
 *     counts its requests not yet disposed, and for HTTP/2 charges the streams the client opened since
 *     the last request (from h2o's highest stream id, so streams reset before reaching a handler are
 *     charged too) to a token bucket (limits.h2-stream-rate, limits.h2-stream-burst); a stream whose
 *     answer was sent in full gives its token back, so that what is capped is streams opened and reset;
 *     the timer below charges every live HTTP/2 connection the same way, so streams that never reach a
 *     handler (a body that never ends, a stream h2o refused itself or one reset in its queue) count too;
 *   - every JSON answer reserves its bytes (forum_conn_reserve) until its request is disposed, that is
 *     until h2o has written it or dropped it; past limits.conn-pending the connection's further requests
 *     get 503;
 *   - a timer looks at the HTTP/2 connections with answers waiting (bytes reserved, or streams whose body
 *     h2o has not finished sending, as a file's): when h2o has written nothing to the socket for
 *     limits.send-timeout, the connection is closed.
 * An offender of the stream rate gets a GOAWAY (ENHANCE_YOUR_CALM) exactly as h2o sends its own, and h2o
 * then refuses its new streams and closes it once its answers are out. A stalled connection's client does
 * not read, so its socket is shut down: h2o's own read or write then fails and h2o frees the connection
 * by its ordinary error path.
 *
 * An entry is keyed by h2o's connection id (never reused, unlike the pointer). Its h2o_conn_t pointer is
 * only used while one of its requests (or answers) is not disposed, since h2o disposes every request
 * before it frees the connection, or while the timer walks h2o's list of live HTTP/2 connections.
 * Entries are freed by the timer only, once nothing refers to them: an HTTP/2 connection's when it has
 * left h2o's list (so that a new entry is a new connection, whose every stream counts), any other's
 * once it is idle.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include "forum.h"
#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#define NUM_BUCKETS 4096

typedef struct conn_entry {
    struct conn_entry *next_in_bucket;
    h2o_linklist_t all;
    uint64_t id;
    h2o_conn_t *conn;     /* valid while inflight != 0 */
    int is_h2;
    size_t inflight;      /* requests admitted and not yet disposed */
    size_t pending;       /* bytes of answers reserved and not yet disposed */
    double tokens;        /* streams the connection may still open at once */
    int64_t refill_ms;
    uint32_t seen_max_open; /* h2o's highest client stream id at the last request */
    size_t seen_written;  /* the socket's bytes_written when progress was last seen */
    int64_t progress_ms;
    int closing;
    int watching;         /* answers wait to be sent: progress_ms counts */
    unsigned swept;       /* the sweep that last found this HTTP/2 connection alive */
    h2o_req_t *answered_req; /* the request whose reservation was just released, and its answer's length */
    size_t answered_len;
} conn_entry_t;

typedef struct request_ref {
    conn_entry_t *entry;
    h2o_req_t *req;
} request_ref_t;

typedef struct reservation {
    conn_entry_t *entry;
    h2o_req_t *req;
    size_t bytes;
} reservation_t;

static conn_entry_t *buckets[NUM_BUCKETS];
static h2o_linklist_t all_entries = {&all_entries, &all_entries};
static uv_timer_t sweep_timer;
static int timer_started;
static unsigned sweep_count;

static conn_entry_t **slot_of(uint64_t id)
{
    conn_entry_t **slot = &buckets[(id * 0x9E3779B97F4A7C15ull) >> 52];
    while (*slot != NULL && (*slot)->id != id)
        slot = &(*slot)->next_in_bucket;
    return slot;
}

static h2o_http2_conn_t *h2_of(conn_entry_t *e)
{
    return e->is_h2 ? (h2o_http2_conn_t *)e->conn : NULL;
}

static void refill(conn_entry_t *e, int64_t now)
{
    const forum_config_t *conf = forum_server.conf;
    if (now > e->refill_ms) {
        e->tokens += (double)(now - e->refill_ms) * conf->limits.h2_stream_rate / 1000.0;
        if (e->tokens > conf->limits.h2_stream_burst)
            e->tokens = conf->limits.h2_stream_burst;
        e->refill_ms = now;
    }
}

/* What h2o does itself on a protocol error: a GOAWAY naming the last stream it took, then no new stream. */
static void send_goaway(h2o_http2_conn_t *h2, int errnum, const char *why)
{
    if (h2->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        return;
    h2o_http2_encode_goaway_frame(&h2->_write.buf, h2->pull_stream_ids.max_open, errnum, h2o_iovec_init(why, strlen(why)));
    h2o_http2_conn_request_write(h2);
    h2->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
}

static void close_stalled(conn_entry_t *e)
{
    h2o_http2_conn_t *h2 = h2_of(e);
    int fd;
    e->closing = 1;
    forum_log(FORUM_LOG_WARN, "connection %llu: answers unsent (%zu bytes reserved, %u streams) for %u ms: closed",
              (unsigned long long)e->id, e->pending, (unsigned)h2->num_streams.pull.send_body, forum_server.conf->limits.send_timeout_ms);
    /* The client reads nothing, so a GOAWAY would never be read and h2o would wait for its write forever:
     * the socket is made to fail under h2o, whose read and write error paths then free the connection.
     * (No GOAWAY is queued first: a write h2o schedules itself racing that failure trips an assertion of
     * h2o 2.2.5's close_connection_now.) */
    if (h2->sock != NULL && (fd = h2o_socket_get_fd(h2->sock)) >= 0)
        shutdown(fd, SHUT_RDWR);
}

static conn_entry_t *entry_of(h2o_conn_t *conn, int create)
{
    conn_entry_t **slot = slot_of(conn->id);
    if (*slot != NULL || !create)
        return *slot;
    conn_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->id = conn->id;
    e->tokens = forum_server.conf->limits.h2_stream_burst;
    e->refill_ms = forum_mono_ms();
    h2o_linklist_insert(&all_entries, &e->all);
    *slot = e;
    return e;
}

/*
 * Charges the streams `h2` opened since it was last looked at (client stream ids are odd and grow, so
 * reset ones count too) and sends GOAWAY once the bucket is empty; true then. Looked at by each request
 * that reaches a handler and by every sweep, which also sees streams that never reach one (a POST whose
 * body never ends, a stream h2o itself refused, one reset while queued).
 */
static int charge(conn_entry_t *e, h2o_http2_conn_t *h2, int64_t now)
{
    const forum_config_t *conf = forum_server.conf;
    uint32_t max_open = h2->pull_stream_ids.max_open;
    if (max_open > e->seen_max_open) {
        refill(e, now);
        e->tokens -= (double)((max_open - e->seen_max_open + 1) / 2);
        e->seen_max_open = max_open;
    }
    if (e->tokens >= 0)
        return 0;
    if (h2->state < H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        forum_log(FORUM_LOG_WARN, "connection %llu: HTTP/2 streams opened faster than %u/s (burst %u): GOAWAY",
                  (unsigned long long)e->id, conf->limits.h2_stream_rate, conf->limits.h2_stream_burst);
    send_goaway(h2, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM, "too many streams");
    return 1;
}

/* Every live HTTP/2 connection has a record while it lives, so that no stream it opens goes uncharged. */
static void charge_live_connections(int64_t now)
{
    h2o_linklist_t *list = &forum_server.h2o_ctx.http2._conns;
    ++sweep_count;
    for (h2o_linklist_t *node = list->next; node != list; node = node->next) {
        h2o_http2_conn_t *h2 = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        conn_entry_t *e = entry_of(&h2->super, 1);
        if (e == NULL)
            continue;
        e->conn = &h2->super; /* valid now: the connection is in h2o's list */
        e->is_h2 = 1;
        e->swept = sweep_count;
        charge(e, h2, now);
    }
}

static void on_sweep(uv_timer_t *timer)
{
    int64_t now = forum_mono_ms();
    const forum_config_t *conf = forum_server.conf;
    h2o_linklist_t *node, *next;
    (void)timer;
    charge_live_connections(now);
    for (node = all_entries.next; node != &all_entries; node = next) {
        conn_entry_t *e = H2O_STRUCT_FROM_MEMBER(conn_entry_t, all, node);
        next = node->next;
        if (e->inflight == 0) {
            /* an HTTP/2 connection keeps its record while it lives; any other goes once it is idle */
            if (!e->is_h2 || e->swept != sweep_count) {
                *slot_of(e->id) = e->next_in_bucket;
                h2o_linklist_unlink(&e->all);
                free(e);
            }
            continue;
        }
        h2o_http2_conn_t *h2 = h2_of(e);
        if (h2 == NULL || e->closing || h2->sock == NULL)
            continue;
        /* answers wait: JSON ones reserved here, or any stream whose body h2o has yet to send (files) */
        if (e->pending == 0 && h2->num_streams.pull.send_body == 0) {
            e->watching = 0;
            continue;
        }
        if (!e->watching || h2->sock->bytes_written != e->seen_written) {
            e->watching = 1;
            e->seen_written = h2->sock->bytes_written;
            e->progress_ms = now;
        } else if (now - e->progress_ms >= (int64_t)conf->limits.send_timeout_ms) {
            close_stalled(e);
        }
    }
}

static void start_timer(void)
{
    unsigned every = forum_server.conf->limits.send_timeout_ms / 4;
    if (every > 1000)
        every = 1000;
    if (every < 25)
        every = 25;
    uv_timer_init(forum_server.loop, &sweep_timer);
    uv_timer_start(&sweep_timer, on_sweep, every, every);
    uv_unref((uv_handle_t *)&sweep_timer); /* never what keeps the loop running */
    timer_started = 1;
}

void forum_conn_limits_start(void)
{
    if (!timer_started)
        start_timer();
}

/*
 * A stream whose whole answer went out gives its token back: the bucket is then charged only by streams
 * that end without their answer (reset, or never reaching a handler), so that a busy client (a proxy
 * multiplexing its users) is not taken for a flood. The length is the JSON answer's (the reservation,
 * released just before in the pool's last-in-first-out order) or the answer's content-length; an empty
 * or unknown answer gives nothing back.
 */
static void on_request_disposed(void *p)
{
    request_ref_t *ref = p;
    conn_entry_t *e = ref->entry;
    size_t expected = e->answered_req == ref->req ? e->answered_len : ref->req->res.content_length;
    --e->inflight;
    e->answered_req = NULL;
    if (e->is_h2 && expected != SIZE_MAX && expected != 0 && ref->req->bytes_sent >= expected &&
        e->tokens < forum_server.conf->limits.h2_stream_burst)
        e->tokens += 1;
}

static void on_reservation_disposed(void *p)
{
    reservation_t *r = p;
    r->entry->pending -= r->bytes;
    r->entry->answered_req = r->req; /* read by the request's own dispose, which comes next when it was admitted */
    r->entry->answered_len = r->bytes;
    if (--r->entry->inflight == 0)
        r->entry->answered_req = NULL; /* it was not admitted (refused before admission): nothing reads it */
}

int forum_conn_admit(h2o_req_t *req)
{
    const forum_config_t *conf = forum_server.conf;
    conn_entry_t *e;
    if (!timer_started)
        start_timer();
    if ((e = entry_of(req->conn, 1)) == NULL)
        return 0; /* out of memory: the request goes on unwatched rather than refused */
    e->conn = req->conn;
    e->is_h2 = req->version >= 0x200;
    ++e->inflight;
    request_ref_t *ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), on_request_disposed);
    ref->entry = e;
    ref->req = req;

    /* a record lives as long as its HTTP/2 connection, so a new one is a new connection: every stream counts */
    h2o_http2_conn_t *h2 = h2_of(e);
    if (h2 != NULL && charge(e, h2, forum_mono_ms())) {
        forum_send_error(req, 429, "rate_limited", "too many streams opened on this connection", NULL);
        return -1;
    }
    if (e->pending >= conf->limits.conn_pending) {
        forum_send_error(req, 503, "unavailable", "this connection has too many answers waiting to be read", NULL);
        return -1;
    }
    return 0;
}

int forum_conn_reserve(h2o_req_t *req, size_t bytes)
{
    conn_entry_t *e = entry_of(req->conn, 0);
    if (e == NULL || e->inflight == 0 || bytes == 0)
        return 0; /* a request that was not admitted (h2o's own answers) is not watched */
    /* one answer is always let through, however large: the bound is on what piles up behind it */
    if (e->pending != 0 && e->pending + bytes > forum_server.conf->limits.conn_pending)
        return -1;
    reservation_t *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_reservation_disposed);
    r->entry = e;
    r->req = req;
    r->bytes = bytes;
    e->pending += bytes;
    /* the reservation holds the entry too: a request refused before admission (an empty :path) may still
     * reserve here while another of the connection's requests is in flight, and outlive that one */
    ++e->inflight;
    return 0;
}
