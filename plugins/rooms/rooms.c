/*
 * The rooms plugin: the lobby (every user is a member, a message there reaches everyone online) and
 * public rooms anyone can create, join and leave; their messages share the one message id sequence
 * with private messages, so `/ws?after=ID` replays both in order.
 */
#include "rooms.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0" /* a build may set another, as the swap tests do */
#endif

const forum_api_t *rooms_api;
forum_plugin_t *rooms_self;

/*
 * rooms           one row per room; the lobby is row 1. member_count is kept for the other rooms (the lobby's
 *                 is the number of accounts); message_count and each message's seq give exact unread counts
 *                 after a read mark without counting rows; last_message_id (0: none) orders the rooms list.
 * room_members    membership of the other rooms, and everyone's read mark; the lobby's membership is implicit,
 *                 its row (made on first use) holds only the read mark.
 * room_messages   ids from the shared sequence (explicit); (sender_id, client_id) unique for idempotent sends;
 *                 `mentions` the user ids the message mentions, as text ("3 17"), for rendering it.
 * room_mentions   one row per mentioned member: the mentions count above a read mark is one range.
 */
static const char schema_v1[] =
    "CREATE TABLE rooms ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    "  created_by INTEGER REFERENCES users (id),"
    "  created_at TEXT NOT NULL,"
    "  member_count INTEGER NOT NULL DEFAULT 0,"
    "  message_count INTEGER NOT NULL DEFAULT 0,"
    "  last_message_id INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX rooms_recent ON rooms (last_message_id, id);"
    "INSERT INTO rooms (id, name, created_by, created_at) VALUES (1, 'Lobby', NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));"
    "CREATE TABLE room_members ("
    "  room_id INTEGER NOT NULL REFERENCES rooms (id),"
    "  user_id INTEGER NOT NULL REFERENCES users (id),"
    "  joined_at TEXT NOT NULL,"
    "  read_up_to INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (room_id, user_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX room_members_user ON room_members (user_id, room_id);"
    "CREATE TABLE room_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  room_id INTEGER NOT NULL REFERENCES rooms (id),"
    "  sender_id INTEGER NOT NULL REFERENCES users (id),"
    "  body TEXT NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  mentions TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (sender_id, client_id)"
    ");"
    "CREATE INDEX room_messages_room ON room_messages (room_id, id);"
    "CREATE TABLE room_mentions ("
    "  user_id INTEGER NOT NULL,"
    "  room_id INTEGER NOT NULL,"
    "  message_id INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, room_id, message_id)"
    ") WITHOUT ROWID;";

/* the lobby's read mark of a user without a row: the last lobby message from before they registered */
static const char schema_v2[] = "CREATE INDEX room_messages_time ON room_messages (room_id, created_at, seq);";

/* checked by the host against plugins.settings.rooms before init runs */
static const forum_setting_decl_t settings[] = {
    {.name = "rate-limit", .type = FORUM_SETTING_BOOL, .def = 1},                                  /* room.send limited per user */
    {.name = "rate-burst", .type = FORUM_SETTING_UINT, .min = 1, .max = 10000, .def = 10},         /* messages at once */
    {.name = "rate-refill-ms", .type = FORUM_SETTING_UINT, .min = 1, .max = 3600000, .def = 1000}, /* one more each */
    /* users whose bucket is kept; past it the least recently used is forgotten (and starts again full) */
    {.name = "limiter-entries", .type = FORUM_SETTING_UINT, .min = 16, .max = 1u << 24, .def = 100000},
    {.name = NULL},
};

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    rooms_api = a;
    rooms_self = p;
    if (a->version < FORUM_API_VERSION || !FORUM_API_HAS(a, publish_all_but) || a->replay_source == NULL || a->db_next_id == NULL ||
        a->publish_all_but == NULL) {
        a->log(FORUM_LOG_ERROR, "rooms: this forumd has no shared message sequence or replay sources");
        return -1;
    }
    if (!rooms_limiter_init(p))
        return -1;
    if (a->migration(p, 1, schema_v1) || a->migration(p, 2, schema_v2) || a->replay_source(p, &rooms_replay_source) || rooms_routes_init(p) || rooms_live_init(p)) {
        rooms_limiter_fini(); /* the host runs fini only after an init that succeeded */
        return -1;
    }
    return 0;
}

static void fini(forum_plugin_t *p)
{
    (void)p;
    rooms_live_fini();
    rooms_limiter_fini();
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "rooms",
    .version = PLUGIN_VERSION,
    .settings = settings,
    .init = init,
    .fini = fini,
};
