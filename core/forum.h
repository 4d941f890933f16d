/*
 * The core's internal interface: what the host's modules offer each other. Plugins see only
 * plugins/forum_plugin.h; the table that bridges the two is built in core/api.c.
 */
#ifndef FORUM_H
#define FORUM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>
#include <h2o.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>
#include "config.h"
#include "../plugins/forum_plugin.h"

#define FORUM_VERSION "0.1.0"

#define FORUM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* core/log.c */

/** Writes one line to stderr: time, level, message. */
void forum_log(int level, const char *fmt, ...) FORUM_PRINTF(2, 3);
void forum_log_set_level(int level);

/* core/clock.c */

/** Milliseconds since the epoch (wall clock): for what the API shows and for session expiry. */
int64_t forum_now_ms(void);
/** Milliseconds on a clock that never jumps: for intervals and timeouts. */
int64_t forum_mono_ms(void);
/** Writes `ms` as ISO-8601 UTC with milliseconds ("2026-11-29T13:45:00.123Z"); buf holds at least 25 bytes. */
void forum_format_time(int64_t ms, char *buf);

/* core/text.c */

const char *forum_text_trim(const char *s, size_t *len, forum_text_info_t *info);
/** True when `s` is strict UTF-8 (no overlong form, surrogate or code point past U+10FFFF) without NUL bytes. */
int forum_utf8_valid(const char *s, size_t len);
/**
 * For output of what may predate the input gate: NULL when `s` is valid for forum_utf8_valid; otherwise a copy
 * (malloc, NUL-terminated, `*outlen` bytes) in which every offending byte is U+FFFD.
 */
char *forum_utf8_repair(const char *s, size_t len, size_t *outlen);
/** forum_api_t.text_field on a string that is already at hand. */
int forum_text_check(const char *s, size_t len, size_t min_chars, size_t max_chars, int flags, forum_text_t *out);
/** forum_api_t.text_field. */
int forum_text_field(yajl_val obj, const char *name, size_t min_chars, size_t max_chars, int flags, forum_text_t *out);

/* core/json.c */

/**
 * Parses one JSON document of `len` bytes (not NUL-terminated), nested at most 32 deep; NULL with a message on failure.
 * This is the input gate for JSON: the bytes must be strict UTF-8 without NUL, no escape may decode to a NUL or a
 * surrogate, and every string and key of the tree is strict UTF-8.
 */
yajl_val forum_json_parse(const char *buf, size_t len, char *err, size_t errlen);
/**
 * forum_json_parse, except that an escape that is not text (\u0000, an unpaired surrogate) is read as U+FFFD and
 * sets `*repaired`: for a caller that refuses such a document but must name what it refuses (the hub's error
 * frame carries the frame's client_id). Never hand a repaired tree to a plugin.
 */
yajl_val forum_json_parse_repaired(const char *buf, size_t len, char *err, size_t errlen, int *repaired);
/** A generator for compact output. */
yajl_gen forum_json_gen(void);
/** Writes a NUL-terminated string (or null when s is NULL). */
void forum_json_str(yajl_gen g, const char *s);
/** Writes the members of API.md's error object: {"code","message","field"?} as an open object's content. */
void forum_json_error_members(yajl_gen g, const char *code, const char *message, const char *field);
/** The member `key` of object `obj`, or NULL. */
yajl_val forum_json_member(yajl_val obj, const char *key);

/* core/fiber.c */

