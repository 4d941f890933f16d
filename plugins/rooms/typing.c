/*
 * Typing in rooms: a member's state in one room, relayed to the room's other members (ephemeral frames),
 * thinned when repeated, stopped when the typist sends a message there, leaves the room, or goes offline.
 *
 * What is kept is bounded per connected user (util/typists.c): a typist holds its states in the last
 * TYPING_ROOMS_MAX rooms it typed in (the least recently used goes, its room told it stopped), and going
 * offline walks only its own.
 */
#include <string.h>
#include "rooms.h"
#include "../util/typists.h"

#define api rooms_api

enum { TYPING_ROOMS_MAX = 16 }; /* states kept per typist */

typedef struct typist {
    pu_typist_t t; /* first: the table's part */
    char nickname[64];
} typist_t;

static pu_typists_t typists;

static void relay(const pu_typist_t *pt, int64_t room, int active)
{
    const typist_t *t = (const typist_t *)pt;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "room.typing");
    pu_key_int(g, "room", room);
    pu_str(g, "from");
    yajl_gen_map_open(g);
    pu_key_int(g, "id", t->t.from);
    pu_key_str(g, "nickname", t->nickname);
    yajl_gen_map_close(g);
    pu_str(g, "active");
    yajl_gen_bool(g, active);
    yajl_gen_map_close(g);
    rooms_publish(room, g, FORUM_PUB_EPHEMERAL, t->t.from);
    yajl_gen_free(g);
}

void rooms_typing_init(void)
{
    pu_typists_init(&typists, api, TYPING_ROOMS_MAX, sizeof(typist_t), relay);
}

void rooms_typing_sent(int64_t from, int64_t room)
{
    pu_typists_stop(&typists, from, room);
}

void rooms_typing_left(int64_t from, int64_t room)
{
    pu_typists_stop(&typists, from, room);
}

void rooms_typing_offline(const forum_event_t *ev)
{
    pu_typists_offline(&typists, ev->user_id);
}

void rooms_typing_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), room;
    pu_typist_t *t;
    int active;
    if ((room = rooms_frame_room(ws, frame, "room", me, "room.typing")) == 0 ||
        (active = pu_frame_bool(api, ws, frame, "active", "room.typing")) < 0)
        return;
    if ((t = pu_typists_find(&typists, me)) == NULL) {
        char nickname[sizeof(((typist_t *)NULL)->nickname)];
        if (!rooms_nickname(me, nickname, sizeof(nickname))) {
            api->ws_db_error(ws, "the typing state could not be relayed", "room.typing");
            return;
        }
        /*
         * Looked up again after the data call, which may have let this user's other frames add the typist (or
         * its going offline run): a typist is added only with its nickname, and only once.
         */
        if ((t = pu_typists_find(&typists, me)) == NULL) {
            if ((t = pu_typists_add(&typists, me)) == NULL)
                return; /* out of memory: a typing indicator is not worth more */
            memcpy(((typist_t *)t)->nickname, nickname, sizeof(nickname));
        }
    }
    pu_typists_update(&typists, t, room, active, 0);
}

void rooms_typing_fini(void)
{
    pu_typists_fini(&typists);
}
