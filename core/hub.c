/*
 * The hub owns every WebSocket connection: the protocol on the upgraded socket, per user the set of
 * their connections (presence), the publish paths, the deferred flush, pings, idle and slow-peer
 * timeouts.
 *
 * Frames leave through one queue per connection. A frame is built once, header included (server
 * frames are not masked, so every recipient gets the same bytes), and shared by every queue it is on;
 * a flush writes everything queued in one gathered write. Sending never writes inline: it queues and
 * marks the connection for the flush, which runs once per loop turn, so a publish never re-enters a
 * connection's callbacks. A connection is freed only from its own socket callbacks or from a timer.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "forum.h"
#include <h2o/http1.h>
#include "ws_frame.h"

typedef struct user_entry user_entry_t;

/* One frame as it goes on the wire, shared by every queue it is on. */
typedef struct ws_out {
    uint32_t refs;
    uint8_t opcode;
    size_t len;
    uint8_t bytes[];
} ws_out_t;

struct forum_ws {
    h2o_socket_t *sock; /* NULL until the 101 has been written */
    user_entry_t *user;
    uint8_t session[FORUM_SESSION_HASH_LEN];
    int64_t session_expires_ms;
    h2o_linklist_t of_user; /* user_entry_t.conns */
    h2o_linklist_t all;     /* every connection */
    h2o_linklist_t pending; /* waiting for the flush */
    /* the send queue: out[0 .. writing) are in the write under way */
    ws_out_t **out;
    uint32_t out_len, out_cap, writing;
    size_t out_bytes; /* queued and not yet written, the write under way included */
    ws_out_t *pong;      /* the unsent pong, at out[pong_at]: a newer ping replaces it */
    uint32_t pong_at;
    /* a fragmented message being assembled */
    char *frag;
    size_t frag_len, frag_cap;
    uint8_t frag_opcode; /* 0 when none */
    uint8_t close_queued;  /* our close frame is queued: nothing may follow it */
    uint8_t close_written; /* and it has been written */
    uint8_t read_done;     /* the peer's close (or a protocol error) was read: nothing more is read */
    int64_t last_recv_ms;
    int64_t last_ping_ms;
    int64_t over_since_ms; /* since when the send queue has been over its bound, 0 if not */
    int64_t closing_since_ms;
};

struct user_entry {
    int64_t id;
    uint64_t published; /* the publish_users call that last reached this user */
    user_entry_t *next; /* hash chain */
    h2o_linklist_t conns;
    size_t num_conns;
};

static const forum_config_t *config;
static uv_loop_t *loop;
static h2o_linklist_t all_conns = {&all_conns, &all_conns};
static h2o_linklist_t pending = {&pending, &pending};
static size_t num_conns;
static user_entry_t **users;
static size_t users_cap, num_users;
static uv_idle_t flusher;
static uv_timer_t ticker;
static int shutting_down;
static ws_out_t *ping_frame; /* shared by every connection's pings */

enum { CLOSE_GRACE_MS = 3000 };

/* --- the user table: user id -> their connections --- */

static size_t user_bucket(int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (users_cap - 1);
}

static user_entry_t *find_user(int64_t id)
{
    if (users_cap == 0)
        return NULL;
    for (user_entry_t *u = users[user_bucket(id)]; u != NULL; u = u->next)
        if (u->id == id)
            return u;
    return NULL;
}

static void grow_users(void)
{
    size_t old_cap = users_cap;
    user_entry_t **old = users;
    users_cap = users_cap == 0 ? 1024 : users_cap * 2;
    users = calloc(users_cap, sizeof(*users));
    for (size_t i = 0; i != old_cap; ++i) {
        while (old[i] != NULL) {
            user_entry_t *u = old[i];
            old[i] = u->next;
            size_t b = user_bucket(u->id);
            u->next = users[b];
            users[b] = u;
        }
    }
    free(old);
}

static user_entry_t *add_user(int64_t id)
{
    if (num_users >= users_cap)
        grow_users();
    user_entry_t *u = calloc(1, sizeof(*u));
    u->id = id;
    h2o_linklist_init_anchor(&u->conns);
    size_t b = user_bucket(id);
    u->next = users[b];
    users[b] = u;
    ++num_users;
    return u;
}

