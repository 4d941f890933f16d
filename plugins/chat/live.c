/*
 * The WebSocket side of chat: message.send, typing and read frames; the hello's last_message_id;
 * the replay of `/ws?after=ID`; typing stops when a typist sends or leaves.
 *
 * Replay and live delivery never interleave: while a connection is catching up it is left out of live
 * delivery, and its replay reads on from the database, where every delivered message already is. The
 * replay ends, on the loop, at a read that finds nothing newer, so nothing can slip in between.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

enum {
    REPLAY_BATCH = 200,
    REPLAY_QUEUE_BYTES = 256 * 1024, /* pause a replay while this much is still queued to the client */
    TYPING_REFRESH_MS = 1000,        /* an unchanged typing state is relayed at most this often */
    TYPING_BUCKETS = 1024,
};

/* --- replays in progress --- */

typedef struct replay {
    struct replay *next;
    forum_ws_t *ws; /* NULL once the connection is gone (a timer may still hold the replay) */
    int64_t user;
    int64_t after;
    int timer_pending;
} replay_t;

static replay_t *replays;

static void unlink_replay(replay_t *r)
{
    replay_t **p = &replays;
    while (*p != NULL && *p != r)
        p = &(*p)->next;
    if (*p == r)
        *p = r->next;
}

/* The connections of `user` that are still catching up, for publish_user_except. */
static size_t catching_up(int64_t user, forum_ws_t **out, size_t max)
{
    size_t n = 0;
    for (replay_t *r = replays; r != NULL && n < max; r = r->next)
        if (r->user == user && r->ws != NULL)
            out[n++] = r->ws;
    return n;
}

static void send_gen(forum_ws_t *ws, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    api->ws_send(ws, (const char *)buf, len, 0);
}

static void replay_step(void *arg);

/* Sends batches until caught up (the replay ends) or the client's queue is full (it continues shortly). */
static void replay_run(replay_t *r)
{
    for (;;) {
        int64_t ids[REPLAY_BATCH];
        size_t n = 0;
        forum_stmt_t *s = api->db_stmt("SELECT message_id FROM message_index WHERE user_id = ? AND message_id > ? "
                                       "ORDER BY message_id LIMIT ?");
        api->db_bind_int(s, 1, r->user);
        api->db_bind_int(s, 2, r->after);
        api->db_bind_int(s, 3, REPLAY_BATCH);
        while (n < REPLAY_BATCH && api->db_step(s) == FORUM_DB_ROW)
            ids[n++] = api->db_col_int(s, 0);
        for (size_t i = 0; i != n; ++i) {
            yajl_gen g = chat_message_frame(ids[i], r->user);
            send_gen(r->ws, g);
            yajl_gen_free(g);
            r->after = ids[i];
        }
        if (n < REPLAY_BATCH) {
            unlink_replay(r);
            free(r);
            return;
        }
        if (api->ws_queued(r->ws) > REPLAY_QUEUE_BYTES && api->defer(chat_self, 5, replay_step, r) == 0) {
            r->timer_pending = 1;
            return;
        }
    }
}

static void replay_step(void *arg)
{
    replay_t *r = arg;
    r->timer_pending = 0;
    if (r->ws == NULL) {
        free(r);
        return;
    }
    replay_run(r);
}

/* The `after` parameter of the /ws query string, or -1 when absent or not a number. */
static int64_t query_after(const char *query)
{
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > 6 && memcmp(p, "after=", 6) == 0 && len - 6 < 20) {
            char digits[24];
            memcpy(digits, p + 6, len - 6);
            digits[len - 6] = '\0';
            if (strcmp(digits, "0") == 0)
                return 0;
            int64_t v = pu_parse_id(digits);
            return v > 0 ? v : -1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return -1;
}

static void on_open(const forum_event_t *ev)
{
    int64_t after = query_after(ev->query);
    if (after < 0)
        return;
    replay_t *r = calloc(1, sizeof(*r));
    r->ws = ev->ws;
    r->user = ev->user_id;
    r->after = after;
    r->next = replays;
    replays = r;
    replay_run(r);
}

