/*
 * Rooms and their members (SQL only): existence, membership, creation, joining and leaving, read marks,
 * and a room as API.md shows it, with the unread and mention counts of one user.
 *
 * Unread is counted without counting messages: each message records its ordinal in its room (seq), so the
 * messages after a read mark are the room's message_count minus the seq of the newest message at or below
 * the mark (one seek of room_messages_room). Mentions above the mark are one range of room_mentions.
 * A member's mark starts at the room's last message when they join; the lobby's, for a user who has no
 * row in it yet, at the last lobby message from before they registered.
 */
#include <stdlib.h>
#include <string.h>
#include "rooms.h"

#define api rooms_api

static int step_done(forum_stmt_t *s)
{
    return s != NULL && api->db_step(s) == FORUM_DB_DONE;
}

int rooms_exists(int64_t id)
{
    forum_stmt_t *s = api->db_stmt("SELECT 1 FROM rooms WHERE id = ?");
    if (s == NULL)
        return -1;
    api->db_bind_int(s, 1, id);
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        return 1;
    case FORUM_DB_DONE:
        return 0;
    default:
        return -1;
    }
}

int rooms_is_member(int64_t room, int64_t user)
{
    if (room == ROOMS_LOBBY)
        return 1;
    forum_stmt_t *s = api->db_stmt("SELECT 1 FROM room_members WHERE room_id = ? AND user_id = ?");
    if (s == NULL)
        return -1;
    api->db_bind_int(s, 1, room);
    api->db_bind_int(s, 2, user);
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        return 1;
    case FORUM_DB_DONE:
        return 0;
    default:
        return -1;
    }
}

int64_t rooms_account_count(void)
{
    /* counted again only when the users table may have changed (a registration), never per request */
    static uint64_t counted_version;
    static int64_t count = -1;
    uint64_t version = api->db_version("users");
    if (count >= 0 && version == counted_version)
        return count;
    forum_stmt_t *s = api->db_stmt("SELECT COUNT(*) FROM users");
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW)
        return -1;
    count = api->db_col_int(s, 0);
    counted_version = version;
    return count;
}

int64_t rooms_joined_count(int64_t user)
{
    forum_stmt_t *s = api->db_stmt("SELECT COUNT(*) FROM room_members WHERE user_id = ? AND room_id != 1");
    api->db_bind_int(s, 1, user);
    return s != NULL && api->db_step(s) == FORUM_DB_ROW ? api->db_col_int(s, 0) : -1;
}

static int add_member(int64_t room, int64_t user, const char *now)
{
    /* a new member has read what came before: history is there to scroll, not to count as unread */
    forum_stmt_t *s = api->db_stmt("INSERT INTO room_members (room_id, user_id, joined_at, read_up_to) "
                                   "SELECT ?, ?, ?, last_message_id FROM rooms WHERE id = ? "
                                   "ON CONFLICT (room_id, user_id) DO NOTHING RETURNING 1");
    int rc;
    if (s == NULL)
        return -1;
    api->db_bind_int(s, 1, room);
    api->db_bind_int(s, 2, user);
    api->db_bind_text(s, 3, now, strlen(now));
    api->db_bind_int(s, 4, room);
    if ((rc = api->db_step(s)) == FORUM_DB_DONE)
        return 0;
    if (rc != FORUM_DB_ROW || !step_done(s))
        return -1;
    s = api->db_stmt("UPDATE rooms SET member_count = member_count + 1 WHERE id = ?");
    api->db_bind_int(s, 1, room);
    return step_done(s) ? 1 : -1;
}

int64_t rooms_create(int64_t user, const char *name, size_t name_len)
{
    char now[32];
    int64_t id;
    api->format_time(api->now_ms(), now);
    if (api->db_begin() != 0)
        return -1;
    forum_stmt_t *s = api->db_stmt("INSERT INTO rooms (name, created_by, created_at) VALUES (?, ?, ?) RETURNING id");
    if (s == NULL || api->db_bind_text(s, 1, name, name_len) != 0)
        goto Error;
    api->db_bind_int(s, 2, user);
    api->db_bind_text(s, 3, now, strlen(now));
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        id = api->db_col_int(s, 0);
        if (!step_done(s))
            goto Error;
        break;
    case FORUM_DB_CONSTRAINT:
        api->db_rollback();
        return 0;
    default:
        goto Error;
    }
    if (add_member(id, user, now) != 1 || api->db_commit() != 0)
        goto Error;
    return id;
Error:
    api->db_rollback();
    return -1;
}

int rooms_join(int64_t room, int64_t user)
{
    char now[32];
    int rc;
    api->format_time(api->now_ms(), now);
    if (api->db_begin() != 0)
        return -1;
    if ((rc = add_member(room, user, now)) < 0 || api->db_commit() != 0) {
        api->db_rollback();
        return -1;
    }
    return rc;
}