static void remove_user(user_entry_t *u)
{
    user_entry_t **p = &users[user_bucket(u->id)];
    while (*p != u)
        p = &(*p)->next;
    *p = u->next;
    --num_users;
    free(u);
}

/* --- sending --- */

static void on_flush(uv_idle_t *idle);
static void destroy(forum_ws_t *ws);

enum { WRITE_MAX_FRAMES = 64, WRITE_MAX_BYTES = 256 * 1024 };

static ws_out_t *out_new(unsigned opcode, const void *payload, size_t len)
{
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
    return o;
}

static void out_release(ws_out_t *o)
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

static void enqueue(forum_ws_t *ws, ws_out_t *o)
{
    if (ws->close_queued)
        return; /* nothing follows a close frame */
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
static void discard_unsent(forum_ws_t *ws)
{
    ws->pong = NULL;
    while (ws->out_len > ws->writing) {
        ws_out_t *o = ws->out[--ws->out_len];
        ws->out_bytes -= o->len;
        out_release(o);
    }
}

static void on_write_done(h2o_socket_t *sock, const char *err);

/* Writes everything queued (up to a bound) in one gathered write, unless a write is under way. */
static void write_queued(forum_ws_t *ws)
{
    h2o_iovec_t bufs[WRITE_MAX_FRAMES];
    size_t n = 0, bytes = 0;

    if (ws->sock == NULL || ws->writing != 0 || ws->out_len == 0)
        return;
    while (n != ws->out_len && n != WRITE_MAX_FRAMES && bytes < WRITE_MAX_BYTES) {
        bufs[n] = h2o_iovec_init(ws->out[n]->bytes, ws->out[n]->len);
        bytes += bufs[n++].len;
    }
    ws->writing = (uint32_t)n;
    if (ws->pong != NULL && ws->pong_at < n)
        ws->pong = NULL; /* on its way: a later ping gets a pong of its own */
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

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    forum_ws_t *ws = sock->data;
    uint32_t n = ws->writing;

    if (err != NULL) {
        destroy(ws);
        return;
    }
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
    if (ws->close_written) {
        if (ws->read_done)
            destroy(ws); /* the closing handshake is complete */
        return;
    }
    if (ws->out_len == 0 && ws->out_cap > 16) {
        free(ws->out); /* a burst is over: an idle connection keeps no large queue */
        ws->out = NULL;
        ws->out_cap = 0;
    }
    write_queued(ws);
}

static void on_flush(uv_idle_t *idle)
{
    h2o_linklist_t batch;
    (void)idle;
    h2o_linklist_init_anchor(&batch);
    h2o_linklist_insert_list(&batch, &pending);
    while (!h2o_linklist_is_empty(&batch)) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, pending, batch.next);
        h2o_linklist_unlink(&ws->pending);
        write_queued(ws);
    }
    if (h2o_linklist_is_empty(&pending))
        uv_idle_stop(&flusher);
}

static void queue_close(forum_ws_t *ws, unsigned code, const char *reason)
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

/*
 * Starts the closing handshake. With `after_queued`, the frames already queued go out first (an error
 * frame that explains the close, the last messages before a shutdown); otherwise they are dropped.
 * The peer then has CLOSE_GRACE_MS to answer before the connection is dropped.
 */
static void begin_close(forum_ws_t *ws, int code, const char *reason, int after_queued)
{
    if (ws->closing_since_ms != 0)
        return;
    ws->closing_since_ms = forum_mono_ms();
    if (!after_queued)
        discard_unsent(ws);
    queue_close(ws, (unsigned)code, reason);
}

/* Whether one more frame may be queued on `ws`; closes a peer that stays far behind. */
static int admit(forum_ws_t *ws, int flags)
{
    if (ws->closing_since_ms != 0)
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

/* Queues one shared frame on every connection of `u`, but those in `except`. */
static void send_to_user(user_entry_t *u, ws_out_t **o, const char *json, size_t len, int flags, forum_ws_t *const *except,
                         size_t num_except)
{
    for (h2o_linklist_t *node = u->conns.next; node != &u->conns; node = node->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, node);
        size_t i = 0;
        while (i != num_except && except[i] != ws)
            ++i;
        if (i != num_except || !admit(ws, flags))
            continue;
        if (*o == NULL)
            *o = out_new(FORUM_WS_TEXT, json, len);
        enqueue(ws, *o);
    }
}