typedef struct forum_fiber forum_fiber_t;
typedef void (*forum_fiber_exit_fn)(forum_fiber_t *f);
/** Fibers on (PostgreSQL) or off (SQLite: forum_fiber_run calls its function directly). */
void forum_fiber_enable(int on);
int forum_fiber_enabled(void);
/** Runs fn(arg) on a fiber of its own (when on, and not already on one); returns when it ends or first suspends. */
void forum_fiber_run(void (*fn)(void *), void *arg);
/** The running fiber, NULL on the loop's own stack. */
forum_fiber_t *forum_fiber_self(void);
/** Gives the loop back until forum_fiber_wake; only on a fiber. */
void forum_fiber_suspend(void);
/** Resumes a suspended fiber: at once from the loop, after the running fiber gives the loop back from a fiber. */
void forum_fiber_wake(forum_fiber_t *f);
/** Suspends the running fiber until forum_fiber_wake_waiting(key, ...) wakes it; -1 at once off a fiber. */
int forum_fiber_wait(const void *key);
/** Wakes at most `max` of the fibers waiting on `key`, those that began to wait first. */
void forum_fiber_wake_waiting(const void *key, size_t max);
/** `fn` runs when the running fiber's function has returned (the data layer gives back its connection). */
void forum_fiber_on_exit(forum_fiber_exit_fn fn);
/** `fn` (NULL: none) runs when any fiber's function has returned, after its own on_exit (core/bus_order.c). */
void forum_fiber_on_every_exit(forum_fiber_exit_fn fn);
/** A word of the fiber's own (the data layer keeps the fiber's connection there); NULL at first. */
void *forum_fiber_data(forum_fiber_t *f);
void forum_fiber_set_data(forum_fiber_t *f, void *data);
/** Fibers alive now (running or suspended) and at most so far. */
void forum_fiber_stats(size_t *live, size_t *peak);

/* core/db.c (and db_version.c: forum_db_version; db_migrate.c: forum_db_migrate) */

/**
 * Opens (creating) the database with WAL, foreign keys, synchronous=NORMAL and the core's own schema. With a
 * loop, every statement stepped during a loop turn is reset at the end of that turn, so that no read
 * transaction outlives the callback that started it; without one (unit tests) call forum_db_reset_active.
 */
int forum_db_open(const char *path, uv_loop_t *loop, char *err, size_t errlen);
/** Opens the configured backend: the SQLite file, or the PostgreSQL pool (every connection made before this returns). */
int forum_db_open_conf(const forum_config_t *conf, uv_loop_t *loop, char *err, size_t errlen);
/** The backend's part of /_status: members of an open object ("backend", "state", ...). */
void forum_db_status(yajl_gen g);

void forum_db_reset_active(void);
/** The server serves from now on: the loop's connection stops waiting for locks (startup may wait for one). */
void forum_db_serving(void);
/** The loop has stopped: what runs now (plugins' fini) may wait for the database, as at start. */
void forum_db_serving_end(void);
/** What the last failed call met: FORUM_DB_BUSY (a lock), FORUM_DB_FULL (a full disk) or FORUM_DB_ERROR. */
int forum_db_failure(void);
/** Records a failure that is not the database's (no randomness, no memory), so that it is answered as a 500. */
void forum_db_fail_other(void);
void forum_db_close(void);
forum_stmt_t *forum_db_stmt(const char *sql);
int forum_db_bind_int(forum_stmt_t *s, int idx, int64_t v);
int forum_db_bind_text(forum_stmt_t *s, int idx, const char *v, size_t len);
int forum_db_bind_blob(forum_stmt_t *s, int idx, const void *v, size_t len);
int forum_db_bind_null(forum_stmt_t *s, int idx);
int forum_db_step(forum_stmt_t *s);
int64_t forum_db_col_int(forum_stmt_t *s, int col);
const char *forum_db_col_text(forum_stmt_t *s, int col);
int forum_db_col_is_null(forum_stmt_t *s, int col);
int64_t forum_db_rows_json(forum_stmt_t *s, yajl_gen g);
void forum_db_row_json(forum_stmt_t *s, yajl_gen g);
int64_t forum_db_last_id(void);
/** Rows changed by the last statement. */
int forum_db_changes(void);
int forum_db_begin(void);
int forum_db_commit(void);
void forum_db_rollback(void);
/** Runs the statements of `sql` (several, separated by ';'); 0 on success, the error logged otherwise. */
int forum_db_exec(const char *sql);
/**
 * A number that moves whenever rows of `table` may have changed: written through this connection (its
 * triggers included), by raw SQL or a rollback, or by another connection. Equal numbers mean unchanged.
 */
uint64_t forum_db_version(const char *table);
/** The next number of sequence `name` inside the caller's transaction; 0 when the database failed (db_sequence.c). */
int64_t forum_db_next_id(const char *name);
/** api->db_queue: runs a write whose rows are not read, on PostgreSQL inside a transaction without waiting for it. */
int forum_db_queue(forum_stmt_t *s);
/** api->wait: suspends the running callback until forum_fiber_wake_waiting(key, ...), giving back its idle connection; -1 off a fiber. */
int forum_db_wait(const void *key);
/** The first of `count` consecutive numbers of sequence `name`, drawn as one (the last is first + count - 1); 0 on failure. */
int64_t forum_db_next_ids(const char *name, int64_t count);