int rooms_leave(int64_t room, int64_t user)
{
    forum_stmt_t *s;
    int rc;
    if (api->db_begin() != 0)
        return -1;
    s = api->db_stmt("DELETE FROM room_members WHERE room_id = ? AND user_id = ? RETURNING 1");
    api->db_bind_int(s, 1, room);
    api->db_bind_int(s, 2, user);
    if (s == NULL || ((rc = api->db_step(s)) != FORUM_DB_ROW && rc != FORUM_DB_DONE))
        goto Error;
    if (rc == FORUM_DB_ROW) {
        if (!step_done(s))
            goto Error;
        /* mentions are counted above a read mark; a later join starts a new mark, but the rows would only linger */
        s = api->db_stmt("DELETE FROM room_mentions WHERE user_id = ? AND room_id = ?");
        api->db_bind_int(s, 1, user);
        api->db_bind_int(s, 2, room);
        if (!step_done(s))
            goto Error;
        s = api->db_stmt("UPDATE rooms SET member_count = member_count - 1 WHERE id = ?");
        api->db_bind_int(s, 1, room);
        if (!step_done(s))
            goto Error;
    }
    if (api->db_commit() != 0)
        goto Error;
    return rc == FORUM_DB_ROW;
Error:
    api->db_rollback();
    return -1;
}

int64_t rooms_member_count(int64_t room)
{
    if (room == ROOMS_LOBBY)
        return rooms_account_count();
    forum_stmt_t *s = api->db_stmt("SELECT member_count FROM rooms WHERE id = ?");
    api->db_bind_int(s, 1, room);
    return s != NULL && api->db_step(s) == FORUM_DB_ROW ? api->db_col_int(s, 0) : -1;
}

/*
 * The lobby's read mark of a user who has no row yet: the newest lobby message from before they registered
 * (its created_at, the server's clock as the account's is, on the room_messages_time index), so that what
 * was said before someone arrived is history, not unread, as for a room one joins. 0 when none; -1 on failure.
 */
static int64_t lobby_first_mark(int64_t user)
{
    forum_stmt_t *s = api->db_stmt("SELECT COALESCE((SELECT x.id FROM room_messages x WHERE x.room_id = 1 "
                                   "  AND x.created_at <= (SELECT created_at FROM users WHERE id = ?) "
                                   "  ORDER BY x.created_at DESC, x.seq DESC LIMIT 1), 0)");
    api->db_bind_int(s, 1, user);
    return s != NULL && api->db_step(s) == FORUM_DB_ROW ? api->db_col_int(s, 0) : -1;
}

int rooms_mark_read(int64_t room, int64_t user, int64_t up_to)
{
    /*
     * Forward only, and never past the room's last message: what arrives later counts as unread. The marks are
     * MAX and MIN of two values, written as CASE (two-argument MIN and MAX are SQLite's only).
     */
    forum_stmt_t *s;
    if (room == ROOMS_LOBBY) {
        /* the row is made on first use, from the mark the user had without it */
        int64_t first = lobby_first_mark(user);
        if (first < 0)
            return 0;
        /* MAX(first, MIN(up_to, last_message_id)), with up_to raised to first beforehand (the same value) */
        int64_t mark = up_to > first ? up_to : first;
        s = api->db_stmt("INSERT INTO room_members (room_id, user_id, joined_at, read_up_to) "
                         "SELECT 1, ?, (SELECT created_at FROM users WHERE id = ?), "
                         "  CASE WHEN last_message_id <= ? THEN ? WHEN ? < last_message_id THEN ? ELSE last_message_id END "
                         "FROM rooms WHERE id = 1 ON CONFLICT (room_id, user_id) DO UPDATE SET read_up_to = "
                         "  CASE WHEN room_members.read_up_to > excluded.read_up_to THEN room_members.read_up_to ELSE excluded.read_up_to END");
        api->db_bind_int(s, 1, user);
        api->db_bind_int(s, 2, user);
        api->db_bind_int(s, 3, first);
        api->db_bind_int(s, 4, first);
        api->db_bind_int(s, 5, mark);
        api->db_bind_int(s, 6, mark);
        return step_done(s);
    }
    s = api->db_stmt("UPDATE room_members SET read_up_to = CASE WHEN read_up_to >= r.mark THEN read_up_to ELSE r.mark END "
                     "FROM (SELECT CASE WHEN ? < last_message_id THEN ? ELSE last_message_id END AS mark FROM rooms WHERE id = ?) AS r "
                     "WHERE room_id = ? AND user_id = ?");
    api->db_bind_int(s, 1, up_to);
    api->db_bind_int(s, 2, up_to);
    api->db_bind_int(s, 3, room);
    api->db_bind_int(s, 4, room);
    api->db_bind_int(s, 5, user);
    return step_done(s);
}

