/*
 * The chat plugin: private messages, the users list with presence and unread counts, read marks,
 * typing, and the replay that lets a reconnecting client miss nothing and see nothing twice.
 */
#include "chat.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0" /* a build may set another, as the swap tests do */
#endif

const forum_api_t *chat_api;
forum_plugin_t *chat_self;

static const char schema_v1[] =
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  sender_id INTEGER NOT NULL REFERENCES users (id),"
    "  recipient_id INTEGER NOT NULL REFERENCES users (id),"
    "  body TEXT NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  user_lo INTEGER AS (MIN(sender_id, recipient_id)) VIRTUAL,"
    "  user_hi INTEGER AS (MAX(sender_id, recipient_id)) VIRTUAL,"
    "  UNIQUE (sender_id, client_id)"
    ");"
    "CREATE INDEX messages_pair ON messages (user_lo, user_hi, id);"
    "CREATE TABLE message_index ("
    "  user_id INTEGER NOT NULL,"
    "  message_id INTEGER NOT NULL REFERENCES messages (id),"
    "  PRIMARY KEY (user_id, message_id)"
    ") WITHOUT ROWID;"
    "CREATE TABLE conversations ("
    "  user_id INTEGER NOT NULL,"
    "  other_id INTEGER NOT NULL,"
    "  last_message_id INTEGER NOT NULL,"
    "  last_message_at TEXT NOT NULL,"
    "  unread INTEGER NOT NULL DEFAULT 0,"
    "  read_up_to INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, other_id)"
    ") WITHOUT ROWID;";

/*
 * Bounded work per request. The users list walks conversations by their newest message and the other
 * accounts by nickname (both indexed). Unread counts are kept exact without counting messages: each
 * message records how many messages each side of its pair had sent up to it (lo_sent for the lower
 * user id, hi_sent for the higher), each conversation how many it received, so a read mark at any id
 * costs one index seek (received minus what the other side had sent up to the mark).
 */
static const char schema_v2[] =
    "ALTER TABLE messages ADD COLUMN lo_sent INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN hi_sent INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE conversations ADD COLUMN received INTEGER NOT NULL DEFAULT 0;"
    "UPDATE messages SET lo_sent = w.lo, hi_sent = w.hi FROM ("
    "  SELECT id, SUM(sender_id = user_lo) OVER pair AS lo, SUM(sender_id = user_hi) OVER pair AS hi FROM messages"
    "  WINDOW pair AS (PARTITION BY user_lo, user_hi ORDER BY id)) AS w WHERE messages.id = w.id;"
    "UPDATE conversations SET received = (SELECT COUNT(*) FROM messages m WHERE m.user_lo = MIN(user_id, other_id)"
    "  AND m.user_hi = MAX(user_id, other_id) AND m.sender_id = other_id),"
    "  read_up_to = MIN(read_up_to, last_message_id);"
    "CREATE INDEX conversations_recent ON conversations (user_id, last_message_id);";

/* Message ids come from the core's sequence "messages", shared with room messages: it starts past every id here. */
static const char schema_v3[] =
    "INSERT INTO forum_sequences (name, value) SELECT 'messages', COALESCE(MAX(id), 0) FROM messages WHERE true "
    "ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);";

/*
 * PostgreSQL: the same tables, numbered alike. A fresh database has no messages to count, so the fix-ups of
 * SQLite's version 2 are left out; the pair's columns are stored (PostgreSQL computes no virtual ones).
 */
static const char pg_schema_v1[] =
    "CREATE TABLE messages ("
    "  id BIGINT PRIMARY KEY,"
    "  sender_id BIGINT NOT NULL REFERENCES users (id),"
    "  recipient_id BIGINT NOT NULL REFERENCES users (id),"
    "  body TEXT NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  user_lo BIGINT GENERATED ALWAYS AS (LEAST(sender_id, recipient_id)) STORED,"
    "  user_hi BIGINT GENERATED ALWAYS AS (GREATEST(sender_id, recipient_id)) STORED,"
    "  UNIQUE (sender_id, client_id)"
    ");"
    "CREATE INDEX messages_pair ON messages (user_lo, user_hi, id);"
    "CREATE TABLE message_index ("
    "  user_id BIGINT NOT NULL,"
    "  message_id BIGINT NOT NULL REFERENCES messages (id),"
    "  PRIMARY KEY (user_id, message_id)"
    ");"
    "CREATE TABLE conversations ("
    "  user_id BIGINT NOT NULL,"
    "  other_id BIGINT NOT NULL,"
    "  last_message_id BIGINT NOT NULL,"
    "  last_message_at TEXT NOT NULL,"
    "  unread BIGINT NOT NULL DEFAULT 0,"
    "  read_up_to BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, other_id)"
    ");";

static const char pg_schema_v2[] = "ALTER TABLE messages ADD COLUMN lo_sent BIGINT NOT NULL DEFAULT 0;"
                                   "ALTER TABLE messages ADD COLUMN hi_sent BIGINT NOT NULL DEFAULT 0;"
                                   "ALTER TABLE conversations ADD COLUMN received BIGINT NOT NULL DEFAULT 0;"
                                   "CREATE INDEX conversations_recent ON conversations (user_id, last_message_id);";

static const char pg_schema_v3[] =
    "INSERT INTO forum_sequences (name, value) SELECT 'messages', COALESCE(MAX(id), 0) FROM messages "
    "ON CONFLICT (name) DO UPDATE SET value = GREATEST(forum_sequences.value, excluded.value);";

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    chat_api = a;
    chat_self = p;
    if (a->version < FORUM_API_VERSION || !FORUM_API_HAS(a, db_next_id))
        return -1;
    return a->migration_for(p, FORUM_DB_SQLITE, 1, schema_v1) || a->migration_for(p, FORUM_DB_SQLITE, 2, schema_v2) ||
           a->migration_for(p, FORUM_DB_SQLITE, 3, schema_v3) || a->migration_for(p, FORUM_DB_POSTGRES, 1, pg_schema_v1) ||
           a->migration_for(p, FORUM_DB_POSTGRES, 2, pg_schema_v2) || a->migration_for(p, FORUM_DB_POSTGRES, 3, pg_schema_v3) ||
           chat_routes_init(p) || chat_live_init(p);
}

static void fini(forum_plugin_t *p)
{
    (void)p;
    chat_live_fini();
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "chat",
    .version = PLUGIN_VERSION,
    .init = init,
    .fini = fini,
};