typedef struct forum_migration {
    int number;
    const char *sql;
} forum_migration_t;
/** The backend that serves the data calls: FORUM_DB_SQLITE or FORUM_DB_POSTGRES. */
int forum_db_backend(void);
/** Applies `owner`'s migrations that have not run yet, in order, each in its own transaction. */
int forum_db_migrate(const char *owner, const forum_migration_t *migrations, size_t n);

/* core/db_errors.c */

/** How a failed database call is answered. */
typedef struct forum_db_answer {
    int status;             /* 503 for a lock or a full disk, 500 otherwise */
    const char *code;       /* "unavailable" or "internal" */
    unsigned retry_after_s; /* the Retry-After header, 0 for none */
    char message[256];
} forum_db_answer_t;
/** Fills `out` for `failure` (forum_db_failure()); `what` names what failed. */
void forum_db_describe(int failure, const char *what, forum_db_answer_t *out);
/** Answers an HTTP request for the last failed database call (before any plugin has it). */
void forum_send_db_error(h2o_req_t *req, const char *what);
/** The same for a plugin's request (forum_api_t.res_db_error). */
void forum_res_db_error(forum_req_t *req, const char *what);
/** The same as an error frame (forum_api_t.ws_db_error). */
void forum_ws_db_error(forum_ws_t *ws, const char *what, const char *ref);

/* core/session.c */

#define FORUM_SESSION_HASH_LEN 32

typedef struct forum_session {
    int64_t user_id;
    int64_t expires_ms;
    uint8_t hash[FORUM_SESSION_HASH_LEN];
} forum_session_t;

/** Creates a session; writes its token (64 hex characters and a NUL) into `token`. 0 on success. */
int forum_session_create(int64_t user_id, int64_t lifetime_ms, char *token, forum_session_t *out);
/** Finds the live session of `token`; 0 when found, -1 when unknown or expired, -2 when the lookup failed. */
int forum_session_find(const char *token, size_t len, forum_session_t *out);
/** Deletes a session; 0 when it is gone, -1 when the delete failed (forum_db_failure says why). */
int forum_session_delete(const uint8_t *hash);
/** PostgreSQL: sessions found are kept in memory (on) until their row is deleted or changed anywhere. */
void forum_session_cache_enable(int on);
void forum_session_cache_clear(void);
/** The row of the session whose hash is `hex` was deleted or changed (a notification): its entry goes. */
void forum_session_forget_hex(const char *hex);
/** Deletes a batch of expired sessions. */
int forum_session_purge(void);
/** Extracts the `sid` cookie's value from a Cookie header; returns its length (0 if absent). */
size_t forum_session_cookie(const char *header, size_t len, const char **value);
/* How much of a request's cookies is read for a session: the first sid values, in the first Cookie headers, in
 * their first bytes. A browser sends one sid (two while an old one lingers), in one header or, over HTTP/2, one
 * header per cookie (up to 180 of them); the bounds keep an attacker's thousands of values from each costing a
 * hash and a database lookup, and the scan itself short. */
#define FORUM_SESSION_SIDS_MAX 4
#define FORUM_SESSION_COOKIE_HEADERS_MAX 256
#define FORUM_SESSION_COOKIE_BYTES_MAX 65536
/** Collects up to `max` `sid` values of the Cookie headers, in order, within the bounds above; returns how many. */
size_t forum_session_sids(const h2o_headers_t *headers, h2o_iovec_t *sids, size_t max);
/** The request's live session, looked up from its first `sid` cookies; 0 when found, -1 when none, -2 when a lookup failed. */
int forum_session_of_request(h2o_req_t *req, forum_session_t *out);

/* core/hub.c */

