/*
 * GET /api/rooms: the lobby first, then the rooms you joined by their latest message (newest first; rooms
 * without messages after them, newest room first), then the others in the same order.
 *
 * A page costs the same however many rooms exist. Your joined rooms are a range of room_members (at most
 * ROOMS_JOINED_MAX of them); the others are walked on the rooms_recent index, examining at most `limit` +
 * LIST_SCAN_ROWS entries, skipping the rooms you joined: when that budget runs out the page may be shorter
 * than `limit`, even empty, while `next` goes on from the last entry examined. `next` is null at the end.
 *
 * The cursor is opaque to clients: "P.L.I", P the part (1 joined, 2 others), L.I the position (last
 * message id, room id) below which the part goes on.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rooms.h"

#define api rooms_api

enum { LIST_LIMIT_DEFAULT = 50, LIST_LIMIT_MAX = 100, LIST_SCAN_ROWS = 1000 };

typedef struct position {
    int part; /* 1: joined, 2: the others */
    int64_t last_message_id, id;
} position_t;

/* A whole decimal number of `s` up to `end` (0 to INT64_MAX); false otherwise. */
static int parse_number(const char *s, const char *end, int64_t *out)
{
    int64_t v = 0;
    if (s == end || (*s == '0' && end - s > 1))
        return 0;
    for (; s != end; ++s) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 1;
}

static int read_cursor(const char *c, position_t *pos)
{
    const char *dot;
    if ((c[0] != '1' && c[0] != '2') || c[1] != '.' || (dot = strchr(c + 2, '.')) == NULL)
        return 0;
    pos->part = c[0] - '0';
    return parse_number(c + 2, dot, &pos->last_message_id) && parse_number(dot + 1, dot + 1 + strlen(dot + 1), &pos->id) && pos->id > 0;
}

static void write_cursor(yajl_gen g, int part, int64_t last_message_id, int64_t id)
{
    char text[64];
    snprintf(text, sizeof(text), "%d.%" PRId64 ".%" PRId64, part, last_message_id, id);
    pu_str(g, text);
}

/* Writes the joined rooms below `pos`, up to `room_left`; sets `*next` when more of them are left. -1 on failure. */
static int write_joined(yajl_gen g, int64_t me, const position_t *pos, int64_t *room_left, position_t *next)
{
    forum_stmt_t *s = api->db_stmt("SELECT r.id, r.last_message_id FROM room_members m JOIN rooms r ON r.id = m.room_id "
                                   "WHERE m.user_id = ? AND m.room_id != 1 AND (r.last_message_id, r.id) < (?, ?) "
                                   "ORDER BY r.last_message_id DESC, r.id DESC LIMIT ?");
    int64_t ids[LIST_LIMIT_MAX + 1][2];
    int64_t n = 0;
    int rc;
    if (s == NULL)
        return -1;
    api->db_bind_int(s, 1, me);
    api->db_bind_int(s, 2, pos->last_message_id);
    api->db_bind_int(s, 3, pos->id);
    api->db_bind_int(s, 4, *room_left + 1);
    while ((rc = api->db_step(s)) == FORUM_DB_ROW) {
        ids[n][0] = api->db_col_int(s, 0);
        ids[n][1] = api->db_col_int(s, 1);
        ++n;
    }
    if (rc != FORUM_DB_DONE)
        return -1;
    next->part = 0;
    if (n > *room_left) {
        n = *room_left;
        next->part = 1;
        next->last_message_id = ids[n - 1][1];
        next->id = ids[n - 1][0];
    }
    for (int64_t i = 0; i != n; ++i)
        if (!rooms_write(g, ids[i][0], me))
            return -1;
    *room_left -= n;
    return 0;
}

/*
 * Writes the rooms not joined below `pos`, up to `room_left`, examining at most `room_left` + LIST_SCAN_ROWS
 * index entries; sets `*next` when the walk did not reach the end. -1 on failure.
 */
