/*
 * The rooms' replay source: the core merges it with chat's in id order to replay `/ws?after=ID`, and takes
 * the hello's last_message_id from it. A user sees the messages of the rooms they are a member of now (the
 * lobby always), history from before they joined included.
 *
 * Stateless: every answer is read from the database, so a replay goes on unchanged across a swap of this
 * plugin or a restart. One `list` reads a bounded window of ids (WINDOW_IDS past `after`, a range of the
 * primary key), so that a user who is in few busy rooms does not make one call walk the whole table; its
 * complete_to says how far it looked.
 */
#include <stdint.h>
#include "rooms.h"

#define api rooms_api

enum { WINDOW_IDS = 20000 };

static int list(int64_t user, int64_t after, int64_t *ids, size_t max, int64_t *complete_to)
{
    int64_t window_end = after > INT64_MAX - WINDOW_IDS ? INT64_MAX : after + WINDOW_IDS, newest;
    size_t n = 0;
    int rc = FORUM_DB_DONE;
    forum_stmt_t *s = api->db_stmt("SELECT id FROM room_messages WHERE id > ? AND id <= ? "
                                   "AND (room_id = 1 OR room_id IN (SELECT room_id FROM room_members WHERE user_id = ?)) "
                                   "ORDER BY id LIMIT ?");
    if (s == NULL || max == 0)
        return -1;
    api->db_bind_int(s, 1, after);
    api->db_bind_int(s, 2, window_end);
    api->db_bind_int(s, 3, user);
    api->db_bind_int(s, 4, (int64_t)max);
    while (n < max && (rc = api->db_step(s)) == FORUM_DB_ROW)
        ids[n++] = api->db_col_int(s, 0);
    if (n == max) {
        *complete_to = ids[n - 1];
        return (int)n;
    }
    if (rc != FORUM_DB_DONE)
        return -1;
    /* the window held fewer: complete to its end, or to the end of everything when nothing is newer */
    s = api->db_stmt("SELECT COALESCE(MAX(id), 0) FROM room_messages");
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW)
        return -1;
    newest = api->db_col_int(s, 0);
    *complete_to = newest <= window_end ? INT64_MAX : window_end;
    return (int)n;
}

static void send(forum_ws_t *ws, int64_t user, int64_t id)
{
    yajl_gen g = rooms_message_frame(id, user);
    if (g == NULL) {
        api->log(FORUM_LOG_ERROR, "rooms: room message %lld could not be read for a replay", (long long)id);
        return;
    }
    pu_ws_send_gen(api, ws, g);
    yajl_gen_free(g);
}

static int64_t last_id(int64_t user)
{
    forum_stmt_t *s = api->db_stmt("SELECT COALESCE(MAX(last_message_id), 0) FROM rooms "
                                   "WHERE id = 1 OR id IN (SELECT room_id FROM room_members WHERE user_id = ?)");
    api->db_bind_int(s, 1, user);
    return s != NULL && api->db_step(s) == FORUM_DB_ROW ? api->db_col_int(s, 0) : 0;
}

const forum_replay_source_t rooms_replay_source = {.list = list, .send = send, .last_id = last_id};