void forum_hub_init(uv_loop_t *loop, const forum_config_t *conf);
void forum_hub_publish_user(int64_t user_id, const char *json, size_t len, int flags);
void forum_hub_publish_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags);
void forum_hub_publish_all(const char *json, size_t len, int flags);
/** forum_hub_publish_all but the connections of `user_id`. */
void forum_hub_publish_all_but(int64_t user_id, const char *json, size_t len, int flags);
void forum_hub_send_error(forum_ws_t *ws, const char *code, const char *message, const char *ref);
int64_t forum_hub_ws_user(forum_ws_t *ws);
void forum_hub_publish_user_except(int64_t user_id, const char *json, size_t len, int flags, forum_ws_t *const *except, size_t n);
int forum_hub_user_online(int64_t user_id);
/** Closes every connection of the session (logout) with `code`. */
void forum_hub_close_session(int64_t user_id, const uint8_t *hash, int code, const char *reason);
/* What another node published (core/bus.c): delivered to this node's connections only. */
void forum_hub_deliver_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags);
void forum_hub_deliver_all_but(int64_t user_id, const char *json, size_t len, int flags);
void forum_hub_close_session_local(int64_t user_id, const uint8_t *hash, int code, const char *reason);
/** Rings the connections of these users, or of everyone: each reads what is new for it from the database (core/replay.c). */
void forum_hub_ring_users(const int64_t *ids, size_t n);
void forum_hub_ring_all(void);
/** Rings every connection whose newest message had is older than `id`: any of them may lack one up to it. */
void forum_hub_ring_behind(int64_t id);
/** api->publish_message(_all_but): with a bus, the frame travels with its message's run (core/bus_order.c). */
void forum_hub_publish_message(int64_t id, const int64_t *ids, size_t n, const char *json, size_t len);
void forum_hub_publish_message_all_but(int64_t id, int64_t user_id, const char *json, size_t len);
/**
 * A frame of message `id`, in the order of every node (core/bus_order.c): to the connections of the users `ids`, or
 * with `to_all` of everyone but user ids[0], that are not catching up and do not have it yet.
 */
void forum_hub_deliver_message(int64_t id, int to_all, const int64_t *ids, size_t n, const char *json, size_t len);
/** A user came online or went offline (on every node, with a bus): the presence frame to everyone here, and the plugins' event. */
void forum_hub_presence(int64_t user_id, int online);
/** The users with a connection on this node, -1 without memory; `*out` is malloc'ed. */
long forum_hub_local_users(int64_t **out);
/** Closes every connection with 1001 and stops the timers; connections leave as their close completes. */
void forum_hub_shutdown(void);
size_t forum_hub_count(void);
/** Releases the hub's handles and tables once every connection is gone. */
void forum_hub_dispose(void);

/* core/bus.c: the events between the nodes of one forum, over Redis */

typedef enum { FORUM_BUS_OFF, FORUM_BUS_CONNECTING, FORUM_BUS_UP, FORUM_BUS_DOWN } forum_bus_state_t;
/** Names this node and, with bus: configured, connects to Redis (it must answer: -1 and `err` when not). */
int forum_bus_start(uv_loop_t *loop, const forum_config_t *conf, char *err, size_t errlen);
void forum_bus_stop(void);
/** True with a bus: messages then reach connections in one order on every node (core/bus_order.c), or are rung. */
int forum_bus_enabled(void);
/** True while both connections to Redis work. */
int forum_bus_up(void);
/** Publishes an announcement of messages (core/bus_order.c) to the other nodes. */
void forum_bus_publish_order(const char *msg, size_t len);
/** Reads what the subscribed connection holds now (before taking silence for a loss). */
void forum_bus_read_pending(void);
const char *forum_bus_node(void);
void forum_bus_publish_users(const int64_t *ids, size_t n, const char *json, size_t len, int flags);
void forum_bus_publish_all_but(int64_t user_id, const char *json, size_t len, int flags);
void forum_bus_close_session(int64_t user_id, const uint8_t *hash, int code, const char *reason);
/** A user's first connection on this node came (1) or their last went (0): Redis counts on how many nodes they are. */
void forum_bus_presence(int64_t user_id, int online);
/** api->shared_limit: a token bucket in Redis; -1 when there is none to use (see forum_plugin.h). */
int64_t forum_bus_shared_limit(const char *name, const char *key, unsigned burst, int64_t window_ms, int take);
/** Whether the user is online on another node, as far as this node has heard. */
int forum_bus_user_online(int64_t user_id);
/** The members "node" and "bus" of /_status. */
void forum_bus_status(yajl_gen g);

/* core/bus_order.c: messages in one order on every node */

