/*
 * The hub owns every WebSocket connection: per user the set of their connections (presence), the
 * publish paths, the deferred flush, pings, idle and slow-peer timeouts.
 *
 * h2o's WebSocket layer must never be re-entered: h2o_websocket_proceed is called only from the
 * flush (an idle handle, once per connection per loop turn), never from inside a connection's own
 * callback. A connection is freed only from its `cb(conn, NULL)` or from a timer, never while h2o
 * is inside one of its callbacks.
 */
#include <stdlib.h>
#include <string.h>
#include <h2o/websocket.h>
#include "forum.h"

typedef struct user_entry user_entry_t;

struct forum_ws {
    h2o_websocket_conn_t *conn;
    user_entry_t *user;
    uint8_t session[FORUM_SESSION_HASH_LEN];
    int64_t session_expires_ms;
    h2o_linklist_t of_user; /* user_entry_t.conns */
    h2o_linklist_t all;     /* every connection */
    h2o_linklist_t pending; /* waiting for the flush */
    int64_t last_recv_ms;
    int64_t last_ping_ms;
    int64_t over_since_ms; /* since when the send queue has been over its bound, 0 if not */
    int64_t closing_since_ms;
    /* a close that waits for the frames queued before it (wslay sends control frames first) */
    uint16_t pending_close_code;
    const char *pending_close_reason; /* a string literal */
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

static void schedule_flush(forum_ws_t *ws)
{
    if (h2o_linklist_is_linked(&ws->pending))
        return;
    if (h2o_linklist_is_empty(&pending))
        uv_idle_start(&flusher, on_flush);
    h2o_linklist_insert(&pending, &ws->pending);
}

static void queue_pending_close(forum_ws_t *ws)
{
    if (ws->pending_close_code == 0 || wslay_event_get_queued_msg_count(ws->conn->ws_ctx) != 0)
        return;
    wslay_event_queue_close(ws->conn->ws_ctx, ws->pending_close_code, (const uint8_t *)ws->pending_close_reason,
                            strlen(ws->pending_close_reason));
    ws->pending_close_code = 0;
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
        queue_pending_close(ws);
        /* before the 101 is written the connection has no socket; it flushes itself once it has */
        if (ws->conn->sock != NULL)
            h2o_websocket_proceed(ws->conn); /* may free ws */
    }
    if (h2o_linklist_is_empty(&pending))
        uv_idle_stop(&flusher);
}

/*
 * Starts the closing handshake. With `after_queued`, the frames already queued go out first (an error
 * frame that explains the close, the last messages before a shutdown); the peer then has
 * CLOSE_GRACE_MS to answer before the connection is dropped.
 */
static void begin_close(forum_ws_t *ws, int code, const char *reason, int after_queued)
{
    if (ws->closing_since_ms != 0)
        return;
    ws->closing_since_ms = forum_mono_ms();
    if (after_queued) {
        ws->pending_close_code = (uint16_t)code;
        ws->pending_close_reason = reason;
        queue_pending_close(ws);
    } else {
        wslay_event_queue_close(ws->conn->ws_ctx, (uint16_t)code, (const uint8_t *)reason, strlen(reason));
    }
    schedule_flush(ws);
}

void forum_hub_send(forum_ws_t *ws, const char *json, size_t len, int flags)
{
    size_t queued;
    if (ws->closing_since_ms != 0)
        return;
    queued = wslay_event_get_queued_msg_length(ws->conn->ws_ctx);
    if (queued > config->limits.ws_send_queue) {
        if (flags & FORUM_PUB_EPHEMERAL)
            return; /* typing and the like: the first to go under pressure */
        if (ws->over_since_ms == 0)
            ws->over_since_ms = forum_mono_ms();
        if (queued > 4 * config->limits.ws_send_queue) {
            begin_close(ws, WSLAY_CODE_POLICY_VIOLATION, "too slow", 0);
            return;
        }
    }
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)json, len};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &msg) == 0)
        schedule_flush(ws);
}

void forum_hub_publish_user(int64_t user_id, const char *json, size_t len, int flags)
{
    user_entry_t *u = find_user(user_id);
    if (u == NULL)
        return;
    for (h2o_linklist_t *n = u->conns.next; n != &u->conns; n = n->next)
        forum_hub_send(H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, n), json, len, flags);
}