void forum_hub_publish_user(int64_t user_id, const char *json, size_t len, int flags)
{
    forum_hub_publish_user_except(user_id, json, len, flags, NULL, 0);
}

void forum_hub_publish_user_except(int64_t user_id, const char *json, size_t len, int flags, forum_ws_t *const *except, size_t n)
{
    user_entry_t *u = find_user(user_id);
    ws_out_t *o = NULL;
    if (u == NULL)
        return;
    send_to_user(u, &o, json, len, flags, except, n);
    if (o != NULL)
        out_release(o);
}

void forum_hub_publish_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags)
{
    static uint64_t call;
    ws_out_t *o = NULL;
    ++call;
    for (size_t i = 0; i != n; ++i) {
        user_entry_t *u = find_user(ids[i]);
        if (u == NULL || u->published == call)
            continue; /* offline, or listed twice */
        u->published = call;
        send_to_user(u, &o, json, len, flags, NULL, 0);
    }
    if (o != NULL)
        out_release(o);
}

void forum_hub_publish_all(const char *json, size_t len, int flags)
{
    ws_out_t *o = NULL;
    for (h2o_linklist_t *n = all_conns.next; n != &all_conns; n = n->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n);
        if (!admit(ws, flags))
            continue;
        if (o == NULL)
            o = out_new(FORUM_WS_TEXT, json, len);
        enqueue(ws, o);
    }
    if (o != NULL)
        out_release(o);
}

static void send_gen(forum_ws_t *ws, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    forum_hub_send(ws, (const char *)buf, len, 0);
}

void forum_hub_send_error(forum_ws_t *ws, const char *code, const char *message, const char *ref)
{
    yajl_gen g = forum_json_gen();
    yajl_gen_map_open(g);
    forum_json_str(g, "type");
    forum_json_str(g, "error");
    forum_json_error_members(g, code, message, NULL);
    forum_json_str(g, "ref");
    forum_json_str(g, ref);
    yajl_gen_map_close(g);
    send_gen(ws, g);
    yajl_gen_free(g);
}

int64_t forum_hub_ws_user(forum_ws_t *ws)
{
    return ws->user->id;
}

size_t forum_hub_ws_queued(forum_ws_t *ws)
{
    return ws->out_bytes;
}

int forum_hub_user_online(int64_t user_id)
{
    return find_user(user_id) != NULL;
}

size_t forum_hub_count(void)
{
    return num_conns;
}

/* --- presence --- */

static void publish_presence(int64_t user_id, int online)
{
    forum_event_t ev = {online ? "user.online" : "user.offline", user_id, NULL, NULL, NULL};
    yajl_gen g = forum_json_gen();
    const unsigned char *buf;
    size_t len;

    yajl_gen_map_open(g);
    forum_json_str(g, "type");
    forum_json_str(g, "presence");
    forum_json_str(g, "user_id");
    yajl_gen_integer(g, user_id);
    forum_json_str(g, "online");
    yajl_gen_bool(g, online);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    forum_hub_publish_all((const char *)buf, len, 0);
    yajl_gen_free(g);
    forum_plugins_emit(&ev);
}

/* Unlinks a connection that is going away; its user goes offline with their last connection. */
static void detach(forum_ws_t *ws)
{
    user_entry_t *u = ws->user;
    forum_event_t ev = {"ws.close", u->id, ws, NULL, NULL};
    forum_plugins_emit(&ev);
    h2o_linklist_unlink(&ws->all);
    h2o_linklist_unlink(&ws->of_user);
    if (h2o_linklist_is_linked(&ws->pending))
        h2o_linklist_unlink(&ws->pending);
    --num_conns;
    if (--u->num_conns == 0) {
        int64_t id = u->id;
        remove_user(u);
        if (!shutting_down)
            publish_presence(id, 0);
    }
}

/* Frees a connection. Called only from its own socket callbacks or from a timer, never from a publish. */
static void destroy(forum_ws_t *ws)
{
    detach(ws);
    if (ws->sock != NULL)
        h2o_socket_close(ws->sock); /* a write under way is cancelled; its callback does not run */
    ws->writing = 0;
    discard_unsent(ws);
    free(ws->out);
    free(ws->frag);
    free(ws);
}