/** Starts ordering (a bus is configured); stops, announcing what is left. */
void forum_order_start(uv_loop_t *loop);
void forum_order_stop(void);
/** The running callback drew the numbers lo..hi of "messages" (core/db_sequence.c). */
void forum_order_drawn(int64_t lo, int64_t hi);
/** The running callback's transaction ended: committed (1) or rolled back (0). */
void forum_order_tx_end(int committed);
/** A frame of message `id` joins its run's announcement: 0; -1 when it has no run here any more (ring instead). */
int forum_order_frame(int64_t id, char kind, const int64_t *users, size_t n, const char *json, size_t len);
/** Another node's announcement. */
void forum_order_heard(const char *msg, size_t len);
/** The bus is up (again): read where the sequence stands, ring who is behind it, then deliver in order. */
void forum_order_sync(void);
/** The bus is lost: what was held goes (the database rings meanwhile). */
void forum_order_lost(void);
/** The member "order" of /_status's bus. */
void forum_order_status(yajl_gen g);

/* core/ws_conn.c */

/** Upgrades `req` (HTTP/1.1, checked) to a WebSocket for the session's user; `query` is the /ws query string. */
void forum_hub_upgrade(h2o_req_t *req, const char *client_key, const forum_session_t *session, const char *query);
/** Records where the replay of `ws` stands (the last id sent), or with -1 that it has caught up. */
void forum_hub_replay_set(forum_ws_t *ws, int64_t after);
/** The replay's resume point, -1 when `ws` is not catching up. */
int64_t forum_hub_replay_get(forum_ws_t *ws);

/* core/replay.c */

/** The hello's last_message_id for `user`: the newest of every replay source. */
int64_t forum_replay_last_id(int64_t user);
/**
 * Holds back a new connection's replayable frames from the moment it joins the hub: its hello is written first,
 * and on PostgreSQL writing it suspends, while messages may be published.
 */
void forum_replay_hold(forum_ws_t *ws, const char *query);
/**
 * Starts the replay of a new connection once its hello is sent: from the /ws query's `after=ID`, else from the
 * hello's last_message_id `hello_last` when a message was held back meanwhile; else it goes live.
 */
void forum_replay_open(forum_ws_t *ws, int64_t user, const char *query, int64_t hello_last);
/** Goes on with the replay of `ws`, if it is catching up (its queue drained). */
void forum_replay_run(forum_ws_t *ws, int64_t user);
/** With a bus: `ws` reads what is new for it from the database, on a fiber of its own, in a moment. */
void forum_replay_ring(forum_ws_t *ws);
/** Rings due or under way: while some are, a ring of everyone would only pile more on the database. */
size_t forum_replay_rings_busy(void);
/** PostgreSQL: the newest committed number of "messages" (every message up to it is visible); -1 on failure. */
int64_t forum_replay_cut(void);
/** Starts the rings' timer on `loop`. */
void forum_replay_init(uv_loop_t *loop);

/* core/ws_queue.c */

void forum_hub_send(forum_ws_t *ws, const char *json, size_t len, int flags);
size_t forum_hub_ws_queued(forum_ws_t *ws);
/** 0 when the queue of `ws` is under its low mark; else 1, and ws.drained follows once it is. */
int forum_hub_drain_wait(forum_ws_t *ws);

/* core/route.c */

enum { FORUM_ROUTE_MAX_SEGMENTS = 16 };
/** What forum_route_split_path answers besides a segment count. */
enum { FORUM_PATH_NO_ROUTE = -1, FORUM_PATH_BAD = -2 };
/** A path parameter as matched: its name (in the pattern) and its raw, still percent-encoded value (in the path). */
typedef struct forum_route_param {
    const char *name;
    h2o_iovec_t value;
} forum_route_param_t;

/**
 * Splits a route pattern ("/api/posts/:id/comments") in place into at most `max` segments; ":name" marks a
 * parameter. Returns the count, or -1 for a malformed pattern (no leading '/', an empty segment, ":" alone, a dot
 * segment, too many).
 */
int forum_route_split_pattern(char *buf, char **segments, size_t max);
/**
 * Splits a raw request path (without its query) on the raw '/' into at most `max` segments pointing into `path`.
 * Returns the count; FORUM_PATH_NO_ROUTE when no route can match (an empty segment, too many segments, no leading
 * '/'); FORUM_PATH_BAD for a path holding a "." or ".." segment.
 */
