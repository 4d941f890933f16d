/* The chat plugin's parts: the message store, HTTP routes, and the WebSocket side (frames, typing, replay). */
#ifndef CHAT_H
#define CHAT_H

#include <stdint.h>
#include "../util/plugin_util.h"

extern const forum_api_t *chat_api;
extern forum_plugin_t *chat_self;

enum {
    CHAT_BODY_MAX = 4000,
    CHAT_CLIENT_ID_MAX = 64,
    CHAT_LISTED_NICKNAME_MAX = 1024, /* bytes: a longer nickname (never one of the API's) is not listed by nickname */
};

/* store.c: messages, per-user index, conversations (SQL only) */

typedef struct chat_message {
    int64_t id, from, to;
    const char *body;      /* valid until the next store call */
    const char *client_id; /* may be NULL */
    const char *created_at;
} chat_message_t;

/** True when user `id` exists. */
int chat_user_exists(int64_t id);
/** The message `from` already sent with `client_id`, into `out`; false when none. */
int chat_find_by_client_id(int64_t from, const char *client_id, chat_message_t *out);
/**
 * Stores a message, its index rows and both conversations inside the caller's transaction and returns its
 * id, or 0 on failure. When `from` already sent `client_id`, nothing is stored: `*repeat` is set and the
 * earlier message's id returned.
 */
int64_t chat_store_row(int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id, const char *created_at,
                       int *repeat);
/* store_rows.c: a batch of new messages at once */
/**
 * Stores `num` new messages (their id unset; client_id set) as chat_store_row would, one after another, inside
 * the caller's transaction, in a few statements of many rows: 1 with every id set (the writes may still be
 * queued: db_commit reports their failure, a client_id used before among them), 0 on failure (db_failure),
 * -1 when one sender's client_id comes twice among them: store those one by one.
 */
int chat_store_rows(chat_message_t *m, const size_t *body_len, size_t num);
void chat_store_rows_fini(void);
/** Writes message `id` as API.md's message, with client_id when `for_user` is its sender; false when none. */
int chat_write_message(yajl_gen g, int64_t id, int64_t for_user);
/** Writes `m` as API.md's message, with client_id when `for_user` is its sender. */
void chat_write_fields(yajl_gen g, const chat_message_t *m, int64_t for_user);
/** The newest message id to or from `user`, 0 if none. */
int64_t chat_last_message_id(int64_t user);
/** Marks messages from `other` to `user` read up to `up_to`. */
int chat_mark_read(int64_t user, int64_t other, int64_t up_to);
/**
 * The conversations of `user` whose last message id is below `before_id`, newest first, at most `limit`:
 * rows (other_id, nickname, last_message_at, unread, last_message_id). Step it; NULL when it does not compile.
 */
forum_stmt_t *chat_conversations_page(int64_t user, int64_t before_id, int64_t limit);
/**
 * Every account whose nickname (case-insensitive) is after `from` (or from `from` on, when `inclusive`) and
 * below `below` (no upper bound when NULL), by nickname, at most `limit`: rows (id, nickname, has a
 * conversation with `user`). `user` itself is among them; nicknames over CHAT_LISTED_NICKNAME_MAX bytes are not.
 * NULL when it does not compile or a bound is not text.
 */
forum_stmt_t *chat_nicknames_page(int64_t user, const char *from, int inclusive, const char *below, int64_t limit);

/* users.c: GET /api/users, paged by a cursor, with a nickname prefix search */
int chat_users_route(forum_req_t *req);

/** Builds {"type":"message","message":...} for `for_user` into a new generator (caller frees). */
yajl_gen chat_message_frame(int64_t id, int64_t for_user);
/** The same frame from a message in hand, without reading it back. */
yajl_gen chat_frame_of(const chat_message_t *m, int64_t for_user);

/* routes.c */
int chat_routes_init(forum_plugin_t *p);

/* live.c: the WebSocket side wired together; the pieces the others share */
int chat_live_init(forum_plugin_t *p);
void chat_live_fini(void);
/** The other user named by `key`: an existing user other than `me`; 0 after sending an error. */
int64_t chat_frame_user(forum_ws_t *ws, yajl_val frame, const char *key, int64_t me, const char *ref);

/* send.c: message.send */
/** Sets up the batch of sends (util/send_batch.c) whose timers `p` owns. */
void chat_send_init(forum_plugin_t *p);
void chat_send_frame(forum_ws_t *ws, yajl_val frame);
/** Delivers a stored message to every connection of its sender and recipient (but those catching up: their replay sends it). */
void chat_deliver(const chat_message_t *m);
/** Forgets a closing connection: its queued sends are still stored, but no answer goes to it. */
void chat_send_forget(forum_ws_t *ws);
void chat_send_fini(void);

/* typing.c */
/** Sets up the table of typists (util/typists.c). */
void chat_typing_init(void);
void chat_typing_frame(forum_ws_t *ws, yajl_val frame);
/** `from` sent a message to `to`: a typist is told to stop. */
void chat_typing_sent(int64_t from, int64_t to);
void chat_typing_offline(const forum_event_t *ev);
void chat_typing_fini(void);

/* replay.c: private messages as /ws?after=ID replays them (the core drives the replay) */
extern const forum_replay_source_t chat_replay_source;

#endif
