/*
 * Room messages (SQL and rendering): storing one inside the caller's transaction, with its id drawn from
 * the one message sequence that private messages share, and writing one as API.md's room_message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rooms.h"

#define api rooms_api

static int step_done(forum_stmt_t *s)
{
    return s != NULL && api->db_step(s) == FORUM_DB_DONE;
}

/* The id `from` sent with `client_id`: 0 when none, -1 when the read failed. */
static int64_t find_by_client_id(int64_t from, const char *client_id)
{
    forum_stmt_t *s = api->db_stmt("SELECT id FROM room_messages WHERE sender_id = ? AND client_id = ?");
    if (s == NULL || api->db_bind_text(s, 2, client_id, strlen(client_id)) != 0)
        return -1;
    api->db_bind_int(s, 1, from);
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        return api->db_col_int(s, 0);
    case FORUM_DB_DONE:
        return 0;
    default:
        return -1;
    }
}

int64_t rooms_find_by_client_id(int64_t from, const char *client_id)
{
    int64_t id = find_by_client_id(from, client_id);
    return id > 0 ? id : 0;
}

/* The mentioned ids as stored: decimal numbers separated by one space. */
static void mentions_text(const rooms_message_t *m, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i != m->num_mentions && off < size; ++i)
        off += (size_t)snprintf(buf + off, size - off, i == 0 ? "%lld" : " %lld", (long long)m->mentions[i]);
}

static int store_mentions(const rooms_message_t *m)
{
    for (size_t i = 0; i != m->num_mentions; ++i) {
        forum_stmt_t *s = api->db_stmt("INSERT INTO room_mentions (user_id, room_id, message_id) VALUES (?, ?, ?)");
        api->db_bind_int(s, 1, m->mentions[i]);
        api->db_bind_int(s, 2, m->room);
        api->db_bind_int(s, 3, m->id);
        if (!step_done(s))
            return 0;
    }
    return 1;
}

int64_t rooms_store_message(rooms_message_t *m, const char *tokens, int *repeat, int *forbidden)
{
    char mentions[ROOMS_MENTIONS_MAX * 21 + 1];
    int64_t id, seq;
    int member;
    forum_stmt_t *s;

    *repeat = *forbidden = 0;
    /* a client_id this sender used before stores nothing: the message it named is the answer */
    if ((id = find_by_client_id(m->from, m->client_id)) != 0) {
        *repeat = id > 0;
        return id > 0 ? id : 0;
    }
    /* checked again here: a leave may have come between the frame and its batch */
    if ((member = rooms_is_member(m->room, m->from)) <= 0) {
        *forbidden = member == 0;
        return 0;
    }
    s = api->db_stmt("SELECT message_count FROM rooms WHERE id = ?");
    api->db_bind_int(s, 1, m->room);
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW)
        return 0;
    seq = api->db_col_int(s, 0) + 1;
    if (!rooms_resolve_mentions(m, tokens) || (id = api->db_next_id("messages")) == 0)
        return 0;
    m->id = id;
    mentions_text(m, mentions, sizeof(mentions));
    s = api->db_stmt("INSERT INTO room_messages (id, room_id, sender_id, body, client_id, created_at, seq, mentions) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (s == NULL || api->db_bind_text(s, 4, m->body, m->body_len) != 0 ||
        api->db_bind_text(s, 5, m->client_id, strlen(m->client_id)) != 0)
        return 0;
    api->db_bind_int(s, 1, id);
    api->db_bind_int(s, 2, m->room);
    api->db_bind_int(s, 3, m->from);
    api->db_bind_text(s, 6, m->created_at, strlen(m->created_at));
    api->db_bind_int(s, 7, seq);
    api->db_bind_text(s, 8, mentions, strlen(mentions));
    if (!step_done(s))
        return 0;
    s = api->db_stmt("UPDATE rooms SET message_count = ?, last_message_id = ? WHERE id = ?");
    api->db_bind_int(s, 1, seq);
    api->db_bind_int(s, 2, id);
    api->db_bind_int(s, 3, m->room);
    /* one's own message is never unread: sending moves the sender's read mark to it */
    if (!step_done(s) || !store_mentions(m) || !rooms_mark_read(m->room, m->from, id))
        return 0;
    return id;
}