int forum_route_split_path(const char *path, size_t len, h2o_iovec_t *segments, size_t max);
/** 1 when the segments match the pattern's (literals byte for byte), with the parameters' raw values; 0 otherwise. */
int forum_route_match(char *const *pattern, size_t num_pattern, const h2o_iovec_t *segments, size_t num_segments,
                      forum_route_param_t *params, size_t max_params, size_t *num_params);
/**
 * Percent-decodes a path segment into `out` (room for len + 1 bytes; NUL-terminated). Returns the decoded length, or
 * -1 for a malformed escape, a NUL, a value that is not strict UTF-8, or one that decodes to "." or "..".
 */
ssize_t forum_route_decode(const char *s, size_t len, char *out);
/** The value of one hexadecimal digit, or -1 (for percent-decoding, here and in query strings). */
int forum_hex_digit(char c);

/* core/plugin_host.c */

enum { FORUM_MAX_PARAMS = 8 };
typedef struct forum_route_match {
    forum_plugin_t *plugin;
    forum_route_fn fn;
    int flags;
    size_t num_params;
    forum_route_param_t params[FORUM_MAX_PARAMS]; /* raw: decode each with forum_route_decode */
} forum_route_match_t;

/** Prepares the host for the plugins of `conf`. */
int forum_plugins_init(const forum_config_t *conf);
/**
 * For `forumd -t`: opens each plugin of `conf` as a load would (copy, ELF check, dlopen, descriptor) and checks its
 * settings against its declarations, without running init. 0, or -1 with FILE:LINE: message in `err`.
 */
int forum_plugins_check_config(const forum_config_t *conf, char *err, size_t errlen);
/** Loads `name` from the plugins folder as its next generation. 0 on success; on failure the current generation stays. */
int forum_plugins_load(const char *name);
/** Loads `name` again when its file is not the one its current generation came from; 1 swapped, 0 unchanged, -1 refused. */
int forum_plugins_check(const char *name);
/** forum_plugins_check for every plugin (SIGHUP). */
void forum_plugins_check_all(void);
/** Starts the debounce timers, and watches plugins.dir when plugins.watch is on. */
int forum_plugins_watch(uv_loop_t *loop);
/** Retires every generation (fini when unpinned). */
void forum_plugins_shutdown(void);
/**
 * Matches method and the raw path (no query) against the current generations' routes. Returns 1 with `m` filled on
 * a match (raw parameter values), 0 for no route, -1 when the path exists with another method only, -2 for a path
 * no route may be matched against (a dot segment: FORUM_PATH_BAD).
 */
int forum_plugins_route(h2o_iovec_t method, h2o_iovec_t path, forum_route_match_t *m);
/** The current handler for WebSocket frames of `type` and its generation; NULL when none. */
forum_frame_fn forum_plugins_frame(const char *type, size_t len, forum_plugin_t **plugin);
/** Delivers a hub event to every current generation listening to it. */
void forum_plugins_emit(const forum_event_t *ev);
/** Pins a generation (a request, a job, a timer); unpinning the last pin of a retired generation unloads it. */
void forum_plugin_pin(forum_plugin_t *p);
void forum_plugin_unpin(forum_plugin_t *p);
/** False for a generation that was refused: it may finish what its init queued, but queue nothing more. */
int forum_plugin_may_queue(forum_plugin_t *p);
const char *forum_plugin_name(forum_plugin_t *p);
const forum_plugin_desc_t *forum_plugin_desc(forum_plugin_t *p);
const char *forum_plugin_setting(forum_plugin_t *p, const char *key);
/* registration, reached through the api table while a plugin's init runs */
int forum_plugin_add_route(forum_plugin_t *p, const char *method, const char *pattern, int flags, forum_route_fn fn);
int forum_plugin_add_frame(forum_plugin_t *p, const char *type, forum_frame_fn fn);
int forum_plugin_add_event(forum_plugin_t *p, const char *name, forum_event_fn fn);
int forum_plugin_add_migration(forum_plugin_t *p, int number, const char *sql);
/** A migration for one backend only (`backend` FORUM_DB_SQLITE or FORUM_DB_POSTGRES; 0: both). */
int forum_plugin_add_migration_for(forum_plugin_t *p, int backend, int number, const char *sql);
int forum_plugin_add_replay_source(forum_plugin_t *p, const forum_replay_source_t *src);
/** The replay sources of the current generations, in plugin order: up to `max` into `out`, each generation pinned into `gens` (the caller unpins them); how many. */
size_t forum_plugins_replay_sources(const forum_replay_source_t **out, forum_plugin_t **gens, size_t max);
/** Writes the loaded plugins as a JSON array (for /_status). */
void forum_plugins_status(yajl_gen g);

