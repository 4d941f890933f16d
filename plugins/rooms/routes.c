/*
 * HTTP: POST /api/rooms, POST /api/rooms/:id/join and /leave, GET /api/rooms/:id/messages,
 * POST /api/rooms/:id/read, and the route of GET /api/rooms (list.c). Creations and membership changes
 * are published: room.created to everyone, room.member to the room's members and to who joined or left.
 */
#include <stdlib.h>
#include "rooms.h"
#include "../util/history.h"

#define api rooms_api

/* Answers {"room": ...} for `user`. */
static void answer_room(forum_req_t *req, int status, int64_t room, int64_t user)
{
    yajl_gen g = api->res_json_begin(req, status);
    yajl_gen_map_open(g);
    pu_str(g, "room");
    if (!rooms_write(g, room, user))
        yajl_gen_null(g);
    yajl_gen_map_close(g);
    api->res_json_end(req);
}

/* The room of the route's :id; 0 after answering 404 (no such room) or a database failure. */
static int64_t route_room(forum_req_t *req)
{
    int64_t room = pu_parse_id(api->req_param(req, "id"));
    int exists = room != 0 ? rooms_exists(room) : 0;
    if (exists < 0)
        api->res_db_error(req, "the room could not be read");
    else if (exists == 0)
        api->res_error(req, 404, "not_found", "no such room", NULL);
    if (exists <= 0)
        return 0;
    return room;
}

/* The room of the route's :id, of which the user must be a member; 0 after answering 404, 403 or a failure. */
static int64_t member_room(forum_req_t *req)
{
    int64_t room = route_room(req);
    int member;
    if (room == 0)
        return 0;
    if ((member = rooms_is_member(room, api->req_user(req))) < 0) {
        api->res_db_error(req, "the room could not be read");
        return 0;
    }
    if (member == 0) {
        api->res_error(req, 403, "forbidden", "not a member of this room", NULL);
        return 0;
    }
    return room;
}

static void publish_room_created(int64_t room, int64_t creator)
{
    /* the creator's copy says joined; everyone else's is the room as a non-member sees it */
    const unsigned char *buf;
    size_t len;
    for (int mine = 0; mine != 2; ++mine) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        pu_key_str(g, "type", "room.created");
        pu_str(g, "room");
        if (!rooms_write(g, room, mine ? creator : 0)) {
            yajl_gen_free(g);
            return;
        }
        yajl_gen_map_close(g);
        yajl_gen_get_buf(g, &buf, &len);
        if (mine)
            api->publish_user(creator, (const char *)buf, len, 0);
        else
            api->publish_all_but(creator, (const char *)buf, len, 0);
        yajl_gen_free(g);
    }
}

static int create_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), room, joined;
    forum_text_t name;
    yajl_val body = api->req_body(req);
    int status = api->text_field(body, "name", ROOMS_NAME_MIN, ROOMS_NAME_MAX, 0, &name);
    if (status != 0) {
        api->res_error(req, status, status == 400 ? "bad_request" : "validation", name.message, YAJL_IS_OBJECT(body) ? "name" : NULL);
        return 0;
    }
    if ((joined = rooms_joined_count(me)) < 0) {
        api->res_db_error(req, "the rooms could not be read");
        return 0;
    }
    if (joined >= ROOMS_JOINED_MAX) {
        api->res_error(req, 422, "validation", "you are a member of too many rooms: leave one first", NULL);
        return 0;
    }
    if ((room = rooms_create(me, name.text, name.len)) == 0) {
        api->res_error(req, 409, "conflict", "a room with this name exists", "name");
        return 0;
    }
    if (room < 0) {
        api->res_db_error(req, "the room could not be created");
        return 0;
    }
    publish_room_created(room, me);
    answer_room(req, 201, room, me);
    return 0;
}