static int write_others(yajl_gen g, int64_t me, const position_t *pos, int64_t room_left, position_t *next)
{
    forum_stmt_t *s = api->db_stmt("SELECT r.id, r.last_message_id, "
                                   "  CASE WHEN EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = ?) THEN 1 ELSE 0 END "
                                   "FROM rooms r WHERE r.id != 1 AND (r.last_message_id, r.id) < (?, ?) "
                                   "ORDER BY r.last_message_id DESC, r.id DESC LIMIT ?");
    int64_t budget = room_left + LIST_SCAN_ROWS, ids[LIST_LIMIT_MAX], n = 0, examined = 0, last[2] = {0, 0};
    int rc;
    if (s == NULL)
        return -1;
    api->db_bind_int(s, 1, me);
    api->db_bind_int(s, 2, pos->last_message_id);
    api->db_bind_int(s, 3, pos->id);
    api->db_bind_int(s, 4, budget);
    next->part = 0;
    while ((rc = api->db_step(s)) == FORUM_DB_ROW) {
        int joined = api->db_col_int(s, 2) != 0;
        if (!joined && n == room_left) {
            /* one more room of the list: the page ends at the last one written */
            next->part = 2;
            next->last_message_id = last[1];
            next->id = last[0];
            break;
        }
        ++examined;
        last[0] = api->db_col_int(s, 0);
        last[1] = api->db_col_int(s, 1);
        if (!joined)
            ids[n++] = last[0];
    }
    if (rc != FORUM_DB_ROW && rc != FORUM_DB_DONE)
        return -1;
    if (next->part == 0 && examined == budget) {
        /* the budget ran out before the end: go on from the last entry examined */
        next->part = 2;
        next->last_message_id = last[1];
        next->id = last[0];
    }
    for (int64_t i = 0; i != n; ++i)
        if (!rooms_write(g, ids[i], me))
            return -1;
    return 0;
}

int rooms_list_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), limit, left;
    const char *before = api->req_query(req, "before");
    position_t pos = {.part = 1, .last_message_id = INT64_MAX, .id = INT64_MAX}, next = {0};
    int failed = 0;

    if ((limit = pu_query_int(api, req, "limit", 1, LIST_LIMIT_MAX, LIST_LIMIT_DEFAULT)) < 0)
        return 0;
    if (before != NULL && !read_cursor(before, &pos)) {
        api->res_error(req, 400, "bad_request", "before must be a cursor this server gave", "before");
        return 0;
    }
    /* rendered aside first: a read that fails halfway is answered as a failure, not as a short page */
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_str(g, "rooms");
    yajl_gen_array_open(g);
    left = limit;
    if (before == NULL) {
        failed = !rooms_write(g, ROOMS_LOBBY, me);
        --left;
    }
    if (!failed && pos.part == 1) {
        if (left == 0) {
            next = pos; /* the lobby filled the page: the joined rooms come next */
        } else {
            failed = write_joined(g, me, &pos, &left, &next) != 0;
            pos = (position_t){.part = 2, .last_message_id = INT64_MAX, .id = INT64_MAX};
        }
    }
    if (!failed && next.part == 0 && pos.part == 2 && left > 0)
        failed = write_others(g, me, &pos, left, &next) != 0;
    else if (!failed && next.part == 0 && pos.part == 2 && left == 0)
        next = pos; /* the page is full: the others come next */
    yajl_gen_array_close(g);
    pu_str(g, "next");
    if (next.part == 0)
        yajl_gen_null(g);
    else
        write_cursor(g, next.part, next.last_message_id, next.id);
    yajl_gen_map_close(g);
    if (failed) {
        api->res_db_error(req, "the rooms could not be read");
    } else {
        const unsigned char *buf;
        size_t len;
        yajl_gen_get_buf(g, &buf, &len);
        api->res_json_raw(req, 200, (const char *)buf, len);
    }
    yajl_gen_free(g);
    return 0;
}
