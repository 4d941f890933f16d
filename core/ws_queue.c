/*
 * The send queue of a WebSocket connection.
 *
 * Frames leave through one queue per connection. A frame is built once, header included (server
 * frames are not masked, so every recipient gets the same bytes), and shared by every queue it is on;
 * a flush writes everything queued in one gathered write. Sending never writes inline: it queues and
 * marks the connection for the flush, which runs once per loop turn, so a publish never re-enters a
 * connection's callbacks. A turn's flush writes at most FLUSH_SLICE connections and leaves the rest
 * for the next turns, first in line: a broadcast to everyone online then lets the loop read between
 * slices, and what it reads meanwhile joins the writes of the connections not reached yet. The queue
 * is bounded: a peer that stays far behind is closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "ws_conn.h"
#include "ws_frame.h"

static const forum_config_t *config;
static h2o_linklist_t pending = {&pending, &pending};
static uv_idle_t flusher;

static void on_flush(uv_idle_t *idle);

/* The low mark of forum_hub_drain_wait: half the bound, so that paced sending is never taken for a slow
 * peer, and at most DRAIN_MARK_MAX, which keeps the pipe to a client full without holding much per connection. */
enum { WRITE_MAX_FRAMES = 64, WRITE_MAX_BYTES = 256 * 1024, DRAIN_MARK_MAX = 256 * 1024 };
/* Connections one loop turn writes: a few milliseconds of system calls on loopback. */
enum { FLUSH_SLICE = 512 };
/* Whole writes one connection makes in one turn while the kernel takes them (a backlog, a paced replay
 * refilling its queue): past it, the rest waits for the next turn, so one fast reader never holds the loop. */
enum { WRITE_ROUNDS_MAX = 8 };
static size_t drain_mark;

ws_out_t *out_new(unsigned opcode, const void *payload, size_t len)
{
    char *repaired = NULL;
    /*
     * The output door of every text frame: a browser fails the whole connection on a text frame that is not
     * UTF-8, so what slipped past the input gate (rows stored before it, a plugin's bug) goes out with U+FFFD
     * in place of each offending byte. Outside JSON strings every byte is ASCII, so the JSON stays JSON.
     */
    if (opcode == FORUM_WS_TEXT && (repaired = forum_utf8_repair(payload, len, &len)) != NULL) {
        forum_log(FORUM_LOG_WARN, "a text frame was not UTF-8: sent with U+FFFD in place of the bad bytes");
        payload = repaired;
    }
    ws_out_t *o = malloc(offsetof(ws_out_t, bytes) + FORUM_WS_MAX_HEADER + len);
    size_t header_len;
    if (o == NULL)
        h2o_fatal("no memory");
    header_len = forum_ws_frame_header(o->bytes, opcode, len);
    if (len != 0)
        memcpy(o->bytes + header_len, payload, len);
    o->refs = 1;
    o->opcode = (uint8_t)opcode;
    o->len = header_len + len;
    free(repaired);
    return o;
}

void out_release(ws_out_t *o)
{
    if (--o->refs == 0)
        free(o);
}

static void schedule_flush(forum_ws_t *ws)
{
    if (h2o_linklist_is_linked(&ws->pending))
        return;
    if (h2o_linklist_is_empty(&pending))
        uv_idle_start(&flusher, on_flush);
    h2o_linklist_insert(&pending, &ws->pending);
}

void enqueue(forum_ws_t *ws, ws_out_t *o)
{
    if (ws->close_queued || ws->dead)
        return; /* nothing follows a close frame, nor goes to a connection that is gone */
    if (ws->out_len == ws->out_cap) {
        ws->out_cap = ws->out_cap == 0 ? 4 : ws->out_cap * 2;
        if ((ws->out = realloc(ws->out, ws->out_cap * sizeof(*ws->out))) == NULL)
            h2o_fatal("no memory");
    }
    ++o->refs;
    ws->out[ws->out_len++] = o;
    ws->out_bytes += o->len;
    if (o->opcode == FORUM_WS_CLOSE)
        ws->close_queued = 1;
    schedule_flush(ws);
}

/* Drops the queued frames that are not in the write under way. */
void discard_unsent(forum_ws_t *ws)
{
    ws->pong = NULL;
    while (ws->out_len > ws->writing) {
        ws_out_t *o = ws->out[--ws->out_len];
        ws->out_bytes -= o->len;
        out_release(o);
    }
}

static void on_write_done(h2o_socket_t *sock, const char *err);
static void release_written(forum_ws_t *ws);
static void after_written(forum_ws_t *ws);