/* Tells the room's members, and `user` who joined or left, about the change. */
static void publish_member(int64_t room, int64_t user, int joined)
{
    char nickname[64];
    int64_t count = rooms_member_count(room);
    if (!rooms_nickname(user, nickname, sizeof(nickname)))
        nickname[0] = '\0';
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "room.member");
    pu_key_int(g, "room", room);
    pu_str(g, "user");
    yajl_gen_map_open(g);
    pu_key_int(g, "id", user);
    pu_key_str(g, "nickname", nickname);
    yajl_gen_map_close(g);
    pu_str(g, "joined");
    yajl_gen_bool(g, joined);
    pu_key_int(g, "member_count", count < 0 ? 0 : count);
    yajl_gen_map_close(g);
    rooms_publish(room, g, 0, joined ? 0 : user);
    if (!joined) {
        const unsigned char *buf;
        size_t len;
        yajl_gen_get_buf(g, &buf, &len);
        api->publish_user(user, (const char *)buf, len, 0);
    }
    yajl_gen_free(g);
}

static int join_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), room, joined = 0;
    int member, rc;
    if ((room = route_room(req)) == 0)
        return 0;
    if ((member = rooms_is_member(room, me)) < 0 || (member == 0 && (joined = rooms_joined_count(me)) < 0)) {
        api->res_db_error(req, "the room could not be read");
        return 0;
    }
    if (member == 0 && joined >= ROOMS_JOINED_MAX) {
        api->res_error(req, 422, "validation", "you are a member of too many rooms: leave one first", NULL);
        return 0;
    }
    if (member == 0) {
        if ((rc = rooms_join(room, me)) < 0) {
            api->res_db_error(req, "the membership could not be stored");
            return 0;
        }
        if (rc > 0)
            publish_member(room, me, 1);
    }
    answer_room(req, 200, room, me);
    return 0;
}

static int leave_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), room;
    int rc;
    if ((room = route_room(req)) == 0)
        return 0;
    if (room == ROOMS_LOBBY) {
        api->res_error(req, 422, "validation", "nobody leaves the lobby", NULL);
        return 0;
    }
    if ((rc = rooms_leave(room, me)) < 0) {
        api->res_db_error(req, "the membership could not be stored");
        return 0;
    }
    if (rc > 0) {
        rooms_typing_left(me, room);
        publish_member(room, me, 0);
    }
    answer_room(req, 200, room, me);
    return 0;
}

/* The newest `limit` messages older than `before`, oldest first. */
static int history_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), room;
    pu_history_t h;
    int rc;

    if ((room = member_room(req)) == 0 || !pu_history_query(api, req, &h))
        return 0;
    forum_stmt_t *s = api->db_stmt("SELECT id FROM room_messages WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT ?");
    api->db_bind_int(s, 1, room);
    api->db_bind_int(s, 2, h.before);
    api->db_bind_int(s, 3, h.limit + 1);
    if ((rc = pu_history_read(api, s, &h)) != FORUM_DB_ROW && rc != FORUM_DB_DONE) {
        api->res_db_error(req, "the messages could not be read");
        return 0;
    }
    if ((s = rooms_page_stmt(&h)) == NULL) {
        api->res_db_error(req, "the messages could not be read");
        return 0;
    }
    pu_history_answer_rows(api, req, &h, s, rooms_write_row, me);
    return 0;
}

static int read_route(forum_req_t *req)
{
    int64_t room, up_to;

    if ((room = member_room(req)) == 0 || (up_to = pu_body_up_to(api, req)) < 0)
        return 0;
    if (!rooms_mark_read(room, api->req_user(req), up_to)) {
        api->res_db_error(req, "the read mark could not be stored");
        return 0;
    }
    api->res_empty(req, 204);
    return 0;
}

int rooms_routes_init(forum_plugin_t *p)
{
    return api->route(p, "GET", "/api/rooms", 0, rooms_list_route) || api->route(p, "POST", "/api/rooms", 0, create_route) ||
           api->route(p, "POST", "/api/rooms/:id/join", 0, join_route) || api->route(p, "POST", "/api/rooms/:id/leave", 0, leave_route) ||
           api->route(p, "GET", "/api/rooms/:id/messages", 0, history_route) ||
           api->route(p, "POST", "/api/rooms/:id/read", 0, read_route);
}