/* Writes the stored mention list ("3 17") as a JSON array. */
static void write_mentions(yajl_gen g, const char *text)
{
    yajl_gen_array_open(g);
    while (text != NULL && *text != '\0') {
        char *end;
        long long v = strtoll(text, &end, 10);
        if (end == text)
            break;
        yajl_gen_integer(g, v);
        text = end;
    }
    yajl_gen_array_close(g);
}

static void write_fields(yajl_gen g, int64_t id, int64_t room, int64_t from, const char *nickname, const char *body, size_t body_len,
                         const char *created_at, const char *mentions, const int64_t *mention_ids, size_t num_mentions,
                         const char *client_id)
{
    yajl_gen_map_open(g);
    pu_key_int(g, "id", id);
    pu_key_int(g, "room", room);
    pu_str(g, "from");
    yajl_gen_map_open(g);
    pu_key_int(g, "id", from);
    pu_key_str(g, "nickname", nickname);
    yajl_gen_map_close(g);
    pu_str(g, "body");
    yajl_gen_string(g, (const unsigned char *)body, body_len);
    pu_key_str(g, "created_at", created_at);
    pu_str(g, "mentions");
    if (mention_ids != NULL) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i != num_mentions; ++i)
            yajl_gen_integer(g, mention_ids[i]);
        yajl_gen_array_close(g);
    } else {
        write_mentions(g, mentions);
    }
    if (client_id != NULL)
        pu_key_str(g, "client_id", client_id);
    yajl_gen_map_close(g);
}

/* The columns rooms_write_row reads, of room_messages m joined with its sender u. */
#define MESSAGE_COLUMNS "m.room_id, m.sender_id, u.nickname, m.body, m.client_id, m.created_at, m.mentions, m.id "

void rooms_write_row(yajl_gen g, forum_stmt_t *s, int64_t for_user)
{
    int64_t from = api->db_col_int(s, 1);
    const char *body = api->db_col_text(s, 3);
    write_fields(g, api->db_col_int(s, 7), api->db_col_int(s, 0), from, api->db_col_text(s, 2), body, strlen(body),
                 api->db_col_text(s, 5), api->db_col_text(s, 6), NULL, 0, from == for_user ? api->db_col_text(s, 4) : NULL);
}

int rooms_write_message(yajl_gen g, int64_t id, int64_t for_user)
{
    forum_stmt_t *s = api->db_stmt("SELECT " MESSAGE_COLUMNS "FROM room_messages m JOIN users u ON u.id = m.sender_id WHERE m.id = ?");
    api->db_bind_int(s, 1, id);
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW)
        return 0;
    rooms_write_row(g, s, for_user);
    return 1;
}

forum_stmt_t *rooms_page_stmt(const pu_history_t *h)
{
    forum_stmt_t *s = api->db_stmt("SELECT " MESSAGE_COLUMNS "FROM room_messages m JOIN users u ON u.id = m.sender_id "
                                   "WHERE m.id IN (" PU_HISTORY_IDS ") ORDER BY m.id");
    if (s != NULL)
        pu_history_bind_ids(api, s, h);
    return s;
}

yajl_gen rooms_message_frame(int64_t id, int64_t for_user)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "room.message");
    pu_str(g, "message");
    if (!rooms_write_message(g, id, for_user)) {
        yajl_gen_free(g);
        return NULL;
    }
    yajl_gen_map_close(g);
    return g;
}

yajl_gen rooms_frame_of(const rooms_message_t *m, const char *nickname, int with_client_id)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "room.message");
    pu_str(g, "message");
    write_fields(g, m->id, m->room, m->from, nickname, m->body, m->body_len, m->created_at, NULL, m->mentions, m->num_mentions,
                 with_client_id ? m->client_id : NULL);
    yajl_gen_map_close(g);
    return g;
}

int rooms_nickname(int64_t user, char *buf, size_t size)
{
    forum_stmt_t *s = api->db_stmt("SELECT nickname FROM users WHERE id = ?");
    api->db_bind_int(s, 1, user);
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW)
        return 0;
    snprintf(buf, size, "%s", api->db_col_text(s, 0));
    return 1;
}