/* --- receiving --- */

static void on_text(forum_ws_t *ws, const char *data, size_t len)
{
    char err[256];
    yajl_val frame = forum_json_parse(data, len, err, sizeof(err));
    yajl_val type;
    forum_plugin_t *plugin;
    forum_frame_fn fn;

    if (frame == NULL) {
        forum_hub_send_error(ws, "bad_request", "a frame must be one JSON object", NULL);
        begin_close(ws, FORUM_WS_INVALID_PAYLOAD, "not JSON", 1);
        return;
    }
    if (!YAJL_IS_OBJECT(frame) || (type = forum_json_member(frame, "type")) == NULL || !YAJL_IS_STRING(type)) {
        forum_hub_send_error(ws, "bad_request", "a frame must be a JSON object with a string \"type\"", NULL);
    } else if (strcmp(type->u.string, "ping") == 0) {
        static const char pong[] = "{\"type\":\"pong\"}";
        forum_hub_send(ws, pong, sizeof(pong) - 1, 0);
    } else if ((fn = forum_plugins_frame(type->u.string, strlen(type->u.string), &plugin)) == NULL) {
        forum_hub_send_error(ws, "bad_request", "unknown frame type", type->u.string);
    } else {
        forum_plugin_pin(plugin);
        fn(ws, frame);
        forum_plugin_unpin(plugin);
    }
    yajl_tree_free(frame);
}

static void on_message(forum_ws_t *ws, unsigned opcode, const char *data, size_t len)
{
    if (ws->closing_since_ms != 0)
        return; /* after our close frame, data is read and dropped */
    if (opcode == FORUM_WS_TEXT) {
        on_text(ws, data, len);
    } else {
        forum_hub_send_error(ws, "bad_request", "binary frames are not accepted", NULL);
        begin_close(ws, FORUM_WS_UNSUPPORTED_DATA, "text frames only", 1);
    }
}

/* Stops reading; returns 1 when that completed the closing handshake and `ws` is gone. */
static int end_reading(forum_ws_t *ws)
{
    ws->read_done = 1;
    h2o_socket_read_stop(ws->sock);
    if (ws->close_written) {
        destroy(ws);
        return 1;
    }
    return 0;
}

/* A peer that breaks the protocol gets a close frame and nothing more is read from it. */
static int protocol_error(forum_ws_t *ws, int code, const char *reason)
{
    begin_close(ws, code, reason, 0);
    return end_reading(ws);
}

static int on_close_frame(forum_ws_t *ws, const uint8_t *payload, size_t len)
{
    unsigned code = 0;
    if (len == 1)
        return protocol_error(ws, FORUM_WS_PROTOCOL_ERROR, "bad close frame");
    if (len >= 2) {
        code = (unsigned)payload[0] << 8 | payload[1];
        if (!forum_ws_close_code_valid(code))
            return protocol_error(ws, FORUM_WS_PROTOCOL_ERROR, "bad close code");
        if (!forum_utf8_valid((const char *)payload + 2, len - 2))
            return protocol_error(ws, FORUM_WS_INVALID_PAYLOAD, "close reason is not UTF-8");
    }
    if (ws->closing_since_ms == 0) {
        /* the peer starts the closing handshake: answer at once, with its code */
        ws->closing_since_ms = forum_mono_ms();
        discard_unsent(ws);
        queue_close(ws, code, "");
    }
    return end_reading(ws);
}

/*
 * Answers a ping. Only the newest unanswered ping gets its pong (RFC 6455 5.5.3): a peer that pings
 * without reading grows nothing, and pongs count against the send queue's bound like any frame.
 */
static void queue_pong(forum_ws_t *ws, const uint8_t *payload, size_t len)
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

