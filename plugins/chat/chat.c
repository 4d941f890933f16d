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

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    chat_api = a;
    chat_self = p;
    if (a->version < FORUM_API_VERSION || !FORUM_API_HAS(a, text_field))
        return -1;
    return a->migration(p, 1, schema_v1) || chat_routes_init(p) || chat_live_init(p);
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
