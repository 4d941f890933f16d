/*
 * The message store. Three tables:
 *   messages       one row per message; (sender_id, client_id) unique for idempotent sends
 *   message_index  two rows per message, one per participant: replay for a user is one range scan
 *   conversations  two rows per pair of users: last message, unread count and read mark per side, and
 *                  how many messages that side received (with messages.lo_sent/hi_sent: exact unread
 *                  counts after a read mark without counting messages)
 */
#include <string.h>
#include "chat.h"

#define api chat_api

/* Users found before: accounts are never deleted through forumd, so a user seen once stays. */
enum { KNOWN_USERS_SLOTS = 16384 };
static int64_t known_users[KNOWN_USERS_SLOTS];

int chat_user_exists(int64_t id)
{
    int64_t *slot = &known_users[(uint64_t)id % KNOWN_USERS_SLOTS];
    if (id > 0 && *slot == id)
        return 1;
    forum_stmt_t *s = api->db_stmt("SELECT 1 FROM users WHERE id = ?");
    api->db_bind_int(s, 1, id);
    if (api->db_step(s) != FORUM_DB_ROW)
        return 0;
    *slot = id;
    return 1;
}

int chat_find_by_client_id(int64_t from, const char *client_id, chat_message_t *out)
{
    forum_stmt_t *s = api->db_stmt("SELECT id, recipient_id FROM messages WHERE sender_id = ? AND client_id = ?");
    api->db_bind_int(s, 1, from);
    api->db_bind_text(s, 2, client_id, strlen(client_id));
    if (api->db_step(s) != FORUM_DB_ROW)
        return 0;
    out->id = api->db_col_int(s, 0);
    out->from = from;
    out->to = api->db_col_int(s, 1);
    return 1;
}

static int step_done(forum_stmt_t *s)
{
    return s != NULL && api->db_step(s) == FORUM_DB_DONE;
}

/*
 * The message's two index rows, and both sides' conversations (the recipient's counts one more received
 * and unread): two statements of two rows each, not four, since on PostgreSQL each statement is a round
 * trip. The two rows never share a key: nobody sends to themselves (chat_frame_user).
 */
static int index_and_converse(int64_t from, int64_t to, int64_t id, const char *created_at)
{
    forum_stmt_t *s = api->db_stmt("INSERT INTO message_index (user_id, message_id) VALUES (?, ?), (?, ?)");
    api->db_bind_int(s, 1, from);
    api->db_bind_int(s, 2, id);
    api->db_bind_int(s, 3, to);
    api->db_bind_int(s, 4, id);
    if (!step_done(s))
        return 0;
    s = api->db_stmt("INSERT INTO conversations (user_id, other_id, last_message_id, last_message_at, unread, received) "
                     "VALUES (?, ?, ?, ?, 0, 0), (?, ?, ?, ?, 1, 1) ON CONFLICT (user_id, other_id) DO UPDATE SET "
                     "last_message_id = excluded.last_message_id, last_message_at = excluded.last_message_at, "
                     "unread = conversations.unread + excluded.unread, received = conversations.received + excluded.received");
    api->db_bind_int(s, 1, from);
    api->db_bind_int(s, 2, to);
    api->db_bind_int(s, 3, id);
    api->db_bind_text(s, 4, created_at, strlen(created_at));
    api->db_bind_int(s, 5, to);
    api->db_bind_int(s, 6, from);
    api->db_bind_int(s, 7, id);
    api->db_bind_text(s, 8, created_at, strlen(created_at));
    return step_done(s);
}

/* How many messages `from` and `to` have each sent the other so far; false when the read failed. */
static int sent_so_far(int64_t from, int64_t to, int64_t *by_from, int64_t *by_to)
{
    forum_stmt_t *s = api->db_stmt("SELECT COALESCE((SELECT received FROM conversations WHERE user_id = ? AND other_id = ?), 0), "
                                   "COALESCE((SELECT received FROM conversations WHERE user_id = ? AND other_id = ?), 0)");
    api->db_bind_int(s, 1, to);
    api->db_bind_int(s, 2, from);
    api->db_bind_int(s, 3, from);
    api->db_bind_int(s, 4, to);
    if (s == NULL || api->db_step(s) != FORUM_DB_ROW)
        return 0;
    *by_from = api->db_col_int(s, 0);
    *by_to = api->db_col_int(s, 1);
    return step_done(s);
}

