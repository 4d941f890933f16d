/*
 * Typing indicators: a typist's state toward one other user, relayed to that user's connections,
 * thinned when repeated, stopped when the typist sends a message or goes offline.
 *
 * What is kept is bounded per connected user: each typist holds the states toward the last
 * TYPING_TARGETS_MAX users it typed to (a client that types to every account id pushes out its
 * oldest, whose target is told it stopped), and the typist's going offline walks only its own.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

enum {
    TYPING_REFRESH_MS = 1000, /* an unchanged typing state is relayed at most this often */
    TYPING_TARGETS_MAX = 64,  /* states kept per typist */
    TYPING_BUCKETS = 1024,
};

typedef struct typing {
    int64_t to;
    int64_t relayed_ms;
    int active;
} typing_t;

typedef struct typist {
    struct typist *next;
    int64_t from;
    size_t num, cap;
    typing_t *targets; /* least recently used first */
} typist_t;

static typist_t *typists[TYPING_BUCKETS];

static typist_t **typist_slot(int64_t from)
{
    return &typists[(((uint64_t)from * 0x9E3779B97F4A7C15ull) >> 40) % TYPING_BUCKETS];
}

/* The typist `from`, or NULL; with `create`, made on first use (NULL only when out of memory). */
static typist_t *typist_get(int64_t from, int create)
{
    typist_t **slot = typist_slot(from), *t;
    for (t = *slot; t != NULL; t = t->next)
        if (t->from == from)
            return t;
    if (!create || (t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    t->from = from;
    t->next = *slot;
    *slot = t;
    return t;
}

static void typist_free(typist_t *t)
{
    free(t->targets);
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

/* The index of the state toward `to` among `t`'s, or t->num when there is none. */
static size_t target_index(const typist_t *t, int64_t to)
{
    size_t i = 0;
    while (i != t->num && t->targets[i].to != to)
        ++i;
    return i;
}

/*
 * The state of `t` toward `to`, moved to the most recently used end, created when missing: the least
 * recently used goes when the typist already has TYPING_TARGETS_MAX (its target, if shown as typing, is
 * told it stopped: no later event would clear it). NULL only when out of memory.
 */
static typing_t *target_use(typist_t *t, int64_t to)
{
    size_t i = target_index(t, to);
    typing_t found = {.to = to};
    if (i != t->num) {
        found = t->targets[i];
    } else if (t->num == TYPING_TARGETS_MAX) {
        if (t->targets[0].active)
            relay_typing(t->from, t->targets[0].to, 0);
        i = 0;
    } else {
        if (t->num == t->cap) {
            size_t cap = t->cap == 0 ? 4 : t->cap * 2 > TYPING_TARGETS_MAX ? TYPING_TARGETS_MAX : t->cap * 2;
            typing_t *grown = realloc(t->targets, cap * sizeof(*grown));
            if (grown == NULL)
                return NULL;
            t->targets = grown;
            t->cap = cap;
        }
        i = t->num++;
    }
    memmove(t->targets + i, t->targets + i + 1, (t->num - 1 - i) * sizeof(*t->targets));
    t->targets[t->num - 1] = found;
    return &t->targets[t->num - 1];
}

/*
 * Relays a typing state unless it repeats the state relayed less than TYPING_REFRESH_MS ago: a client
 * that floods typing frames is thinned, not disconnected. `force` relays regardless (a message was sent).
 */
static void typing_update(typist_t *t, int64_t to, int active, int force)
{
    int64_t now = api->mono_ms(); /* intervals never on the wall clock, which can step back */
    typing_t *s = target_use(t, to);
    if (s == NULL) {
        relay_typing(t->from, to, active); /* nothing can be kept: relayed, unthinned */
        return;
    }
    if (!force && s->relayed_ms != 0 && s->active == active && now - s->relayed_ms < TYPING_REFRESH_MS)
        return;
    relay_typing(t->from, to, active);
    s->active = active;
    s->relayed_ms = now;
}

/* A message ends its sender's typing (only a typist is told to stop: most messages need no extra frame). */
void chat_typing_sent(int64_t from, int64_t to)
{
    typist_t *t = typist_get(from, 0);
    size_t i = t != NULL ? target_index(t, to) : 0;
    if (t != NULL && i != t->num && t->targets[i].active)
        typing_update(t, to, 0, 1);
}

void chat_typing_offline(const forum_event_t *ev)
{
    typist_t **p = typist_slot(ev->user_id), *t;
    while (*p != NULL && (*p)->from != ev->user_id)
        p = &(*p)->next;
    if ((t = *p) == NULL)
        return;
    *p = t->next;
    for (size_t i = 0; i != t->num; ++i)
        if (t->targets[i].active)
            relay_typing(t->from, t->targets[i].to, 0); /* their last connection closed: they stopped typing */
    typist_free(t);
}

void chat_typing_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    yajl_val active = chat_member(frame, "active");
    typist_t *t;
    if ((to = chat_frame_user(ws, frame, "to", me, "typing")) == 0)
        return;
    if (active == NULL || !(YAJL_IS_TRUE(active) || YAJL_IS_FALSE(active))) {
        api->ws_error(ws, "bad_request", "active must be true or false", "typing");
        return;
    }
    if ((t = typist_get(me, 1)) == NULL) {
        relay_typing(me, to, YAJL_IS_TRUE(active)); /* out of memory: relayed, neither thinned nor kept */
        return;
    }
    typing_update(t, to, YAJL_IS_TRUE(active), 0);
}

void chat_typing_fini(void)
{
    for (size_t i = 0; i != TYPING_BUCKETS; ++i) {
        while (typists[i] != NULL) {
            typist_t *t = typists[i];
            typists[i] = t->next;
            typist_free(t);
        }
    }
}