static void forget_connection(forum_ws_t *ws);

static void on_close(const forum_event_t *ev)
{
    forget_connection(ev->ws);
    for (replay_t *r = replays, *next; r != NULL; r = next) {
        next = r->next;
        if (r->ws == ev->ws) {
            unlink_replay(r);
            r->ws = NULL;
            if (!r->timer_pending)
                free(r);
        }
    }
}

static void on_hello(const forum_event_t *ev)
{
    pu_key_int(ev->gen, "last_message_id", chat_last_message_id(ev->user_id));
}

/* --- typing --- */

typedef struct typing {
    struct typing *next;
    int64_t from, to;
    int64_t relayed_ms;
    int active;
} typing_t;

static typing_t *typing_buckets[TYPING_BUCKETS];

static typing_t **typing_slot(int64_t from, int64_t to)
{
    uint64_t h = ((uint64_t)from * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)to * 0xC2B2AE3D27D4EB4Full);
    return &typing_buckets[(h >> 40) % TYPING_BUCKETS];
}

/* The typing state of `from` toward `to`, or NULL. */
static typing_t *typing_lookup(int64_t from, int64_t to)
{
    for (typing_t *t = *typing_slot(from, to); t != NULL; t = t->next)
        if (t->from == from && t->to == to)
            return t;
    return NULL;
}

/* The typing state of `from` toward `to`, created on first use; removed when `from` goes offline. */
static typing_t *typing_find(int64_t from, int64_t to)
{
    typing_t **slot = typing_slot(from, to), *t = typing_lookup(from, to);
    if (t != NULL)
        return t;
    t = calloc(1, sizeof(*t));
    t->from = from;
    t->to = to;
    t->next = *slot;
    *slot = t;
    return t;
}

static void typing_remove(typing_t *t)
{
    typing_t **p = typing_slot(t->from, t->to);
    while (*p != t)
        p = &(*p)->next;
    *p = t->next;
    free(t);
}

static void relay_typing(int64_t from, int64_t to, int active)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "typing");
    pu_key_int(g, "from", from);
    pu_str(g, "active");
    yajl_gen_bool(g, active);
    yajl_gen_map_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_user(to, (const char *)buf, len, FORUM_PUB_EPHEMERAL);
    yajl_gen_free(g);
}

/*
 * Relays a typing state unless it repeats the state relayed less than TYPING_REFRESH_MS ago: a client
 * that floods typing frames is thinned, not disconnected. `force` relays regardless (a message was sent).
 */
static void typing_update(int64_t from, int64_t to, int active, int force)
{
    int64_t now = api->now_ms();
    typing_t *t = typing_find(from, to);
    if (!force && t->relayed_ms != 0 && t->active == active && now - t->relayed_ms < TYPING_REFRESH_MS)
        return;
    relay_typing(from, to, active);
    t->active = active;
    t->relayed_ms = now;
}

static void on_offline(const forum_event_t *ev)
{
    for (size_t i = 0; i != TYPING_BUCKETS; ++i) {
        for (typing_t *t = typing_buckets[i], *next; t != NULL; t = next) {
            next = t->next;
            if (t->from != ev->user_id)
                continue;
            if (t->active)
                relay_typing(t->from, t->to, 0); /* their last connection closed: they stopped typing */
            typing_remove(t);
        }
    }
}

/* --- frames --- */

static yajl_val member(yajl_val frame, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(frame, path, yajl_t_any);
}

/* The other user named by `key`: an existing user other than `me`; 0 after sending an error. */
static int64_t frame_user(forum_ws_t *ws, yajl_val frame, const char *key, int64_t me, const char *ref)
{
    yajl_val v = member(frame, key);
    if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0) {
        api->ws_error(ws, "bad_request", v == NULL ? "a user id is required" : "must be a user id", ref);
        return 0;
    }
    if (YAJL_GET_INTEGER(v) == me || !chat_user_exists(YAJL_GET_INTEGER(v))) {
        api->ws_error(ws, "validation", YAJL_GET_INTEGER(v) == me ? "not to yourself" : "no such user", ref);
        return 0;
    }
    return YAJL_GET_INTEGER(v);
}

