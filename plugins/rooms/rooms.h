/* The rooms plugin's parts: the stores (rooms and members, messages, mentions), HTTP routes, and the WebSocket side. */
#ifndef ROOMS_H
#define ROOMS_H

#include <stdint.h>
#include "../util/history.h"
#include "../util/plugin_util.h"

extern const forum_api_t *rooms_api;
extern forum_plugin_t *rooms_self;

enum {
    ROOMS_LOBBY = 1,          /* the lobby's id: every user is a member, nobody leaves */
    ROOMS_BODY_MAX = 4000,    /* characters of a message */
    ROOMS_NAME_MIN = 3,       /* characters of a room's name */
    ROOMS_NAME_MAX = 40,
    ROOMS_CLIENT_ID_MAX = 64, /* characters of a client_id */
    ROOMS_MENTIONS_MAX = 50,  /* distinct @nicknames looked up per message */
    ROOMS_JOINED_MAX = 1000,  /* rooms one user may be a member of besides the lobby: bounds a rooms page */
};

/* store.c: rooms, membership, read marks, unread and mention counts (SQL only) */

/** 1 when room `id` exists, 0 when not, -1 when the read failed. */
int rooms_exists(int64_t id);
/** 1 when `user` is a member of room `room` (always for the lobby, an existing room), 0 when not, -1 when the read failed. */
int rooms_is_member(int64_t room, int64_t user);
/** The number of accounts: the lobby's member count, read again only when the users table changed; -1 on failure. */
int64_t rooms_account_count(void);
/** The rooms `user` joined besides the lobby; -1 on failure. */
int64_t rooms_joined_count(int64_t user);
/**
 * Creates room `name` by `user`, who becomes its member, inside a transaction of its own: its id, 0 when the name
 * is taken (case-insensitively), -1 when the database failed.
 */
int64_t rooms_create(int64_t user, const char *name, size_t name_len);
/** Adds or removes `user` as a member of `room` (not the lobby): 1 changed, 0 nothing to change, -1 failed. */
int rooms_join(int64_t room, int64_t user);
int rooms_leave(int64_t room, int64_t user);
/** The member count of `room` (the account count for the lobby); -1 on failure. */
int64_t rooms_member_count(int64_t room);
/**
 * Moves `user`'s read mark of `room` forward to `up_to`, never past the room's last message; the lobby's row is
 * made on first use. Inside or outside a transaction. False when the write failed.
 */
int rooms_mark_read(int64_t room, int64_t user, int64_t up_to);
/** Writes room `id` as API.md's `room` for `user` (joined, unread, mentions); false when none or a read failed. */
int rooms_write(yajl_gen g, int64_t id, int64_t user);
/** The ids of the members of `room` (not the lobby) into a malloc'ed array `*ids` (caller frees); count, or -1. */
long rooms_members(int64_t room, int64_t **ids);

/* messages.c: room messages (SQL and rendering) */

typedef struct rooms_message {
    int64_t id, room, from;
    const char *body;      /* owned by the caller */
    size_t body_len;
    const char *client_id; /* owned by the caller */
    char created_at[32];
    int64_t mentions[ROOMS_MENTIONS_MAX];
    size_t num_mentions;
} rooms_message_t;

/** The id of the message `from` sent with `client_id`; 0 when none (or the read failed). */
int64_t rooms_find_by_client_id(int64_t from, const char *client_id);
/**
 * Stores `m` inside the caller's transaction: its id from the one message sequence, its ordinal in its room, the
 * room's counters, its mentions (resolved here from `tokens`, see mentions.c), the sender's read mark. Returns
 * the id, or 0 on failure (db_failure tells). When its sender already used its client_id nothing is stored:
 * `*repeat` is set and the earlier message's id returned. When the sender is not a member, `*forbidden` is set
 * and 0 returned with nothing stored.
 */