/*
 * A plain connection's write goes straight to the socket: when the kernel takes it whole, as it nearly
 * always does, it is done here. Through libuv every write costs a second system call besides (an
 * epoll_ctl on the next loop turn: uv_write ends by "stopping" a POLLOUT it never started), which is a
 * tenth of a broadcast's time. Returns the bytes written, 0 when none could be, -1 on an error; the
 * caller hands whatever is left to h2o, which also reports the error.
 */
static ssize_t write_direct(forum_ws_t *ws, h2o_iovec_t *bufs, size_t n)
{
    struct iovec iov[WRITE_MAX_FRAMES];
    int fd = h2o_socket_get_fd(ws->sock);
    ssize_t w;
    if (fd < 0)
        return 0;
    for (size_t i = 0; i != n; ++i) {
        iov[i].iov_base = bufs[i].base;
        iov[i].iov_len = bufs[i].len;
    }
    do
        w = writev(fd, iov, (int)n);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    return w;
}

/* Writes everything queued (up to a bound) in one gathered write, unless a write is under way. */
void write_queued(forum_ws_t *ws)
{
    h2o_iovec_t bufs[WRITE_MAX_FRAMES];
    size_t n, bytes;
    unsigned rounds = 0;

    for (;;) {
        n = bytes = 0;
        if (ws->sock == NULL || ws->writing != 0 || ws->out_len == 0)
            return;
        while (n != ws->out_len && n != WRITE_MAX_FRAMES && bytes < WRITE_MAX_BYTES) {
            bufs[n] = h2o_iovec_init(ws->out[n]->bytes, ws->out[n]->len);
            bytes += bufs[n++].len;
        }
        ws->writing = (uint32_t)n;
        if (ws->pong != NULL && ws->pong_at < n)
            ws->pong = NULL; /* on its way: a later ping gets a pong of its own */
        /* a close frame takes the callback's path: the connection may end with its write */
        if (ws->sock->ssl != NULL || ws->close_queued)
            break;
        ssize_t w = write_direct(ws, bufs, n);
        size_t i = 0;
        if (w == (ssize_t)bytes) {
            /* done; while the kernel takes more, a backlog goes on draining, as chained completions would */
            release_written(ws);
            after_written(ws);
            if (++rounds == WRITE_ROUNDS_MAX) {
                if (ws->out_len != 0)
                    schedule_flush(ws);
                return;
            }
            continue;
        }
        if (w > 0) {
            /* the kernel took part of it: h2o writes the rest and calls back for the whole */
            size_t done = (size_t)w;
            while (done >= bufs[i].len)
                done -= bufs[i++].len;
            bufs[i].base += done;
            bufs[i].len -= done;
        }
        h2o_socket_write(ws->sock, bufs + i, n - i, on_write_done);
        return;
    }
    if (ws->sock->ssl != NULL && n > 1) {
        /* h2o seals each buffer into records of its own; one buffer makes the fewest records. TLS
         * encrypts during the call, so the copy is not needed after it. */
        char *flat = malloc(bytes), *p = flat;
        if (flat == NULL)
            h2o_fatal("no memory");
        for (size_t i = 0; i != n; ++i)
            p = (char *)memcpy(p, bufs[i].base, bufs[i].len) + bufs[i].len;
        bufs[0] = h2o_iovec_init(flat, bytes);
        h2o_socket_write(ws->sock, bufs, 1, on_write_done);
        free(flat);
    } else {
        h2o_socket_write(ws->sock, bufs, n, on_write_done);
    }
}

/* The frames of the write under way, out[0 .. writing), are on the wire: they leave the queue. */
static void release_written(forum_ws_t *ws)
{
    uint32_t n = ws->writing;
    for (uint32_t i = 0; i != n; ++i) {
        if (ws->out[i]->opcode == FORUM_WS_CLOSE)
            ws->close_written = 1;
        ws->out_bytes -= ws->out[i]->len;
        out_release(ws->out[i]);
    }
    memmove(ws->out, ws->out + n, (ws->out_len - n) * sizeof(*ws->out));
    ws->out_len -= n;
    ws->writing = 0;
    if (ws->pong != NULL)
        ws->pong_at -= n; /* an unsent pong was never part of the write */
}

/* After a write that did not carry the close frame: an emptied large queue shrinks, a paced sender is woken. */
static void after_written(forum_ws_t *ws)
{
    if (ws->out_len == 0 && ws->out_cap > 16) {
        free(ws->out); /* a burst is over: an idle connection keeps no large queue */
        ws->out = NULL;
        ws->out_cap = 0;
    }
    if (ws->drain_wanted && ws->out_bytes < drain_mark) {
        ws->drain_wanted = 0;
        drained(ws); /* what it queues joins the next write */
    }
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    forum_ws_t *ws = sock->data;

    if (err != NULL) {
        destroy(ws);
        return;
    }
    release_written(ws);
    if (ws->close_written) {
        if (ws->read_done)
            destroy(ws); /* the closing handshake is complete */
        return;
    }
    after_written(ws);
    write_queued(ws);
}