void chat_deliver(const chat_message_t *m)
{
    forum_ws_t *skip[64];
    const unsigned char *buf;
    size_t len, n;
    yajl_gen g;

    /* a message ends its sender's typing (only a typist is told to stop: most messages need no extra frame) */
    typing_t *t = typing_lookup(m->from, m->to);
    if (t != NULL && t->active)
        typing_update(m->from, m->to, 0, 1);
    g = chat_frame_of(m, m->from);
    yajl_gen_get_buf(g, &buf, &len);
    n = catching_up(m->from, skip, 64);
    api->publish_user_except(m->from, (const char *)buf, len, 0, skip, n);
    yajl_gen_free(g);
    g = chat_frame_of(m, m->to);
    yajl_gen_get_buf(g, &buf, &len);
    n = catching_up(m->to, skip, 64);
    api->publish_user_except(m->to, (const char *)buf, len, 0, skip, n);
    yajl_gen_free(g);
}

/*
 * --- sends of one loop turn, stored in one transaction ---
 *
 * message.send frames are validated at once and queued; a timer of 0 ms runs after every frame the
 * loop has read in this turn, stores the whole batch in one transaction, and only then delivers each
 * message, in order. A client_id its sender used before, in an earlier batch or earlier in this one,
 * stores nothing and is answered with the message it named.
 */

enum { SEND_BATCH_MAX = 256 };

typedef struct queued_send {
    chat_message_t m; /* id is 0 until stored; body and client_id are owned copies */
    size_t body_len;
    forum_ws_t *ws; /* the sender's connection, NULL once it closes */
    int repeat;     /* the client_id was used before: m.id is that message */
    char created_at[32];
} queued_send_t;

typedef int64_t (*store_fn)(int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id,
                            const char *created_at, int *repeat);

static queued_send_t sends[SEND_BATCH_MAX];
static size_t num_sends;
static int flush_scheduled;

static int64_t store_one(queued_send_t *q, store_fn store)
{
    return q->m.id = store(q->m.from, q->m.to, q->m.body, q->body_len, q->m.client_id, q->created_at, &q->repeat);
}

static int store_batch(void)
{
    if (api->db_begin() != 0)
        return 0;
    for (size_t i = 0; i != num_sends; ++i)
        if (store_one(&sends[i], chat_store_row) == 0)
            goto Error;
    if (api->db_commit() == 0)
        return 1;
Error:
    api->db_rollback();
    for (size_t i = 0; i != num_sends; ++i)
        sends[i].m.id = 0;
    return 0;
}

static void store_and_deliver(void)
{
    if (num_sends == 0)
        return;
    if (!store_batch()) {
        /* one bad message must not cost the others: store each on its own */
        for (size_t i = 0; i != num_sends; ++i)
            store_one(&sends[i], chat_store);
    }
    for (size_t i = 0; i != num_sends; ++i) {
        queued_send_t *q = &sends[i];
        if (q->m.id == 0) {
            if (q->ws != NULL)
                api->ws_error(q->ws, "internal", "the message could not be stored", q->m.client_id);
        } else if (!q->repeat) {
            chat_deliver(&q->m);
        } else if (q->ws != NULL) {
            /* a repeat: nothing new was stored; the sender gets the stored message again */
            yajl_gen g = chat_message_frame(q->m.id, q->m.from);
            send_gen(q->ws, g);
            yajl_gen_free(g);
        }
    }
    for (size_t i = 0; i != num_sends; ++i) {
        free((char *)sends[i].m.body);
        free((char *)sends[i].m.client_id);
    }
    num_sends = 0;
}

static void flush_sends(void *arg)
{
    (void)arg;
    flush_scheduled = 0;
    store_and_deliver();
}