int64_t rooms_store_message(rooms_message_t *m, const char *tokens, int *repeat, int *forbidden);
/** Writes message `id` as API.md's room_message, with client_id when `for_user` sent it; false when none. */
int rooms_write_message(yajl_gen g, int64_t id, int64_t for_user);
/** Writes the message of the current row of a statement of rooms_page_stmt. */
void rooms_write_row(yajl_gen g, forum_stmt_t *s, int64_t for_user);
/** The statement that reads a history page's messages, oldest first, in one query; NULL when it does not compile. */
forum_stmt_t *rooms_page_stmt(const pu_history_t *h);
/** Builds {"type":"room.message","message":...} for `for_user` into a new generator (caller frees); NULL when none. */
yajl_gen rooms_message_frame(int64_t id, int64_t for_user);
/** The same frame from a message in hand: `nickname` is the sender's; client_id when `with_client_id`. */
yajl_gen rooms_frame_of(const rooms_message_t *m, const char *nickname, int with_client_id);
/** The nickname of `user` into `buf` (at least 33 bytes, longer ones cut); false when none. */
int rooms_nickname(int64_t user, char *buf, size_t size);

/* mentions.c: @nickname tokens */

/**
 * The distinct @nickname tokens of `body` (at most ROOMS_MENTIONS_MAX, compared case-insensitively), each followed
 * by a NUL, the list ended by an empty string, into a malloc'ed buffer (caller frees); NULL when out of memory.
 */
char *rooms_mention_tokens(const char *body, size_t len);
/**
 * Resolves the tokens to the users they mention in `room` (members; anyone for the lobby), `from` left out, into
 * `m->mentions`. False when a read failed.
 */
int rooms_resolve_mentions(rooms_message_t *m, const char *tokens);

/* list.c: GET /api/rooms */
int rooms_list_route(forum_req_t *req);

/* routes.c */
int rooms_routes_init(forum_plugin_t *p);

/* limiter.c: the token bucket of room.send per user */
/** Reads the settings; false when out of memory. */
int rooms_limiter_init(forum_plugin_t *p);
void rooms_limiter_fini(void);
/** Takes a token of `user`: 0 when allowed, else the milliseconds until one is there (nothing taken). */
int64_t rooms_limiter_take(int64_t user);

/* live.c: the WebSocket side wired together, and the pieces the others share */
int rooms_live_init(forum_plugin_t *p);
void rooms_live_fini(void);
/**
 * The room a frame names in `key`: an existing room `me` is a member of. 0 after sending an error (bad_request,
 * not_found, forbidden, or unavailable).
 */
int64_t rooms_frame_room(forum_ws_t *ws, yajl_val frame, const char *key, int64_t me, const char *ref);
/** Publishes the JSON text of `g` to every member of `room` (everyone for the lobby), but user `except` (0: none). */
void rooms_publish(int64_t room, yajl_gen g, int flags, int64_t except);
/** The members of `room` but user `except`, into a new array; -1 (logged) when they could not be read. */
long rooms_members_but(int64_t room, int64_t except, int64_t **ids);
/**
 * Publishes message `m`: `to_sender` to its sender's connections (with the client_id), `to_members` to the other
 * `members` (everyone but the sender for the lobby, whose list is not read).
 */
void rooms_publish_message(const rooms_message_t *m, yajl_gen to_sender, yajl_gen to_members, const int64_t *members,
                           size_t num_members);

/* send.c: room.send */
/** Sets up the batch of sends (util/send_batch.c) whose timers `p` owns. */
void rooms_send_init(forum_plugin_t *p);
void rooms_send_frame(forum_ws_t *ws, yajl_val frame);
/** Forgets a closing connection: its queued sends are still stored, but no answer goes to it. */
void rooms_send_forget(forum_ws_t *ws);
void rooms_send_fini(void);

/* typing.c: room.typing */
/** Sets up the table of typists (util/typists.c). */
void rooms_typing_init(void);
void rooms_typing_frame(forum_ws_t *ws, yajl_val frame);
/** `from` sent a message to `room`: a typist there is told to stop. */
void rooms_typing_sent(int64_t from, int64_t room);
/** `from` left `room`: a typist there stops. */
void rooms_typing_left(int64_t from, int64_t room);
void rooms_typing_offline(const forum_event_t *ev);
void rooms_typing_fini(void);

/* replay.c: the replay source of /ws?after=ID */
extern const forum_replay_source_t rooms_replay_source;

#endif