/* Handles one whole frame; returns 1 when `ws` is gone. */
static int on_frame(forum_ws_t *ws, const forum_ws_frame_t *f, uint8_t *payload)
{
    size_t len = (size_t)f->length;

    switch (f->opcode) {
    case FORUM_WS_PING:
        queue_pong(ws, payload, len);
        return 0;
    case FORUM_WS_PONG:
        return 0;
    case FORUM_WS_CLOSE:
        return on_close_frame(ws, payload, len);
    default:
        break;
    }
    if (f->fin && ws->frag_opcode == 0) {
        on_message(ws, f->opcode, (const char *)payload, len);
        return 0;
    }
    if (ws->frag_opcode == 0)
        ws->frag_opcode = f->opcode;
    if (len != 0) {
        if (ws->frag_len + len > ws->frag_cap) {
            /* doubling: a message in many small fragments costs linear time */
            size_t cap = ws->frag_cap == 0 ? 1024 : ws->frag_cap;
            while (cap < ws->frag_len + len)
                cap *= 2;
            if ((ws->frag = realloc(ws->frag, cap)) == NULL)
                h2o_fatal("no memory");
            ws->frag_cap = cap;
        }
        memcpy(ws->frag + ws->frag_len, payload, len);
        ws->frag_len += len;
    }
    if (f->fin) {
        on_message(ws, ws->frag_opcode, ws->frag, ws->frag_len);
        free(ws->frag);
        ws->frag = NULL;
        ws->frag_len = ws->frag_cap = 0;
        ws->frag_opcode = 0;
    }
    return 0;
}

/* Reads the whole frames in the socket's input; returns 1 when `ws` is gone. */
static int read_frames(forum_ws_t *ws)
{
    while (!ws->read_done) {
        h2o_buffer_t *in = ws->sock->input;
        forum_ws_frame_t f;
        int header_len = forum_ws_frame_parse((const uint8_t *)in->bytes, in->size, &f);
        uint8_t *payload;

        if (header_len == 0)
            break;
        if (header_len < 0)
            return protocol_error(ws, -header_len, "protocol error");
        if (f.opcode < FORUM_WS_CLOSE) {
            if ((f.opcode == FORUM_WS_CONTINUATION) != (ws->frag_opcode != 0))
                return protocol_error(ws, FORUM_WS_PROTOCOL_ERROR, "unexpected continuation");
            if (f.length > config->limits.ws_message_size - ws->frag_len)
                return protocol_error(ws, FORUM_WS_MESSAGE_TOO_BIG, "message too big");
        }
        if (in->size - (size_t)header_len < f.length)
            break; /* the rest of the frame is still to come */
        payload = (uint8_t *)in->bytes + header_len;
        forum_ws_unmask(payload, (size_t)f.length, f.mask);
        ws->last_recv_ms = forum_mono_ms();
        if (on_frame(ws, &f, payload))
            return 1;
        /* only now: consuming the last byte frees the buffer (an idle connection keeps none) */
        h2o_buffer_consume(&ws->sock->input, (size_t)header_len + (size_t)f.length);
    }
    return 0;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    forum_ws_t *ws = sock->data;

    if (err != NULL) {
        destroy(ws);
        return;
    }
    read_frames(ws);
}

/* --- connections --- */

static void on_upgraded(void *data, h2o_socket_t *sock, size_t reqsize)
{
    forum_ws_t *ws = data;

    if (sock == NULL) {
        destroy(ws);
        return;
    }
    ws->sock = sock;
    sock->data = ws;
    h2o_buffer_consume(&sock->input, reqsize);
    h2o_socket_read_start(sock, on_read);
    if (read_frames(ws)) /* frames that came with the request */
        return;
    write_queued(ws);
}

static void accept_key(char *dst, const char *client_key)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t src[24 + sizeof(guid) - 1], digest[SHA_DIGEST_LENGTH];
    memcpy(src, client_key, 24);
    memcpy(src + 24, guid, sizeof(guid) - 1);
    SHA1(src, sizeof(src), digest);
    h2o_base64_encode(dst, digest, sizeof(digest), 0);
}