/* Unread messages of `room` after read mark `mark`, and the mentions of `user` among them; false on failure. */
static int counts_after(int64_t room, int64_t user, int64_t mark, int64_t *unread, int64_t *mentions)
{
    forum_stmt_t *s = api->db_stmt("SELECT r.message_count - COALESCE((SELECT x.seq FROM room_messages x WHERE x.room_id = ? "
                                   "  AND x.id <= ? ORDER BY x.id DESC LIMIT 1), 0), "
                                   "(SELECT COUNT(*) FROM room_mentions n WHERE n.user_id = ? AND n.room_id = ? AND n.message_id > ?) "
                                   "FROM rooms r WHERE r.id = ?");
    if (s == NULL)
        return 0;
    api->db_bind_int(s, 1, room);
    api->db_bind_int(s, 2, mark);
    api->db_bind_int(s, 3, user);
    api->db_bind_int(s, 4, room);
    api->db_bind_int(s, 5, mark);
    api->db_bind_int(s, 6, room);
    if (api->db_step(s) != FORUM_DB_ROW)
        return 0;
    *unread = api->db_col_int(s, 0);
    *mentions = api->db_col_int(s, 1);
    return 1;
}

int rooms_write(yajl_gen g, int64_t id, int64_t user)
{
    forum_stmt_t *s = api->db_stmt("SELECT r.id, r.name, r.created_by, u.nickname, r.created_at, r.member_count, r.last_message_id, "
                                   "  CASE WHEN m.user_id IS NOT NULL THEN 1 ELSE 0 END, m.read_up_to "
                                   "FROM rooms r LEFT JOIN users u ON u.id = r.created_by "
                                   "LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = ? WHERE r.id = ?");
    int64_t unread = 0, mentions = 0, members, mark;
    int joined, ok = 1;
    if (s == NULL)
        return 0;
    api->db_bind_int(s, 1, user);
    api->db_bind_int(s, 2, id);
    if (api->db_step(s) != FORUM_DB_ROW)
        return 0;
    /* unread and mentions count only for a member; the lobby's members are everyone, with or without a row */
    joined = id == ROOMS_LOBBY || api->db_col_int(s, 7) != 0;
    mark = api->db_col_int(s, 7) != 0 ? api->db_col_int(s, 8) : id == ROOMS_LOBBY ? lobby_first_mark(user) : 0;
    if (joined)
        ok = mark >= 0 && counts_after(id, user, mark, &unread, &mentions);
    members = id == ROOMS_LOBBY ? rooms_account_count() : api->db_col_int(s, 5);
    yajl_gen_map_open(g);
    pu_key_int(g, "id", api->db_col_int(s, 0));
    pu_key_str(g, "name", api->db_col_text(s, 1));
    pu_str(g, "created_by");
    if (api->db_col_is_null(s, 2)) {
        yajl_gen_null(g);
    } else {
        yajl_gen_map_open(g);
        pu_key_int(g, "id", api->db_col_int(s, 2));
        pu_key_str(g, "nickname", api->db_col_text(s, 3));
        yajl_gen_map_close(g);
    }
    pu_key_str(g, "created_at", api->db_col_text(s, 4));
    pu_key_int(g, "member_count", members < 0 ? 0 : members);
    pu_str(g, "last_message_id");
    if (api->db_col_int(s, 6) == 0)
        yajl_gen_null(g);
    else
        yajl_gen_integer(g, api->db_col_int(s, 6));
    pu_str(g, "joined");
    yajl_gen_bool(g, joined);
    pu_key_int(g, "unread", unread);
    pu_key_int(g, "mentions", mentions);
    yajl_gen_map_close(g);
    return ok && members >= 0;
}

long rooms_members(int64_t room, int64_t **ids)
{
    size_t n = 0, cap = 64;
    int64_t *out = malloc(cap * sizeof(*out));
    forum_stmt_t *s = api->db_stmt("SELECT user_id FROM room_members WHERE room_id = ?");
    int rc;
    if (out == NULL || s == NULL)
        goto Error;
    api->db_bind_int(s, 1, room);
    while ((rc = api->db_step(s)) == FORUM_DB_ROW) {
        if (n == cap) {
            int64_t *grown = realloc(out, 2 * cap * sizeof(*out));
            if (grown == NULL)
                goto Error;
            out = grown;
            cap *= 2;
        }
        out[n++] = api->db_col_int(s, 0);
    }
    if (rc != FORUM_DB_DONE)
        goto Error;
    *ids = out;
    return (long)n;
Error:
    free(out);
    return -1;
}
