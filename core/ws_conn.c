/*
 * A WebSocket connection's life: the upgrade, reading and parsing frames, handing text frames to the
 * plugin that registered their type, the closing handshake, pings, idle and slow-peer timeouts.
 * A connection is freed only from its own socket callbacks or from a timer, never from a publish.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "ws_conn.h"
#include <h2o/http1.h>
#include "ws_frame.h"

static const forum_config_t *config;
static uv_timer_t ticker;
static ws_out_t *ping_frame; /* shared by every connection's pings */

enum { CLOSE_GRACE_MS = 3000 };

/*
 * Starts the closing handshake. With `after_queued`, the frames already queued go out first (an error
 * frame that explains the close, the last messages before a shutdown); otherwise they are dropped.
 * The peer then has CLOSE_GRACE_MS to answer before the connection is dropped.
 */
void begin_close(forum_ws_t *ws, int code, const char *reason, int after_queued)
{
    if (ws->closing_since_ms != 0)
        return;
    ws->closing_since_ms = forum_mono_ms();
    ws->drain_wanted = 0; /* nothing more goes out: a paced sender is not woken for a closing connection */
    if (!after_queued)
        discard_unsent(ws);
    queue_close(ws, (unsigned)code, reason);
}

static void ws_free(forum_ws_t *ws)
{
    free(ws->out);
    free(ws->frag);
    free(ws);
}

void ws_hold(forum_ws_t *ws)
{
    ++ws->fiber_refs;
}

void ws_release(forum_ws_t *ws)
{
    if (--ws->fiber_refs == 0 && ws->destroyed)
        ws_free(ws);
}

/* The plugins hear of the close (ws.close) on a fiber of its own: a handler may be suspended past destroy(). */
static void detach_on_fiber(void *arg)
{
    forum_ws_t *ws = arg;
    detach(ws);
    ws_release(ws);
}

/* Frees a connection. Called only from its own socket callbacks or from a timer, never from a publish. */
void destroy(forum_ws_t *ws)
{
    if (ws->dead)
        return;
    ws->dead = 1;
    ws_hold(ws);
    /*
     * A plugin never hears of a connection after its ws.close: a handler suspended in one of its frames (a data
     * call, a wait) may still queue work naming it when it resumes, so the close waits for that handler's end.
     * Meanwhile the connection is dead: nothing is read from it or written to it.
     */
    if (ws->in_frame)
        ws->close_owed = 1;
    else
        forum_fiber_run(detach_on_fiber, ws);
    if (ws->sock != NULL) {
        ws->read_paused = 0;
        h2o_socket_close(ws->sock); /* a write under way is cancelled; its callback does not run */
        ws->sock = NULL;
    }
    ws->writing = 0;
    discard_unsent(ws);
    ws->destroyed = 1;
    if (ws->fiber_refs == 0)
        ws_free(ws);
}

/* --- receiving --- */