void forum_hub_upgrade(h2o_req_t *req, const char *client_key, const forum_session_t *session, const char *query)
{
    forum_ws_t *ws = calloc(1, sizeof(*ws));
    char accept[32];
    user_entry_t *u;
    int first;

    if (ws == NULL)
        h2o_fatal("no memory");
    accept_key(accept, client_key);
    req->res.status = 101;
    req->res.reason = "Switching Protocols";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL, accept, strlen(accept));
    h2o_http1_upgrade(req, NULL, 0, on_upgraded, ws);

    memcpy(ws->session, session->hash, sizeof(ws->session));
    ws->session_expires_ms = session->expires_ms;
    ws->last_recv_ms = ws->last_ping_ms = forum_mono_ms();

    if ((u = find_user(session->user_id)) == NULL)
        u = add_user(session->user_id);
    first = u->num_conns++ == 0;
    ws->user = u;
    h2o_linklist_insert(&u->conns, &ws->of_user);
    h2o_linklist_insert(&all_conns, &ws->all);
    ++num_conns;

    /* the hello frame comes first; plugins add their members to it */
    yajl_gen g = forum_json_gen();
    forum_event_t hello = {"ws.hello", u->id, ws, g, query};
    yajl_gen_map_open(g);
    forum_json_str(g, "type");
    forum_json_str(g, "hello");
    forum_plugins_emit(&hello);
    yajl_gen_map_close(g);
    send_gen(ws, g);
    yajl_gen_free(g);

    forum_event_t open = {"ws.open", u->id, ws, NULL, query};
    forum_plugins_emit(&open);
    if (first)
        publish_presence(u->id, 1);
}

void forum_hub_close_session(int64_t user_id, const uint8_t *hash, int code, const char *reason)
{
    user_entry_t *u = find_user(user_id);
    if (u == NULL)
        return;
    for (h2o_linklist_t *n = u->conns.next; n != &u->conns; n = n->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, n);
        if (memcmp(ws->session, hash, sizeof(ws->session)) == 0)
            begin_close(ws, code, reason, 1);
    }
}

static void on_tick(uv_timer_t *timer)
{
    int64_t now = forum_mono_ms(), wall = forum_now_ms();
    h2o_linklist_t *n, *next;
    (void)timer;

    for (n = all_conns.next; n != &all_conns; n = next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n);
        next = n->next;
        if (ws->sock == NULL)
            continue; /* the 101 is still being written; h2o owns it until then */
        if (ws->closing_since_ms != 0) {
            if (now - ws->closing_since_ms >= CLOSE_GRACE_MS)
                destroy(ws); /* the peer never completed the closing handshake */
            continue;
        }
        if (now - ws->last_recv_ms >= config->limits.ws_idle_timeout_ms) {
            begin_close(ws, FORUM_WS_GOING_AWAY, "idle timeout", 0);
        } else if (wall >= ws->session_expires_ms) {
            begin_close(ws, FORUM_WS_POLICY_VIOLATION, "session expired", 1);
        } else if (ws->over_since_ms != 0) {
            if (ws->out_bytes <= config->limits.ws_send_queue)
                ws->over_since_ms = 0;
            else if (now - ws->over_since_ms >= config->limits.ws_slow_grace_ms)
                begin_close(ws, FORUM_WS_POLICY_VIOLATION, "too slow", 0);
        }
        if (ws->closing_since_ms == 0 && now - ws->last_ping_ms >= config->limits.ws_ping_interval_ms) {
            ws->last_ping_ms = now;
            enqueue(ws, ping_frame);
        }
    }
}

void forum_hub_init(uv_loop_t *l, const forum_config_t *conf)
{
    unsigned tick;
    loop = l;
    config = conf;
    ping_frame = out_new(FORUM_WS_PING, NULL, 0);
    uv_idle_init(loop, &flusher);
    uv_timer_init(loop, &ticker);
    tick = conf->limits.ws_ping_interval_ms / 4;
    if (tick > 1000)
        tick = 1000;
    if (tick < 10)
        tick = 10;
    uv_timer_start(&ticker, on_tick, tick, tick);
    uv_unref((uv_handle_t *)&ticker);
}

void forum_hub_shutdown(void)
{
    shutting_down = 1;
    for (h2o_linklist_t *n = all_conns.next; n != &all_conns; n = n->next)
        begin_close(H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n), FORUM_WS_GOING_AWAY, "server shutting down", 1);
}

/* Releases what the hub holds once the loop has stopped (every connection is gone by then). */
void forum_hub_dispose(void)
{
    uv_close((uv_handle_t *)&flusher, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    out_release(ping_frame);
    ping_frame = NULL;
    free(users);
    users = NULL;
    users_cap = 0;
}