/* core/plugin_settings.c */

/**
 * Checks the settings `conf` gives plugin `plugin` against its declarations `decls` (NULL: none). 0; -1 when
 * the declarations themselves are wrong (the plugin's fault; one line in `msg`); -2 when the configuration is
 * (`msg` is FILE:LINE: message, the line of the setting's key).
 */
int forum_plugin_settings_check(const forum_config_t *conf, const char *plugin, const forum_setting_decl_t *decls, char *msg,
                                size_t msglen);
uint64_t forum_plugin_setting_uint(forum_plugin_t *p, const char *key);
int forum_plugin_setting_bool(forum_plugin_t *p, const char *key);

/* core/plugin_copy.c */

typedef struct forum_plugin_copy {
    int fd;        /* the sealed memory file; -1 when closed */
    char path[32]; /* "/proc/self/fd/N": what dlopen opens */
} forum_plugin_copy_t;
/**
 * Copies the plugin file `src` into a sealed memory file and checks it as ELF (forum_elf_check); `st` receives
 * the source's stat. 0, or -1 with one line in `msg`. Close the copy after dlclose of what was loaded from it.
 */
int forum_plugin_copy_open(const char *src, forum_plugin_copy_t *copy, struct stat *st, char *msg, size_t msglen);
void forum_plugin_copy_close(forum_plugin_copy_t *copy);

/* core/elf_check.c */

/**
 * 0 when the `size` bytes at `buf` are an ELF64 shared object for this machine whose program headers, segments
 * and section headers lie within them; -1 with the reason in `msg` when not.
 */
int forum_elf_check(const unsigned char *buf, size_t size, char *msg, size_t msglen);

/* core/work.c */

int forum_work_queue(forum_plugin_t *p, forum_req_t *req, forum_work_fn work, forum_done_fn done, void *arg);
int forum_work_defer(forum_plugin_t *p, unsigned ms, forum_timer_fn fn, void *arg);

/* core/api.c */

/** The table handed to every plugin's init. */
extern const forum_api_t forum_api;

/* core/conn.c */

/** Accepts one connection from `listener` and hands it to h2o, unless limits.connections is reached or we stop. */
void forum_conn_accept(uv_stream_t *listener, h2o_accept_ctx_t *accept_ctx);
/** Counts `req` against its connection until h2o disposes it: a connection with a request in flight is not late. */
void forum_conn_request_begin(h2o_req_t *req);
/** The hub owns the upgraded socket and its timeouts: the request-arrival deadline no longer applies. */
void forum_conn_owned_by_hub(h2o_socket_t *sock);
/** Sets h2o's HTTP/1.1 request timeout to limits.header-timeout and starts the sweep; before h2o_context_init. */
void forum_conn_init(uv_loop_t *loop, const forum_config_t *conf, h2o_globalconf_t *h2o_conf);

/* core/server.c */

typedef struct forum_server {
    uv_loop_t *loop;
    forum_config_t *conf;
    h2o_globalconf_t h2o_config;
    h2o_context_t h2o_ctx;
    int64_t started_ms;
    size_t num_sockets; /* open TCP connections, WebSockets included */
    size_t num_inflight; /* HTTP requests between their handler and their end */
    int shutting_down;
} forum_server_t;

extern forum_server_t forum_server;

/** Builds the TLS contexts (also in check mode); reports "FILE:LINE: message" into err. */
int forum_server_prepare_tls(forum_config_t *conf, char *err, size_t errlen);
/** Registers the handlers, opens the listeners and runs the loop until a graceful shutdown completes. Returns the exit code. */
int forum_server_run(forum_config_t *conf);

/* core/conn_limits.c */

/** Counts the request against its connection; -1 when it was answered (429 or 503) and must go no further. */
/** Starts the sweep that charges every HTTP/2 connection's streams and closes stalled ones (once the loop runs). */
void forum_conn_limits_start(void);
int forum_conn_admit(h2o_req_t *req);
/** Holds `bytes` of answer against the request's connection until the request is disposed; -1 when over limits.conn-pending. */
int forum_conn_reserve(h2o_req_t *req, size_t bytes);