int64_t chat_store_row(int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id, const char *created_at,
                       int *repeat)
{
    chat_message_t existing;
    int64_t id, by_from, by_to;

    if (!sent_so_far(from, to, &by_from, &by_to))
        return 0;
    ++by_from;
    /* one sequence numbers private and room messages: one id orders them, one resume point replays both */
    if ((id = api->db_next_id("messages")) == 0)
        return 0;
    /* a client_id this sender used before stores nothing: the message it named is the answer */
    forum_stmt_t *s = api->db_stmt("INSERT INTO messages (id, sender_id, recipient_id, body, client_id, created_at, lo_sent, hi_sent) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING id");
    api->db_bind_int(s, 1, id);
    api->db_bind_int(s, 2, from);
    api->db_bind_int(s, 3, to);
    api->db_bind_text(s, 4, body, body_len);
    api->db_bind_text(s, 5, client_id, strlen(client_id));
    api->db_bind_text(s, 6, created_at, strlen(created_at));
    api->db_bind_int(s, 7, from < to ? by_from : by_to);
    api->db_bind_int(s, 8, from < to ? by_to : by_from);
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        id = api->db_col_int(s, 0);
        if (!step_done(s))
            return 0;
        break;
    case FORUM_DB_DONE:
        *repeat = 1;
        return chat_find_by_client_id(from, client_id, &existing) ? existing.id : 0;
    default:
        return 0;
    }
    *repeat = 0;
    if (!index_and_converse(from, to, id, created_at))
        return 0;
    return id;
}

void chat_write_fields(yajl_gen g, const chat_message_t *m, int64_t for_user)
{
    yajl_gen_map_open(g);
    pu_key_int(g, "id", m->id);
    pu_key_int(g, "from", m->from);
    pu_key_int(g, "to", m->to);
    pu_key_str(g, "body", m->body);
    pu_key_str(g, "created_at", m->created_at);
    if (m->from == for_user)
        pu_key_str(g, "client_id", m->client_id);
    yajl_gen_map_close(g);
}

int chat_write_message(yajl_gen g, int64_t id, int64_t for_user)
{
    forum_stmt_t *s = api->db_stmt("SELECT id, sender_id, recipient_id, body, client_id, created_at FROM messages WHERE id = ?");
    api->db_bind_int(s, 1, id);
    if (api->db_step(s) != FORUM_DB_ROW)
        return 0;
    chat_message_t m = {id, api->db_col_int(s, 1), api->db_col_int(s, 2), api->db_col_text(s, 3), api->db_col_text(s, 4),
                        api->db_col_text(s, 5)};
    chat_write_fields(g, &m, for_user);
    return 1;
}

yajl_gen chat_message_frame(int64_t id, int64_t for_user)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "message");
    pu_str(g, "message");
    if (!chat_write_message(g, id, for_user))
        yajl_gen_null(g);
    yajl_gen_map_close(g);
    return g;
}

yajl_gen chat_frame_of(const chat_message_t *m, int64_t for_user)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "message");
    pu_str(g, "message");
    chat_write_fields(g, m, for_user);
    yajl_gen_map_close(g);
    return g;
}

int64_t chat_last_message_id(int64_t user)
{
    forum_stmt_t *s = api->db_stmt("SELECT COALESCE(MAX(message_id), 0) FROM message_index WHERE user_id = ?");
    api->db_bind_int(s, 1, user);
    return api->db_step(s) == FORUM_DB_ROW ? api->db_col_int(s, 0) : 0;
}

int chat_mark_read(int64_t user, int64_t other, int64_t up_to)
{
    /*
     * The mark only moves forward and never past the conversation's last message (so every later message
     * counts as unread). Unread is what `other` sent after it: all it sent (received) minus what it had
     * sent up to the mark, read from the newest message of the pair at or below the mark (one seek).
     *
     * The new mark is MAX(read_up_to, MIN(up_to, last_message_id)), written as CASE (two-argument MIN and MAX
     * are SQLite's only); which side's count to read, and the pair's order, are decided here.
     */
#define NEW_MARK                                                                                                       \
    "CASE WHEN conversations.read_up_to >= ? OR conversations.read_up_to >= conversations.last_message_id "        \
    "THEN conversations.read_up_to WHEN ? < conversations.last_message_id THEN ? ELSE conversations.last_message_id END"
    static const char *const sql[2] = {
        "UPDATE conversations SET read_up_to = " NEW_MARK ", unread = received - COALESCE(("
        "  SELECT m.hi_sent FROM messages m WHERE m.user_lo = ? AND m.user_hi = ? AND m.id <= " NEW_MARK
        "  ORDER BY m.id DESC LIMIT 1), 0) WHERE user_id = ? AND other_id = ?",
        "UPDATE conversations SET read_up_to = " NEW_MARK ", unread = received - COALESCE(("
        "  SELECT m.lo_sent FROM messages m WHERE m.user_lo = ? AND m.user_hi = ? AND m.id <= " NEW_MARK
        "  ORDER BY m.id DESC LIMIT 1), 0) WHERE user_id = ? AND other_id = ?",
    };
#undef NEW_MARK
    /* `other` sent what is unread: its count is lo_sent when it is the lower id of the pair */
    int other_is_lo = other < user, i = 1;
    forum_stmt_t *s = api->db_stmt(sql[other_is_lo]);
    for (int k = 0; k != 3; ++k)
        api->db_bind_int(s, i++, up_to);
    api->db_bind_int(s, i++, other_is_lo ? other : user);
    api->db_bind_int(s, i++, other_is_lo ? user : other);
    for (int k = 0; k != 3; ++k)
        api->db_bind_int(s, i++, up_to);
    api->db_bind_int(s, i++, user);
    api->db_bind_int(s, i++, other);
    return step_done(s);
}