/* The `client_id`, else the `type`, of a frame: what an error frame names (API.md), or NULL. */
static const char *frame_ref(yajl_val frame)
{
    yajl_val v = forum_json_member(frame, "client_id");
    if (v == NULL || !YAJL_IS_STRING(v))
        v = forum_json_member(frame, "type");
    return v != NULL && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

static int read_frames(forum_ws_t *ws);
static void on_read(h2o_socket_t *sock, const char *err);

/*
 * Connections whose suspended handler has ended, to read on again from the loop (never from the fiber that
 * ended: the frames that waited would each run one level deeper on its stack).
 */
static forum_ws_t **to_resume;
static size_t num_to_resume, cap_to_resume;
static uv_idle_t resumer;

static void on_resume(uv_idle_t *idle)
{
    forum_ws_t **list = to_resume;
    size_t n = num_to_resume;
    uv_idle_stop(idle);
    to_resume = NULL;
    num_to_resume = cap_to_resume = 0;
    for (size_t i = 0; i != n; ++i) {
        forum_ws_t *ws = list[i];
        if (!ws->dead && ws->sock != NULL && ws->read_paused && !ws->in_frame) {
            ws->read_paused = 0;
            h2o_socket_read_start(ws->sock, on_read);
            read_frames(ws);
        }
        ws_release(ws);
    }
    free(list);
}

/* A handler has ended: if the frames behind it waited, they are read on the loop's next turn. */
static void frame_done(forum_ws_t *ws)
{
    ws->in_frame = 0;
    if (ws->close_owed) {
        ws->close_owed = 0;
        detach_on_fiber(ws); /* on the handler's fiber, which ends next */
        return;
    }
    if (!ws->read_paused || ws->dead)
        return;
    if (num_to_resume == cap_to_resume) {
        cap_to_resume = cap_to_resume == 0 ? 16 : cap_to_resume * 2;
        if ((to_resume = realloc(to_resume, cap_to_resume * sizeof(*to_resume))) == NULL)
            h2o_fatal("no memory");
    }
    ws_hold(ws);
    to_resume[num_to_resume++] = ws;
    uv_idle_start(&resumer, on_resume);
}

typedef struct {
    forum_ws_t *ws;
    yajl_val frame;
    forum_plugin_t *plugin;
    forum_frame_fn fn;
} frame_call_t;

static void frame_on_fiber(void *arg)
{
    frame_call_t *call = arg;
    forum_ws_t *ws = call->ws;
    call->fn(ws, call->frame);
    forum_plugin_unpin(call->plugin);
    yajl_tree_free(call->frame);
    free(call);
    frame_done(ws);
    ws_release(ws);
}

/* Hands a frame to its plugin; on a fiber, the next frames wait until this one's handler has ended. */
static void dispatch(forum_ws_t *ws, yajl_val frame, forum_plugin_t *plugin, forum_frame_fn fn)
{
    if (!forum_fiber_enabled()) {
        /* SQLite: nothing suspends, so the handler runs here and now, with nothing to keep for later */
        forum_plugin_pin(plugin);
        fn(ws, frame);
        forum_plugin_unpin(plugin);
        yajl_tree_free(frame);
        return;
    }
    frame_call_t *call = malloc(sizeof(*call));
    if (call == NULL)
        h2o_fatal("no memory");
    *call = (frame_call_t){ws, frame, plugin, fn};
    forum_plugin_pin(plugin);
    ws_hold(ws);
    ws->in_frame = 1;
    forum_fiber_run(frame_on_fiber, call);
}

static void on_text(forum_ws_t *ws, const char *data, size_t len)
{
    char err[256];
    int repaired;
    yajl_val frame, type;
    forum_plugin_t *plugin;
    forum_frame_fn fn;

    /* RFC 6455 8.1: a text message that is not UTF-8 fails the connection with 1007 */
    if (!forum_utf8_valid(data, len)) {
        forum_hub_send_error(ws, "bad_request", "a text frame must be UTF-8", NULL);
        begin_close(ws, FORUM_WS_INVALID_PAYLOAD, "not UTF-8", 1);
        return;
    }
    if ((frame = forum_json_parse_repaired(data, len, err, sizeof(err), &repaired)) == NULL) {
        forum_hub_send_error(ws, "bad_request", "a frame must be one JSON object", NULL);
        begin_close(ws, FORUM_WS_INVALID_PAYLOAD, "not JSON", 1);
        return;
    }
    if (repaired) {
        /* well-formed JSON whose escapes are not text (\u0000, a lone surrogate): refused, the connection stays */
        forum_hub_send_error(ws, "bad_request", "a string holds \\u0000 or an unpaired surrogate escape (not text)", frame_ref(frame));
    } else if (!YAJL_IS_OBJECT(frame) || (type = forum_json_member(frame, "type")) == NULL || !YAJL_IS_STRING(type)) {
        forum_hub_send_error(ws, "bad_request", "a frame must be a JSON object with a string \"type\"", NULL);
    } else if (strcmp(type->u.string, "ping") == 0) {
        static const char pong[] = "{\"type\":\"pong\"}";
        forum_hub_send(ws, pong, sizeof(pong) - 1, 0);
    } else if ((fn = forum_plugins_frame(type->u.string, strlen(type->u.string), &plugin)) == NULL) {
        forum_hub_send_error(ws, "bad_request", "unknown frame type", type->u.string);
    } else {
        dispatch(ws, frame, plugin, fn);
        return; /* the frame is the handler's until it ends */
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
    while (!ws->read_done && !ws->dead) {
        if (ws->in_frame) {
            /* a handler is suspended (PostgreSQL): the next frame waits for it, and so does the socket */
            if (!ws->read_paused) {
                ws->read_paused = 1;
                h2o_socket_read_stop(ws->sock);
            }
            break;
        }
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
    forum_conn_owned_by_hub(sock);
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

    first = attach(ws, session->user_id);
    u = ws->user;
    int64_t user_id = u->id;
    char *q = strdup(query); /* the request's memory may go while a handler is suspended */
    query = q;
    forum_replay_hold(ws, query); /* a message published while the hello is written comes after it, once */
    /* the plugins' hello and open handlers may suspend (PostgreSQL): frames wait until they are through */
    ws_hold(ws);
    ws->in_frame = 1;

    /* the hello frame comes first; plugins add their members to it */
    yajl_gen g = forum_json_gen();
    forum_event_t hello = {"ws.hello", user_id, ws, g, query};
    yajl_gen_map_open(g);
    forum_json_str(g, "type");
    forum_json_str(g, "hello");
    forum_json_str(g, "last_message_id");
    int64_t last_id = forum_replay_last_id(user_id);
    yajl_gen_integer(g, last_id);
    forum_plugins_emit(&hello);
    yajl_gen_map_close(g);
    send_gen(ws, g);
    yajl_gen_free(g);

    /* a connection that went meanwhile has had its ws.close: it must not be opened after it */
    if (!ws->dead) {
        forum_event_t open = {"ws.open", user_id, ws, NULL, query};
        forum_plugins_emit(&open);
    }
    if (!ws->dead)
        forum_replay_open(ws, user_id, query, last_id);
    if (first && !ws->dead)
        publish_presence(user_id, 1);
    free(q);
    frame_done(ws);
    ws_release(ws);
}

void forum_hub_replay_set(forum_ws_t *ws, int64_t after)
{
    ws->replaying = after >= 0;
    ws->replay_after = after >= 0 ? after : 0;
}

int64_t forum_hub_replay_get(forum_ws_t *ws)
{
    return ws->replaying ? ws->replay_after : -1;
}

static void drained_on_fiber(void *arg)
{
    forum_ws_t *ws = arg;
    forum_event_t ev = {"ws.drained", ws->user->id, ws, NULL, NULL};
    forum_replay_run(ws, ev.user_id);
    if (!ws->dead)
        forum_plugins_emit(&ev);
    ws_release(ws);
}

/* The replay goes on; then the current generations hear of it (a plugin pacing a sender of its own). */
void drained(forum_ws_t *ws)
{
    if (ws->dead)
        return;
    ws_hold(ws);
    forum_fiber_run(drained_on_fiber, ws);
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

void ws_conn_init(uv_loop_t *loop, const forum_config_t *conf)
{
    unsigned tick;
    config = conf;
    ping_frame = out_new(FORUM_WS_PING, NULL, 0);
    uv_timer_init(loop, &ticker);
    tick = conf->limits.ws_ping_interval_ms / 4;
    if (tick > 1000)
        tick = 1000;
    if (tick < 10)
        tick = 10;
    uv_timer_start(&ticker, on_tick, tick, tick);
    uv_unref((uv_handle_t *)&ticker);
    uv_idle_init(loop, &resumer);
}

void ws_conn_dispose(void)
{
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_close((uv_handle_t *)&resumer, NULL);
    out_release(ping_frame);
    ping_frame = NULL;
}