static void on_flush(uv_idle_t *idle)
{
    h2o_linklist_t batch;
    size_t written = 0;
    (void)idle;
    h2o_linklist_init_anchor(&batch);
    h2o_linklist_insert_list(&batch, &pending);
    while (!h2o_linklist_is_empty(&batch) && written++ != FLUSH_SLICE) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, pending, batch.next);
        h2o_linklist_unlink(&ws->pending);
        if (ws->out_len == 0 && ws->writing == 0 && ws->drain_wanted && ws->closing_since_ms == 0) {
            ws->drain_wanted = 0;
            drained(ws); /* a paced sender that yielded (forum_hub_yield) goes on; what it queues is written below */
        }
        write_queued(ws);
    }
    /* the rest of this sweep goes first next turn, ahead of those scheduled during this one */
    h2o_linklist_insert_list(pending.next, &batch);
    if (h2o_linklist_is_empty(&pending))
        uv_idle_stop(&flusher);
}

void queue_close(forum_ws_t *ws, unsigned code, const char *reason)
{
    uint8_t payload[125];
    size_t reason_len = strlen(reason);
    ws_out_t *o;
    if (reason_len > sizeof(payload) - 2)
        reason_len = sizeof(payload) - 2;
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    memcpy(payload + 2, reason, reason_len);
    o = out_new(FORUM_WS_CLOSE, payload, code == 0 ? 0 : 2 + reason_len);
    enqueue(ws, o);
    out_release(o);
}

/* Whether one more frame may be queued on `ws`; closes a peer that stays far behind. */
int admit(forum_ws_t *ws, int flags)
{
    if (ws->closing_since_ms != 0 || ws->dead)
        return 0;
    if (ws->out_bytes > config->limits.ws_send_queue) {
        if (flags & FORUM_PUB_EPHEMERAL)
            return 0; /* typing and the like: the first to go under pressure */
        if (ws->over_since_ms == 0)
            ws->over_since_ms = forum_mono_ms();
        if (ws->out_bytes > 4 * config->limits.ws_send_queue) {
            begin_close(ws, FORUM_WS_POLICY_VIOLATION, "too slow", 0);
            return 0;
        }
    }
    return 1;
}

void forum_hub_send(forum_ws_t *ws, const char *json, size_t len, int flags)
{
    if (!admit(ws, flags))
        return;
    ws_out_t *o = out_new(FORUM_WS_TEXT, json, len);
    enqueue(ws, o);
    out_release(o);
}

/*
 * Answers a ping. Only the newest unanswered ping gets its pong (RFC 6455 5.5.3): a peer that pings
 * without reading grows nothing, and pongs count against the send queue's bound like any frame.
 */
void queue_pong(forum_ws_t *ws, const uint8_t *payload, size_t len)
{
    ws_out_t *o;
    if (ws->close_queued || !admit(ws, 0))
        return;
    o = out_new(FORUM_WS_PONG, payload, len);
    if (ws->pong != NULL) {
        ws->out_bytes += o->len - ws->pong->len;
        out_release(ws->pong);
        ws->out[ws->pong_at] = o;
        ws->pong = o;
        return;
    }
    enqueue(ws, o);
    ws->pong = o;
    ws->pong_at = ws->out_len - 1;
    out_release(o); /* the queue holds it */
}

void forum_hub_yield(forum_ws_t *ws)
{
    if (ws->closing_since_ms != 0)
        return;
    ws->drain_wanted = 1;
    schedule_flush(ws);
}

int forum_hub_drain_wait(forum_ws_t *ws)
{
    if (ws->closing_since_ms != 0)
        return 1; /* nothing more goes out: no need to wake anyone */
    if (ws->out_bytes < drain_mark)
        return 0;
    ws->drain_wanted = 1;
    return 1;
}

size_t forum_hub_ws_queued(forum_ws_t *ws)
{
    return ws->out_bytes;
}

void ws_queue_init(uv_loop_t *loop, const forum_config_t *conf)
{
    config = conf;
    drain_mark = conf->limits.ws_send_queue / 2 < DRAIN_MARK_MAX ? conf->limits.ws_send_queue / 2 : DRAIN_MARK_MAX;
    uv_idle_init(loop, &flusher);
}

void ws_queue_dispose(void)
{
    uv_close((uv_handle_t *)&flusher, NULL);
}
