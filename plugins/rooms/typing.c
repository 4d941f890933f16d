/*
 * Typing in rooms: a member's state in one room, relayed to the room's other members (ephemeral frames),
 * thinned when repeated, stopped when the typist sends a message there, leaves the room, or goes offline.
 *
 * What is kept is bounded per connected user: a typist holds its states in the last TYPING_ROOMS_MAX rooms
 * it typed in (the least recently used goes, its room told it stopped), and going offline walks only its own.
 */
#include <stdlib.h>
#include <string.h>
#include "rooms.h"

#define api rooms_api

enum {
    TYPING_REFRESH_MS = 1000, /* an unchanged typing state is relayed at most this often */
    TYPING_ROOMS_MAX = 16,    /* states kept per typist */
    TYPING_BUCKETS = 1024,
};

typedef struct typing {
    int64_t room;
    int64_t relayed_ms;
    int active;
} typing_t;

typedef struct typist {
    struct typist *next;
    int64_t from;
    char nickname[64];
    size_t num;
    typing_t rooms[TYPING_ROOMS_MAX]; /* least recently used first */
} typist_t;

static typist_t *typists[TYPING_BUCKETS];

static typist_t **typist_slot(int64_t from)
{
    return &typists[(((uint64_t)from * 0x9E3779B97F4A7C15ull) >> 40) % TYPING_BUCKETS];
}

static typist_t *typist_find(int64_t from)
{
    typist_t *t = *typist_slot(from);
    while (t != NULL && t->from != from)
        t = t->next;
    return t;
}

static void relay(const typist_t *t, int64_t room, int active)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "room.typing");
    pu_key_int(g, "room", room);
    pu_str(g, "from");
    yajl_gen_map_open(g);
    pu_key_int(g, "id", t->from);
    pu_key_str(g, "nickname", t->nickname);
    yajl_gen_map_close(g);
    pu_str(g, "active");
    yajl_gen_bool(g, active);
    yajl_gen_map_close(g);
    rooms_publish(room, g, FORUM_PUB_EPHEMERAL, t->from);
    yajl_gen_free(g);
}

static size_t room_index(const typist_t *t, int64_t room)
{
    size_t i = 0;
    while (i != t->num && t->rooms[i].room != room)
        ++i;
    return i;
}

/* The state of `t` in `room`, moved to the most recently used end, made when missing. */
static typing_t *room_use(typist_t *t, int64_t room)
{
    size_t i = room_index(t, room);
    typing_t found = {.room = room};
    if (i != t->num) {
        found = t->rooms[i];
    } else if (t->num == TYPING_ROOMS_MAX) {
        if (t->rooms[0].active)
            relay(t, t->rooms[0].room, 0); /* no later event would clear it */
        i = 0;
    } else {
        i = t->num++;
    }
    memmove(t->rooms + i, t->rooms + i + 1, (t->num - 1 - i) * sizeof(*t->rooms));
    t->rooms[t->num - 1] = found;
    return &t->rooms[t->num - 1];
}

static void update(typist_t *t, int64_t room, int active, int force)
{
    int64_t now = api->mono_ms();
    typing_t *s = room_use(t, room);
    if (!force && s->relayed_ms != 0 && s->active == active && now - s->relayed_ms < TYPING_REFRESH_MS)
        return;
    relay(t, room, active);
    s->active = active;
    s->relayed_ms = now;
}

/* A typist that was typing in `room` is told to have stopped. */
static void stop(int64_t from, int64_t room)
{
    typist_t *t = typist_find(from);
    size_t i = t != NULL ? room_index(t, room) : 0;
    if (t != NULL && i != t->num && t->rooms[i].active)
        update(t, room, 0, 1);
}

void rooms_typing_sent(int64_t from, int64_t room)
{
    stop(from, room);
}

void rooms_typing_left(int64_t from, int64_t room)
{
    stop(from, room);
}

void rooms_typing_offline(const forum_event_t *ev)
{
    typist_t **p = typist_slot(ev->user_id), *t;
    while (*p != NULL && (*p)->from != ev->user_id)
        p = &(*p)->next;
    if ((t = *p) == NULL)
        return;
    *p = t->next;
    for (size_t i = 0; i != t->num; ++i)
        if (t->rooms[i].active)
            relay(t, t->rooms[i].room, 0); /* their last connection closed: they stopped typing */
    free(t);
}

void rooms_typing_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), room;
    yajl_val active = rooms_member(frame, "active");
    typist_t *t;
    if ((room = rooms_frame_room(ws, frame, "room", me, "room.typing")) == 0)
        return;
    if (active == NULL || !(YAJL_IS_TRUE(active) || YAJL_IS_FALSE(active))) {
        api->ws_error(ws, "bad_request", "active must be true or false", "room.typing");
        return;
    }
    if ((t = typist_find(me)) == NULL) {
        if ((t = calloc(1, sizeof(*t))) == NULL)
            return; /* out of memory: a typing indicator is not worth more */
        if (!rooms_nickname(me, t->nickname, sizeof(t->nickname))) {
            free(t);
            api->ws_db_error(ws, "the typing state could not be relayed", "room.typing");
            return;
        }
        t->from = me;
        typist_t **slot = typist_slot(me);
        t->next = *slot;
        *slot = t;
    }
    update(t, room, YAJL_IS_TRUE(active), 0);
}

void rooms_typing_fini(void)
{
    for (size_t i = 0; i != TYPING_BUCKETS; ++i) {
        while (typists[i] != NULL) {
            typist_t *t = typists[i];
            typists[i] = t->next;
            free(t);
        }
    }
}