static void queue_send(forum_ws_t *ws, int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id)
{
    queued_send_t *q;
    if (num_sends == SEND_BATCH_MAX)
        store_and_deliver(); /* a full batch is stored now; its timer finds the next one */
    q = &sends[num_sends++];
    memset(q, 0, sizeof(*q));
    q->m.from = from;
    q->m.to = to;
    q->m.body = strndup(body, body_len);
    q->m.client_id = strdup(client_id);
    q->m.created_at = q->created_at;
    q->body_len = body_len;
    q->ws = ws;
    api->format_time(api->now_ms(), q->created_at);
    if (!flush_scheduled && api->defer(chat_self, 0, flush_sends, NULL) == 0)
        flush_scheduled = 1;
    if (!flush_scheduled)
        store_and_deliver(); /* no timer to be had: store at once */
}

static void forget_connection(forum_ws_t *ws)
{
    for (size_t i = 0; i != num_sends; ++i)
        if (sends[i].ws == ws)
            sends[i].ws = NULL;
}

static void on_send(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    yajl_val cid = member(frame, "client_id"), body = member(frame, "body");
    forum_text_info_t info;
    const char *text, *ref;
    size_t len, cid_len;

    if (cid == NULL || !YAJL_IS_STRING(cid)) {
        api->ws_error(ws, "bad_request", "client_id is required (a string)", "message.send");
        return;
    }
    /* client_id is opaque: taken as sent, counted in characters */
    ref = cid->u.string;
    cid_len = strlen(ref);
    size_t cid_chars = 0;
    for (size_t i = 0; i != cid_len; ++i)
        cid_chars += ((unsigned char)ref[i] & 0xC0) != 0x80;
    if (cid_chars == 0 || cid_chars > CHAT_CLIENT_ID_MAX) {
        api->ws_error(ws, "validation", "client_id must be 1 to 64 characters", "message.send");
        return;
    }
    if ((to = frame_user(ws, frame, "to", me, ref)) == 0)
        return;
    if (body == NULL || !YAJL_IS_STRING(body)) {
        api->ws_error(ws, "bad_request", "body is required (a string)", ref);
        return;
    }
    len = strlen(body->u.string);
    text = api->text_trim(body->u.string, &len, &info);
    if (info.chars == 0 || info.chars > CHAT_BODY_MAX) {
        api->ws_error(ws, "validation", "body must be 1 to 4000 characters", ref);
        return;
    }
    queue_send(ws, me, to, text, len, ref);
}

static void on_typing(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    yajl_val active = member(frame, "active");
    if ((to = frame_user(ws, frame, "to", me, "typing")) == 0)
        return;
    if (active == NULL || !(YAJL_IS_TRUE(active) || YAJL_IS_FALSE(active))) {
        api->ws_error(ws, "bad_request", "active must be true or false", "typing");
        return;
    }
    typing_update(me, to, YAJL_IS_TRUE(active), 0);
}

static void on_read(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), with;
    yajl_val up_to = member(frame, "up_to");
    if ((with = frame_user(ws, frame, "with", me, "read")) == 0)
        return;
    if (up_to == NULL || !YAJL_IS_INTEGER(up_to) || YAJL_GET_INTEGER(up_to) < 0) {
        api->ws_error(ws, "bad_request", "up_to must be a message id", "read");
        return;
    }
    if (!chat_mark_read(me, with, YAJL_GET_INTEGER(up_to)))
        api->ws_error(ws, "internal", "the read mark could not be stored", "read");
}

int chat_live_init(forum_plugin_t *p)
{
    return api->on_frame(p, "message.send", on_send) || api->on_frame(p, "typing", on_typing) || api->on_frame(p, "read", on_read) ||
           api->on_event(p, "ws.hello", on_hello) || api->on_event(p, "ws.open", on_open) || api->on_event(p, "ws.close", on_close) ||
           api->on_event(p, "user.offline", on_offline);
}

void chat_live_fini(void)
{
    store_and_deliver(); /* nothing is left while the batch's timer pins this generation; kept for safety */
    for (size_t i = 0; i != TYPING_BUCKETS; ++i) {
        while (typing_buckets[i] != NULL) {
            typing_t *t = typing_buckets[i];
            typing_buckets[i] = t->next;
            free(t);
        }
    }
    while (replays != NULL) {
        replay_t *r = replays;
        replays = r->next;
        free(r);
    }
}