/* handlers/ (each one h2o handler, registered by forum_server_run) */

void forum_api_handler_register(h2o_pathconf_t *pathconf);
void forum_ws_handler_register(h2o_pathconf_t *pathconf);
void forum_status_handler_register(h2o_pathconf_t *pathconf);
void forum_files_register(h2o_pathconf_t *pathconf, const char *dir);
/** Adds the security headers to every response of the pathconf, counts its requests in flight, and logs them. */
void forum_common_register(h2o_pathconf_t *pathconf, int access_log);

/* handlers/framing.c */

/** 1 when an HTTP/1.x request head (`len` bytes from its request line) frames ambiguously: Content-Length with
 *  Transfer-Encoding, two different Content-Length values, two Host headers, or an obsolete folded line. */
int forum_http1_head_ambiguous(const char *head, size_t len);
/** Answers 400 for a request no route may see: an empty path, or ambiguous framing (which also closes the HTTP/1.x
 *  connection); returns 1 when it did. */
int forum_request_refused(h2o_req_t *req);

/* handlers/api.c: the request object plugins see */

/** Keeps `req` (the object, not necessarily the HTTP request) alive across asynchronous work. */
void forum_req_hold(forum_req_t *req);
void forum_req_release(forum_req_t *req);
const char *forum_req_param(forum_req_t *req, const char *name);
const char *forum_req_query(forum_req_t *req, const char *name);
yajl_val forum_req_body(forum_req_t *req);
int64_t forum_req_user(forum_req_t *req);
const char *forum_req_peer(forum_req_t *req);
int forum_req_alive(forum_req_t *req);
yajl_gen forum_res_json_begin(forum_req_t *req, int status);
void forum_res_json_end(forum_req_t *req);
void forum_res_json_raw(forum_req_t *req, int status, const char *json, size_t len);
void forum_res_error(forum_req_t *req, int status, const char *code, const char *message, const char *field);
void forum_res_empty(forum_req_t *req, int status);
void forum_res_header(forum_req_t *req, const char *name, const char *value);
int forum_req_session_start(forum_req_t *req, int64_t user_id);
int forum_req_session_end(forum_req_t *req);
/** Runs the request's route again shortly (its write met a lock); 0 when it may not (gone, or locked too long): answer it. */
int forum_req_retry(forum_req_t *req);

/* handlers/forwarded.c: the client behind a trusted proxy */

typedef struct forum_client {
    int has_addr;      /* false when the socket has no IP peer */
    uint8_t addr[16];  /* the client's address (IPv4 as ::ffff:a.b.c.d) */
    char text[64];     /* addr as text, or "unknown" */
    int via_proxy;     /* the socket's peer is in trusted-proxies, so its X-Forwarded-* headers were read */
    const h2o_url_scheme_t *scheme; /* what the client used: X-Forwarded-Proto from a trusted proxy, else the socket's */
    h2o_iovec_t authority;          /* likewise X-Forwarded-Host, else the request's own */
} forum_client_t;

/** The request's client: its socket peer, or what a trusted proxy (trusted-proxies) forwarded for it. */
void forum_client_of(h2o_req_t *req, forum_client_t *c);

/* handlers/respond.c */

/** Answers with API.md's error body. */
void forum_send_error(h2o_req_t *req, int status, const char *code, const char *message, const char *field);
/** Answers with the generator's JSON. */
void forum_send_json(h2o_req_t *req, int status, yajl_gen g);
/** Answers with JSON already rendered. */
void forum_send_json_bytes(h2o_req_t *req, int status, const char *json, size_t len);
/** True when the request's Origin header is absent or equals its own scheme://authority. */
int forum_same_origin(h2o_req_t *req);
/** The percent-decoded value of query parameter `name`, allocated from the request's pool; NULL when absent. */
const char *forum_query_param(h2o_req_t *req, const char *name);
/**
 * The input gate for the query string: 0 when every name and value percent-decodes to UTF-8 text without NUL;
 * otherwise -1 with `*field` the (decoded) name of the first parameter whose value does not (NULL when a name does not).
 */
int forum_query_check(h2o_req_t *req, const char **field);

#endif