void forum_hub_publish_user_except(int64_t user_id, const char *json, size_t len, int flags, forum_ws_t *const *except, size_t n)
{
    user_entry_t *u = find_user(user_id);
    if (u == NULL)
        return;
    for (h2o_linklist_t *node = u->conns.next; node != &u->conns; node = node->next) {
        forum_ws_t *ws = H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, node);
        size_t i = 0;
        while (i != n && except[i] != ws)
            ++i;
        if (i == n)
            forum_hub_send(ws, json, len, flags);
    }
}

void forum_hub_publish_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags)
{
    static uint64_t call;
    ++call;
    for (size_t i = 0; i != n; ++i) {
        user_entry_t *u = find_user(ids[i]);
        if (u == NULL || u->published == call)
            continue; /* offline, or listed twice */
        u->published = call;
        for (h2o_linklist_t *node = u->conns.next; node != &u->conns; node = node->next)
            forum_hub_send(H2O_STRUCT_FROM_MEMBER(forum_ws_t, of_user, node), json, len, flags);
    }
}

void forum_hub_publish_all(const char *json, size_t len, int flags)
{
    for (h2o_linklist_t *n = all_conns.next; n != &all_conns; n = n->next)
        forum_hub_send(H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n), json, len, flags);
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
    return wslay_event_get_queued_msg_length(ws->conn->ws_ctx);
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

/* Frees a connection from outside h2o's callbacks (a timer). */
static void drop(forum_ws_t *ws)
{
    detach(ws);
    h2o_websocket_close(ws->conn);
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
        begin_close(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "not JSON", 1);
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

static void on_ws_message(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    forum_ws_t *ws = conn->data;

    if (arg == NULL) {
        /* the connection is gone: h2o is done with it once we close it */
        detach(ws);
        h2o_websocket_close(conn);
        free(ws);
        return;
    }
    ws->last_recv_ms = forum_mono_ms();
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (ws->closing_since_ms == 0)
            on_text(ws, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        forum_hub_send_error(ws, "bad_request", "binary frames are not accepted", NULL);
        begin_close(ws, WSLAY_CODE_UNSUPPORTED_DATA, "text frames only", 1);
        break;
    default:
        break; /* ping (answered by wslay), pong, close */
    }
}

/* --- connections --- */

void forum_hub_upgrade(h2o_req_t *req, const char *client_key, const forum_session_t *session, const char *query)
{
    forum_ws_t *ws = calloc(1, sizeof(*ws));
    user_entry_t *u;
    int first;

    ws->conn = h2o_upgrade_to_websocket(req, client_key, ws, on_ws_message);
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, config->limits.ws_message_size);
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
        if (ws->conn->sock == NULL)
            continue; /* the 101 is still being written; h2o owns it until then */
        if (ws->closing_since_ms != 0) {
            if (now - ws->closing_since_ms >= CLOSE_GRACE_MS) {
                drop(ws); /* the peer never completed the closing handshake */
            } else if (ws->pending_close_code != 0) {
                queue_pending_close(ws);
                schedule_flush(ws);
            }
            continue;
        }
        if (now - ws->last_recv_ms >= config->limits.ws_idle_timeout_ms) {
            begin_close(ws, WSLAY_CODE_GOING_AWAY, "idle timeout", 0);
        } else if (wall >= ws->session_expires_ms) {
            begin_close(ws, WSLAY_CODE_POLICY_VIOLATION, "session expired", 1);
        } else if (ws->over_since_ms != 0) {
            if (wslay_event_get_queued_msg_length(ws->conn->ws_ctx) <= config->limits.ws_send_queue)
                ws->over_since_ms = 0;
            else if (now - ws->over_since_ms >= config->limits.ws_slow_grace_ms)
                begin_close(ws, WSLAY_CODE_POLICY_VIOLATION, "too slow", 0);
        }
        if (ws->closing_since_ms == 0 && now - ws->last_ping_ms >= config->limits.ws_ping_interval_ms) {
            struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
            ws->last_ping_ms = now;
            wslay_event_queue_msg(ws->conn->ws_ctx, &ping);
            schedule_flush(ws);
        }
    }
}

void forum_hub_init(uv_loop_t *l, const forum_config_t *conf)
{
    unsigned tick;
    loop = l;
    config = conf;
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
        begin_close(H2O_STRUCT_FROM_MEMBER(forum_ws_t, all, n), WSLAY_CODE_GOING_AWAY, "server shutting down", 1);
}

/* Releases what the hub holds once the loop has stopped (every connection is gone by then). */
void forum_hub_dispose(void)
{
    uv_close((uv_handle_t *)&flusher, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    free(users);
    users = NULL;
    users_cap = 0;
}
