/*
 * Typing indicators: a typist's state toward one other user, relayed to that user's connections,
 * thinned when repeated, stopped when the typist sends a message or goes offline.
 */
#include <stdlib.h>
#include "chat.h"

#define api chat_api

enum {
    TYPING_REFRESH_MS = 1000, /* an unchanged typing state is relayed at most this often */
    TYPING_BUCKETS = 1024,
};

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
    int64_t now = api->mono_ms(); /* intervals never on the wall clock, which can step back */
    typing_t *t = typing_find(from, to);
    if (!force && t->relayed_ms != 0 && t->active == active && now - t->relayed_ms < TYPING_REFRESH_MS)
        return;
    relay_typing(from, to, active);
    t->active = active;
    t->relayed_ms = now;
}

/* A message ends its sender's typing (only a typist is told to stop: most messages need no extra frame). */
void chat_typing_sent(int64_t from, int64_t to)
{
    typing_t *t = typing_lookup(from, to);
    if (t != NULL && t->active)
        typing_update(from, to, 0, 1);
}

void chat_typing_offline(const forum_event_t *ev)
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

void chat_typing_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    yajl_val active = chat_member(frame, "active");
    if ((to = chat_frame_user(ws, frame, "to", me, "typing")) == 0)
        return;
    if (active == NULL || !(YAJL_IS_TRUE(active) || YAJL_IS_FALSE(active))) {
        api->ws_error(ws, "bad_request", "active must be true or false", "typing");
        return;
    }
    typing_update(me, to, YAJL_IS_TRUE(active), 0);
}

void chat_typing_fini(void)
{
    for (size_t i = 0; i != TYPING_BUCKETS; ++i) {
        while (typing_buckets[i] != NULL) {
            typing_t *t = typing_buckets[i];
            typing_buckets[i] = t->next;
            free(t);
        }
    }
}
