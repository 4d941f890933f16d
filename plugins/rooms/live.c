/*
 * The WebSocket side of rooms, wired together: which frames and hub events go where (room.send in send.c,
 * room.typing in typing.c), the room.read frame, and publishing to a room's members. The replay of
 * `/ws?after=` and the hello's last_message_id are the core's, from the source in replay.c.
 */
#include <stdlib.h>
#include "rooms.h"

#define api rooms_api

int64_t rooms_frame_room(forum_ws_t *ws, yajl_val frame, const char *key, int64_t me, const char *ref)
{
    yajl_val v = pu_member(frame, key);
    int64_t room;
    int member;
    if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) <= 0) {
        api->ws_error(ws, "bad_request", v == NULL ? "a room id is required" : "room must be a room id", ref);
        return 0;
    }
    room = YAJL_GET_INTEGER(v);
    if ((member = rooms_is_member(room, me)) < 0) {
        api->ws_db_error(ws, "the room could not be read", ref);
        return 0;
    }
    if (member == 0) {
        int exists = rooms_exists(room);
        if (exists < 0)
            api->ws_db_error(ws, "the room could not be read", ref);
        else
            api->ws_error(ws, exists ? "forbidden" : "not_found", exists ? "not a member of this room" : "no such room", ref);
        return 0;
    }
    return room;
}

long rooms_members_but(int64_t room, int64_t except, int64_t **ids)
{
    long n;
    size_t kept = 0;
    if ((n = rooms_members(room, ids)) < 0) {
        api->log(FORUM_LOG_ERROR, "rooms: the members of room %lld could not be read", (long long)room);
        return -1;
    }
    for (long i = 0; i != n; ++i)
        if ((*ids)[i] != except)
            (*ids)[kept++] = (*ids)[i];
    return (long)kept;
}

void rooms_publish(int64_t room, yajl_gen g, int flags, int64_t except)
{
    const unsigned char *buf;
    size_t len;
    int64_t *ids;
    long n;
    yajl_gen_get_buf(g, &buf, &len);
    if (room == ROOMS_LOBBY) {
        /* a broadcast: one frame shared by every connection */
        if (except != 0)
            api->publish_all_but(except, (const char *)buf, len, flags);
        else
            api->publish_all((const char *)buf, len, flags);
        return;
    }
    if ((n = rooms_members_but(room, except, &ids)) < 0)
        return; /* logged: this event is not published */
    api->publish_users(ids, (size_t)n, (const char *)buf, len, flags);
    free(ids);
}

void rooms_publish_message(const rooms_message_t *m, yajl_gen to_sender, yajl_gen to_members, const int64_t *members,
                           size_t num_members)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(to_sender, &buf, &len);
    api->publish_message(m->id, &m->from, 1, (const char *)buf, len);
    yajl_gen_get_buf(to_members, &buf, &len);
    if (m->room == ROOMS_LOBBY)
        api->publish_message_all_but(m->id, m->from, (const char *)buf, len); /* one frame shared by every connection */
    else
        api->publish_message(m->id, members, num_members, (const char *)buf, len);
}

static void on_read(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), room, up_to;
    if ((room = rooms_frame_room(ws, frame, "room", me, "room.read")) == 0 || (up_to = pu_frame_up_to(api, ws, frame, "room.read")) < 0)
        return;
    if (!rooms_mark_read(room, me, up_to))
        api->ws_db_error(ws, "the read mark could not be stored", "room.read");
}

static void on_close(const forum_event_t *ev)
{
    rooms_send_forget(ev->ws);
}

int rooms_live_init(forum_plugin_t *p)
{
    rooms_send_init(p);
    rooms_typing_init();
    return api->on_frame(p, "room.send", rooms_send_frame) || api->on_frame(p, "room.typing", rooms_typing_frame) ||
           api->on_frame(p, "room.read", on_read) || api->on_event(p, "ws.close", on_close) ||
           api->on_event(p, "user.offline", rooms_typing_offline);
}

void rooms_live_fini(void)
{
    rooms_send_fini();
    rooms_typing_fini();
}
