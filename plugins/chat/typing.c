/*
 * Typing indicators: a typist's state toward one other user, relayed to that user's connections,
 * thinned when repeated, stopped when the typist sends a message or goes offline.
 *
 * What is kept is bounded per connected user (util/typists.c): each typist holds the states toward the
 * last TYPING_TARGETS_MAX users it typed to (a client that types to every account id pushes out its
 * oldest, whose target is told it stopped), and the typist's going offline walks only its own.
 */
#include "chat.h"
#include "../util/typists.h"

#define api chat_api

enum { TYPING_TARGETS_MAX = 64 }; /* states kept per typist */

static pu_typists_t typists;

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

static void relay(const pu_typist_t *t, int64_t to, int active)
{
    relay_typing(t->from, to, active);
}

void chat_typing_init(void)
{
    pu_typists_init(&typists, api, TYPING_TARGETS_MAX, sizeof(pu_typist_t), relay);
}

/* A message ends its sender's typing (only a typist is told to stop: most messages need no extra frame). */
void chat_typing_sent(int64_t from, int64_t to)
{
    pu_typists_stop(&typists, from, to);
}

void chat_typing_offline(const forum_event_t *ev)
{
    pu_typists_offline(&typists, ev->user_id);
}

void chat_typing_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    pu_typist_t *t;
    int active;
    if ((to = chat_frame_user(ws, frame, "to", me, "typing")) == 0 || (active = pu_frame_bool(api, ws, frame, "active", "typing")) < 0)
        return;
    if ((t = pu_typists_find(&typists, me)) == NULL && (t = pu_typists_add(&typists, me)) == NULL) {
        relay_typing(me, to, active); /* out of memory: relayed, neither thinned nor kept */
        return;
    }
    pu_typists_update(&typists, t, to, active, 0);
}

void chat_typing_fini(void)
{
    pu_typists_fini(&typists);
}