forum_stmt_t *chat_conversations_page(int64_t user, int64_t before_id, int64_t limit)
{
    /* the last message's preview: its first 80 characters (substr counts the characters of TEXT, not bytes, so
     * a cut never splits one) */
    forum_stmt_t *s = api->db_stmt("SELECT c.other_id, u.nickname, c.last_message_at, c.unread, c.last_message_id, "
                                   "substr(m.body, 1, 80) "
                                   "FROM conversations c JOIN users u ON u.id = c.other_id "
                                   "LEFT JOIN messages m ON m.id = c.last_message_id "
                                   "WHERE c.user_id = ? AND c.last_message_id < ? ORDER BY c.last_message_id DESC LIMIT ?");
    if (s == NULL)
        return NULL;
    api->db_bind_int(s, 1, user);
    api->db_bind_int(s, 2, before_id);
    api->db_bind_int(s, 3, limit);
    return s;
}

forum_stmt_t *chat_nicknames_page(int64_t user, const char *from, int inclusive, const char *below, int64_t limit)
{
    /*
     * The nickname column is COLLATE NOCASE (citext on PostgreSQL, where the bounds are cast to it so that they
     * compare as it does): these bounds are a range of its unique index. A nickname too long to be a cursor's
     * position (only an operator can store one) is left out: a position cut short would list its account again,
     * page after page. Its length in bytes is the one thing said differently: octet_length is PostgreSQL's (and
     * SQLite's only from 3.43).
     */
#define NICKNAMES_FROM                                                                                                 \
    "SELECT u.id, u.nickname, CASE WHEN EXISTS (SELECT 1 FROM conversations c WHERE c.user_id = ? AND c.other_id = u.id) " \
    "THEN 1 ELSE 0 END FROM users u "
#define NICKNAMES_TO(bytes) " AND " bytes " <= ? ORDER BY u.nickname LIMIT ?"
#define NICKNAMES(bytes)                                                                                               \
    {{NICKNAMES_FROM "WHERE u.nickname > CAST(? AS CITEXT)" NICKNAMES_TO(bytes),                                       \
      NICKNAMES_FROM "WHERE u.nickname > CAST(? AS CITEXT) AND u.nickname < CAST(? AS CITEXT)" NICKNAMES_TO(bytes)},   \
     {NICKNAMES_FROM "WHERE u.nickname >= CAST(? AS CITEXT)" NICKNAMES_TO(bytes),                                      \
      NICKNAMES_FROM "WHERE u.nickname >= CAST(? AS CITEXT) AND u.nickname < CAST(? AS CITEXT)" NICKNAMES_TO(bytes)}}
    static const char *const sql[2][2][2] = {NICKNAMES("length(CAST(u.nickname AS BLOB))"), NICKNAMES("octet_length(u.nickname)")};
#undef NICKNAMES_FROM
#undef NICKNAMES_TO
#undef NICKNAMES
    forum_stmt_t *s = api->db_stmt(sql[api->db_backend() == FORUM_DB_POSTGRES][inclusive != 0][below != NULL]);
    int i = 3;
    /* a bound that cannot be bound (not text) would read as NULL and silently match nothing */
    if (s == NULL || api->db_bind_int(s, 1, user) != 0 || api->db_bind_text(s, 2, from, strlen(from)) != 0 ||
        (below != NULL && api->db_bind_text(s, i++, below, strlen(below)) != 0) ||
        api->db_bind_int(s, i++, CHAT_LISTED_NICKNAME_MAX) != 0 || api->db_bind_int(s, i, limit) != 0)
        return NULL;
    return s;
}
