/*
 * forumd plugin interface.
 *
 * A plugin is a shared object that exports exactly one symbol, `forum_plugin`, a constant
 * forum_plugin_desc_t. The host reads `abi` first and refuses any other value, so the rest of the
 * descriptor may change shape between ABI versions.
 *
 * `init` receives the plugin's handle and the core's function table. The table is append-only:
 * a newer core keeps every member an older plugin knows at the same offset, and a plugin that
 * needs a member added later checks `api->size` (FORUM_API_HAS) before calling it.
 *
 * Every callback a plugin registers runs on the event loop thread. A plugin never blocks: slow
 * work goes through `api->work_queue`, which also keeps the plugin's code loaded until the work's
 * completion has run. Plugins never call each other; they meet in the hub and in the database.
 *
 * The data calls (db_*, session_start, session_end) serve two backends with the same plugin code
 * (ABI 3, API version 5). On SQLite they return at once. On PostgreSQL a call that needs the server
 * suspends the callback that made it: the loop serves everyone else meanwhile, and the callback goes
 * on where it stopped when the answer is in. So a callback may be interleaved with others at every data
 * call: what it read of its own state before such a call may have changed after it (look it up again),
 * and the `ws` and `req` it was given stay valid (a closed connection drops what is sent to it). SQL is
 * written once for both: `?` parameters, `INSERT ... RETURNING id` for a new row's id, integers (0/1)
 * for truth values, and no function only one backend has; migrations may differ (migration_for).
 */
#ifndef FORUM_PLUGIN_H
#define FORUM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * ABI version of forum_plugin_desc_t and of the meaning of the calls below (2: the descriptor declares its
 * settings; 3: a data call may suspend the callback that makes it, see above).
 */
#define FORUM_PLUGIN_ABI 3
/** Version of forum_api_t; grows whenever a member is appended. */
#define FORUM_API_VERSION 8

/** True when the core's table `api` has member `member` (for members added after version 1). */
#define FORUM_API_HAS(api, member) ((api)->size >= offsetof(forum_api_t, member) + sizeof((api)->member))

#ifdef __GNUC__
#define FORUM_EXPORT __attribute__((visibility("default")))
#define FORUM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FORUM_EXPORT
#define FORUM_PRINTF(f, a)
#endif

typedef struct forum_plugin forum_plugin_t; /* one loaded generation of a plugin (opaque) */
typedef struct forum_req forum_req_t;       /* one HTTP request routed to a plugin (opaque) */
typedef struct forum_ws forum_ws_t;         /* one live WebSocket connection, owned by the hub (opaque) */
typedef struct forum_stmt forum_stmt_t;     /* a cached prepared statement (opaque) */
typedef struct forum_api forum_api_t;

enum { FORUM_LOG_ERROR = 0, FORUM_LOG_WARN = 1, FORUM_LOG_INFO = 2, FORUM_LOG_DEBUG = 3 };

/** Route flags. */
enum {
    FORUM_ROUTE_PUBLIC = 0x1, /* reachable without a session (register, login) */
};

/** Publish flags. */
enum {
    FORUM_PUB_EPHEMERAL = 0x1, /* may be dropped for a connection whose send queue is over its bound (typing) */
    FORUM_PUB_REPLAYABLE = 0x2, /* a replay sends it too: connections still catching up (ws_replay_set) are left out (v3) */
};

/**
 * Results of forum_api_t.db_step. FORUM_DB_BUSY: another process holds the database's lock, a statement ran
 * past its time limit, or every connection to the database server is in use (the loop never waits for any
 * of these: retry later); FORUM_DB_FULL: the disk (or the database's size limit) is full;
 * FORUM_DB_UNAVAILABLE: the database server cannot be reached (version 5: the connection was lost; forumd
 * reconnects by itself). All three are the server's trouble, not the client's: answer them with
 * res_db_error (503).
 */
enum {
    FORUM_DB_ERROR = -1,
    FORUM_DB_DONE = 0,
    FORUM_DB_ROW = 1,
    FORUM_DB_CONSTRAINT = 2,
    FORUM_DB_BUSY = 3,
    FORUM_DB_FULL = 4,
    FORUM_DB_UNAVAILABLE = 5,
};

/** The data backends (forum_api_t.db_backend, migration_for; version 5). */
enum { FORUM_DB_SQLITE = 1, FORUM_DB_POSTGRES = 2 };

/**
 * A route handler. It owns the request and must answer it exactly once, now or later (after a
 * work_queue completion). Its return value is ignored by the host; return 0.
 */
typedef int (*forum_route_fn)(forum_req_t *req);
/** A WebSocket frame handler for the `type` it registered; `frame` is the parsed JSON object. */
typedef void (*forum_frame_fn)(forum_ws_t *ws, yajl_val frame);

/**
 * Hub events a plugin can listen to (forum_api_t.on_event):
 *   "ws.hello"     a connection is about to receive its hello frame: add members to it with `gen`
 *                  (an open JSON object); `ws` and `user_id` are set
 *   "ws.open"      the hello frame was queued: `ws`, `user_id`, and `query` (the /ws query string,
 *                  without '?', possibly empty) are set
 *   "ws.close"     `ws` of `user_id` is going away: forget it (it is still valid during the call)
 *   "user.online"  the first connection of `user_id` opened
 *   "user.offline" the last connection of `user_id` closed
 *   "ws.drained"   the send queue of `ws` dropped under its low mark after a ws_drain_wait that returned 1
 *                  (version 3); it goes to the current generations only
 */
/**
 * A plugin's messages as `/ws?after=ID` replays them and the hello's `last_message_id` counts them
 * (forum_api_t.replay_source, version 4). The core drives the replay: it merges the messages of every
 * current plugin's source in id order, so a client's one resume point covers them all; message ids must
 * therefore come from the one sequence, db_next_id("messages"), and a message must be published with
 * FORUM_PUB_REPLAYABLE (a connection still catching up gets it from its replay instead).
 */
typedef struct forum_replay_source {
    /**
     * Fills `ids` with up to `max` ids above `after` of messages `user` may see, ascending, and returns how
     * many, or -1 when the database failed. `*complete_to` tells how far the answer is complete: every such
     * message with an id up to it is in `ids` (the last id when `max` were found; INT64_MAX when this source
     * has nothing more). The core sends nothing past the smallest `complete_to` of the sources before asking
     * again, so a source may also stop early (a bounded scan) with a smaller one.
     */
    int (*list)(int64_t user, int64_t after, int64_t *ids, size_t max, int64_t *complete_to);
    /** Sends message `id` (one `list` gave) to `ws` of `user`, as the frame it is published as. */
    void (*send)(forum_ws_t *ws, int64_t user, int64_t id);
    /** The newest id of a message `user` may see in this source, 0 if none. */
    int64_t (*last_id)(int64_t user);
} forum_replay_source_t;

typedef struct forum_event {
    const char *name;
    int64_t user_id;
    forum_ws_t *ws;
    yajl_gen gen;
    const char *query;
} forum_event_t;
typedef void (*forum_event_fn)(const forum_event_t *ev);

/** Work for the thread pool: `work` runs on a pool thread and must not call the api; `done` runs on the loop. */
typedef void (*forum_work_fn)(void *arg);
typedef void (*forum_done_fn)(void *arg, forum_req_t *req);
/** A one-shot timer's callback (forum_api_t.defer). */
typedef void (*forum_timer_fn)(void *arg);

/** Types of a plugin setting (forum_setting_decl_t.type). */
enum {
    FORUM_SETTING_UINT = 1, /* a whole number in [min, max] */
    FORUM_SETTING_BOOL = 2, /* true/false, yes/no, on/off */
};

/** Setting flags. */
enum {
    FORUM_SETTING_POWER_OF_TWO = 0x1, /* FORUM_SETTING_UINT: only powers of two */
};

/**
 * One setting a plugin accepts as `plugins.settings.NAME.KEY`. The descriptor lists them in a constant
 * table that the host reads before init runs (and `forumd -t` reads without running init), so a key the
 * plugin does not declare, or a value of the wrong type or out of range, stops forumd with FILE:LINE.
 */
typedef struct forum_setting_decl {
    const char *name;  /* the KEY; NULL ends the table */
    int type;          /* FORUM_SETTING_UINT or FORUM_SETTING_BOOL */
    unsigned flags;    /* FORUM_SETTING_* flags */
    uint64_t min, max; /* FORUM_SETTING_UINT: the accepted range, both ends included */
    uint64_t def;      /* the value when the configuration gives none (FORUM_SETTING_BOOL: 0 or 1) */
} forum_setting_decl_t;

/** What forum_api_t.text_trim found in a text. */
typedef struct forum_text_info {
    size_t chars;    /* characters (code points) after trimming */
    int has_control; /* a control character: C0 but tab, newline, carriage return; DEL; C1 (as text_field) */
} forum_text_info_t;

/** Flags of forum_api_t.text_field. */
enum {
    FORUM_TEXT_MULTILINE = 0x1, /* tab, newline and carriage return allowed (bodies); otherwise one line (titles, names) */
    FORUM_TEXT_VERBATIM = 0x2,  /* taken exactly as sent: not trimmed, no control-character rule (passwords, opaque ids) */
};

/** What forum_api_t.text_field found. */
typedef struct forum_text {
    const char *text; /* the trimmed text, pointing into the JSON tree; `len` bytes, not NUL-terminated after trimming */
    size_t len;       /* bytes */
    size_t chars;     /* characters (code points) */
    char message[80]; /* why it was refused ("required", "must be 1 to 200 characters", ...) */
} forum_text_t;

struct forum_api {
    uint32_t version; /* FORUM_API_VERSION of the core */
    uint32_t size;    /* sizeof(forum_api_t) of the core */

    /* --- registration: only while init runs --- */
    /** Adds a route. `pattern` is a path such as "/api/posts/:id/comments"; `:name` matches one segment. */
    int (*route)(forum_plugin_t *p, const char *method, const char *pattern, int flags, forum_route_fn fn);
    /** Receives WebSocket frames whose `type` is `type`. */
    int (*on_frame)(forum_plugin_t *p, const char *type, forum_frame_fn fn);
    /** Listens to a hub event (see forum_event_t). */
    int (*on_event)(forum_plugin_t *p, const char *name, forum_event_fn fn);
    /** Registers schema migration `number` (1, 2, ...) for this plugin's own tables; run once, in order, each in a transaction. */
    int (*migration)(forum_plugin_t *p, int number, const char *sql);

    /* --- logging --- */
    void (*log)(int level, const char *fmt, ...) FORUM_PRINTF(2, 3);

    /* --- requests --- */
    /** The value of path parameter `:name`, or NULL. */
    const char *(*req_param)(forum_req_t *req, const char *name);
    /** The percent-decoded value of query parameter `name` (the first one), or NULL when absent. */
    const char *(*req_query)(forum_req_t *req, const char *name);
    /** The parsed JSON body, or NULL when the request has none. The host has already refused non-JSON bodies. */
    yajl_val (*req_body)(forum_req_t *req);
    /** The user id of the request's session, 0 on a FORUM_ROUTE_PUBLIC route without one. */
    int64_t (*req_user)(forum_req_t *req);
    /** The client's address as text (for rate limits). */
    const char *(*req_peer)(forum_req_t *req);
    /** False once the client has gone away (an answer to it is then dropped). */
    int (*req_alive)(forum_req_t *req);

    /* --- responses (each request is answered once) --- */
    /** Starts a JSON response: write one value into the returned generator, then call res_json_end. */
    yajl_gen (*res_json_begin)(forum_req_t *req, int status);
    void (*res_json_end)(forum_req_t *req);
    /** Answers with the error body of API.md; `field` may be NULL. */
    void (*res_error)(forum_req_t *req, int status, const char *code, const char *message, const char *field);
    /** Answers with no body (204). */
    void (*res_empty)(forum_req_t *req, int status);
    /** Adds a response header (before the answer). */
    void (*res_header)(forum_req_t *req, const char *name, const char *value);

    /* --- sessions --- */
    /** Creates a session for `user_id` and sets its cookie on the response. 0 on success. */
    int (*session_start)(forum_req_t *req, int64_t user_id);
    /**
     * Deletes the request's session, clears its cookie and closes its WebSockets; 0 on success. -1 when the
     * delete failed: the session is still valid (answer with res_db_error, never as if logged out).
     */
    int (*session_end)(forum_req_t *req);

    /* --- thread pool --- */
    /**
     * Runs `work(arg)` on the thread pool, then `done(arg, req)` on the loop. The plugin generation
     * and `req` (may be NULL) stay valid until `done` has returned; `done` checks req_alive before
     * answering. Returns 0, or -1 when the work could not be queued (also when the generation was refused after
     * its init: it may finish what it queued, but not queue more).
     */
    int (*work_queue)(forum_plugin_t *p, forum_req_t *req, forum_work_fn work, forum_done_fn done, void *arg);

    /* --- data access (the loop thread's one SQLite connection) --- */
    /**
     * Returns the cached statement for `sql`, reset and with no bindings; NULL (logged) when it does
     * not compile. A statement is in use until the next db_stmt of the same text: do not hold two
     * uses of one text at once.
     */
    forum_stmt_t *(*db_stmt)(const char *sql);
    int (*db_bind_int)(forum_stmt_t *s, int idx, int64_t v);
    /** Binds `len` bytes of strict UTF-8 text; anything else (a NUL, bytes that are not UTF-8) is bound as NULL and gives -1. */
    int (*db_bind_text)(forum_stmt_t *s, int idx, const char *v, size_t len);
    int (*db_bind_null)(forum_stmt_t *s, int idx);
    /**
     * FORUM_DB_ROW, FORUM_DB_DONE, FORUM_DB_CONSTRAINT (a UNIQUE/CHECK/FK violation), FORUM_DB_BUSY (a lock held
     * elsewhere), FORUM_DB_FULL (no space), or FORUM_DB_ERROR (logged). Test for success, not for ERROR.
     */
    int (*db_step)(forum_stmt_t *s);
    int64_t (*db_col_int)(forum_stmt_t *s, int col);
    const char *(*db_col_text)(forum_stmt_t *s, int col);
    int (*db_col_is_null)(forum_stmt_t *s, int col);
    /** Writes every remaining row as a JSON object (column names as keys) into `g`; returns the row count or -1. */
    int64_t (*db_rows_json)(forum_stmt_t *s, yajl_gen g);
    /** Writes the current row as a JSON object. */
    void (*db_row_json)(forum_stmt_t *s, yajl_gen g);
    int64_t (*db_last_id)(void);
    /**
     * Transactions do not nest. Each returns 0 on success. Begin and commit reset every statement in use, and
     * so does a statement that writes outside a transaction (a read left open would make the write fail when
     * another connection has committed): finish reading before such a write, or write inside a transaction.
     */
    int (*db_begin)(void);
    int (*db_commit)(void);
    void (*db_rollback)(void);

    /* --- hub --- */
    /** Queues `json` (one text frame) to every connection of the user(s), or of everyone. */
    void (*publish_user)(int64_t user_id, const char *json, size_t len, int flags);
    void (*publish_users)(const int64_t *user_ids, size_t n, const char *json, size_t len, int flags);
    void (*publish_all)(const char *json, size_t len, int flags);
    /** Queues `json` to one connection. */
    void (*ws_send)(forum_ws_t *ws, const char *json, size_t len, int flags);
    /** Sends the `error` frame of API.md to one connection. */
    void (*ws_error)(forum_ws_t *ws, const char *code, const char *message, const char *ref);
    int64_t (*ws_user)(forum_ws_t *ws);
    /** True while the user has at least one open connection. */
    int (*user_online)(int64_t user_id);

    /* --- helpers --- */
    /** Milliseconds since the epoch. */
    int64_t (*now_ms)(void);
    /** Writes `ms` as 2026-11-29T13:45:00.123Z into buf (at least 25 bytes). */
    void (*format_time)(int64_t ms, char *buf);
    /** The raw text of a plugin setting (`plugins.settings.NAME.KEY`); NULL when absent. Prefer setting_uint and setting_bool (version 3). */
    const char *(*setting)(forum_plugin_t *p, const char *key);

    /* --- requests kept across the plugin's own queues --- */
    /**
     * Keeps the request object (not the connection) valid until the matching req_release, for a plugin that
     * queues a request itself before handing it to work_queue. Check req_alive before answering.
     */
    void (*req_hold)(forum_req_t *req);
    void (*req_release)(forum_req_t *req);

    /**
     * Trims white space at both ends of the UTF-8 text `s` of `*len` bytes: returns where the trimmed text
     * starts and sets `*len` to its length; `info` (may be NULL) receives its length in characters.
     */
    const char *(*text_trim)(const char *s, size_t *len, forum_text_info_t *info);

    /* --- pacing --- */
    /** Bytes queued to `ws` and not yet written. */
    size_t (*ws_queued)(forum_ws_t *ws);
    /**
     * Runs `fn(arg)` on the loop after `ms` milliseconds; the generation stays loaded until then, even when it is
     * refused after an init that deferred (`fn` still runs, to release `arg`). 0, or -1 (as work_queue).
     */
    int (*defer)(forum_plugin_t *p, unsigned ms, forum_timer_fn fn, void *arg);
    /** publish_user that leaves out the connections in `except` (those a plugin is still catching up). */
    void (*publish_user_except)(int64_t user_id, const char *json, size_t len, int flags, forum_ws_t *const *except, size_t n);

    /* --- cached renderings (version 2) --- */
    /**
     * A number that moves whenever rows of `table` may have changed (written by anyone, triggers included).
     * A rendering stamped with the versions of the tables it read is current while they are unchanged.
     */
    uint64_t (*db_version)(const char *table);
    /** Answers with `len` bytes of JSON rendered earlier (from res_json_begin's generator). */
    void (*res_json_raw)(forum_req_t *req, int status, const char *json, size_t len);

    /* --- replays kept by the connection, paced by its send queue (version 3) --- */
    /**
     * Records that `ws` is catching up and that its replay has sent everything up to id `after`; -1 records
     * that it has caught up. The connection keeps this, not the plugin generation, so a replay survives a
     * swap: the new generation reads where it stands with ws_replay_get. While catching up, frames published
     * with FORUM_PUB_REPLAYABLE leave the connection out (the replay sends them). One replay per connection.
     */
    void (*ws_replay_set)(forum_ws_t *ws, int64_t after);
    /** The `after` of the last ws_replay_set, or -1 when `ws` is not catching up. */
    int64_t (*ws_replay_get)(forum_ws_t *ws);
    /**
     * Paces a sender by the client: 0 when the send queue of `ws` is under its low mark (send more now);
     * otherwise 1, and the "ws.drained" event comes once the client has read enough (never on a closing
     * connection). A client that stops reading is not taken for a slow one: nothing is sent it meanwhile.
     */
    int (*ws_drain_wait)(forum_ws_t *ws);

    /* --- plugin settings (version 3) --- */
    /**
     * The value of the plugin's declared FORUM_SETTING_UINT setting `key`: the configured one (already checked
     * against the declaration when the generation was loaded) or the declared default. 0, logged, for a key the
     * plugin does not declare with that type.
     */
    uint64_t (*setting_uint)(forum_plugin_t *p, const char *key);
    /** The same for a FORUM_SETTING_BOOL setting: 1 or 0. */
    int (*setting_bool)(forum_plugin_t *p, const char *key);

    /* --- database failures (version 3) --- */
    /**
     * What the last failed database call (db_step, db_begin, db_commit, session_start, session_end) met:
     * FORUM_DB_BUSY, FORUM_DB_FULL or FORUM_DB_ERROR. Ask right after the failure.
     */
    int (*db_failure)(void);
    /**
     * Answers `req` for the last failed database call: 503 "unavailable" with Retry-After for a lock or a full
     * disk (nothing was written: the client may retry), 500 "internal" for anything else. `what` says what
     * failed ("the comment could not be stored"). Called from the route's own call (not from a work_queue
     * completion) after a lock, it may instead run the route again from the start a little later, for up to a
     * second: a route must have written nothing, and changed nothing it would change twice, before it fails.
     */
    void (*res_db_error)(forum_req_t *req, const char *what);
    /** The same as an `error` frame to one connection, with `ref` (a client_id, or the frame's type). */
    void (*ws_db_error)(forum_ws_t *ws, const char *what, const char *ref);

    /* --- one validator for text fields (version 3) --- */
    /**
     * Reads the string member `name` of `obj` as a text field: trimmed (unless FORUM_TEXT_VERBATIM), counted in
     * characters, `min_chars` to `max_chars`, and the one control-character rule: C0 controls, DEL and C1 controls
     * (U+0080-U+009F) are refused; tab, newline and carriage return only with FORUM_TEXT_MULTILINE; a single line
     * also refuses U+2028 and U+2029. Returns 0 with `out` filled, or the status to answer with `out->message` and
     * the field `name`: 400 (`obj` is not an object, the member is not a string) or 422 (missing, length, characters).
     */
    int (*text_field)(yajl_val obj, const char *name, size_t min_chars, size_t max_chars, int flags, forum_text_t *out);

    /* --- monotonic time (version 3) --- */
    /** Milliseconds on a clock that never jumps (not the wall clock): for rates, intervals and timeouts. */
    int64_t (*mono_ms)(void);

    /* --- messages several plugins share: one id sequence, one replay (version 4) --- */
    /**
     * Registers the plugin's replay source (only while init runs; at most one per plugin). `src` must stay
     * valid while the generation is loaded (a static). Once any plugin registers one, the core drives
     * `/ws?after=ID` (ws_replay_set, paced by ws_drain_wait) and writes the hello's last_message_id itself.
     */
    int (*replay_source)(forum_plugin_t *p, const forum_replay_source_t *src);
    /**
     * The next number of the sequence `name` (1 first), inside the caller's transaction: a rollback gives it
     * back. 0 when the database failed (db_failure). Numbers of one sequence grow in the order their
     * transactions commit, whichever plugin draws them (the table forum_sequences (name, value) holds the last
     * one; a migration that brings rows numbered before may raise it).
     */
    int64_t (*db_next_id)(const char *name);

    /* --- rooms (version 4) --- */
    /**
     * publish_all but every connection of user `user_id`: a broadcast whose author gets a copy of its own (a room
     * message's sender gets its client_id) costs one shared frame, not a list of everyone online.
     */
    void (*publish_all_but)(int64_t user_id, const char *json, size_t len, int flags);

    /* --- two backends: SQLite and PostgreSQL (version 5) --- */
    /** Which backend serves the data calls: FORUM_DB_SQLITE or FORUM_DB_POSTGRES. */
    int (*db_backend)(void);
    /**
     * Registers migration `number` for one backend only (FORUM_DB_SQLITE or FORUM_DB_POSTGRES), where the two
     * dialects differ (types, identity columns, indexes on expressions); `migration` registers one for both.
     * Each backend's numbers run 1, 2, 3, ...; a number may be portable on one backend's list and specific on
     * the other's. Only while init runs.
     */
    int (*migration_for)(forum_plugin_t *p, int backend, int number, const char *sql);

    /* --- a batch at a time on PostgreSQL (version 6) --- */
    /**
     * The first of `count` consecutive numbers of the sequence `name`, drawn at once under db_next_id's rules
     * (inside the caller's transaction; they grow in commit order); 0 when the database failed.
     */
    int64_t (*db_next_ids)(const char *name, int64_t count);
    /**
     * Suspends the running callback until another one wakes it with the same `key`: 0 once woken, -1 at once
     * where nothing suspends (SQLite). While a WebSocket frame's handler waits, its connection is not read
     * further, so a plugin whose queue is full pushes back on its senders instead of refusing them. A waiting
     * callback gives back its database connection unless it has a transaction open: statements are not kept
     * across a wait.
     */
    int (*wait)(const void *key);
    /** Wakes at most `max` of the callbacks waiting on `key`, those that began to wait first. */
    void (*wake)(const void *key, size_t max);
    /**
     * Runs `s`, a write whose rows (if any) are not read, perhaps later: on PostgreSQL inside a transaction it is
     * sent at once and not waited for, so that a batch's writes and its COMMIT go to the server together (a
     * pipeline). Its failure is reported by the next data call that waits for an answer (db_step of another
     * statement, db_commit), which then fails with it. 0, or -1 when it failed already (db_failure tells why).
     * Elsewhere (SQLite, no transaction) it runs now, as db_step.
     */
    int (*db_queue)(forum_stmt_t *s);

    /* --- version 7 --- */

    /**
     * A token bucket that every node of the forum shares (bus: in forum.yaml; Redis keeps it): `key` of the
     * limit `name` may spend `burst` tokens, regained evenly over `window_ms`. `take` > 0 spends that many
     * when there are enough; `take` < 0 gives them back. Returns the milliseconds until `take` tokens would be
     * there (0: spent now), or -1 when nothing is shared: a single node, Redis away, or not on a suspendable
     * callback. The plugin then counts with a limiter of its own. Suspends the callback while Redis answers.
     */
    int64_t (*shared_limit)(const char *name, const char *key, unsigned burst, int64_t window_ms, int take);

    /* --- version 8: messages in one order on every node --- */

    /**
     * publish_users of a frame of message `id` (a number of db_next_id("messages") whose transaction committed),
     * FORUM_PUB_REPLAYABLE implied. With a bus the frame travels with the announcement of the numbers its
     * transaction drew, and every node delivers messages in number order, reading nothing from the database.
     * Publish every frame of a message from the callback that committed it, before it returns (the run is
     * announced then). A frame published later rings its users instead (they read what is new for them from the
     * database), but a connection that had a later message meanwhile reads from past it: it gets the message
     * only when it resumes. The same holds for a message published with publish_users (version 7).
     */
    void (*publish_message)(int64_t id, const int64_t *user_ids, size_t n, const char *json, size_t len);
    /** The same to every connection but those of user `user_id` (0: nobody left out), as publish_all_but. */
    void (*publish_message_all_but)(int64_t id, int64_t user_id, const char *json, size_t len);
};

/** The descriptor every plugin exports as `forum_plugin`. */
typedef struct forum_plugin_desc {
    uint32_t abi;        /* FORUM_PLUGIN_ABI; read before anything else */
    const char *name;    /* must equal the file's base name */
    const char *version; /* shown in the log and in /_status */
    /** The settings the plugin accepts, ended by an entry whose name is NULL; NULL when it accepts none. */
    const forum_setting_decl_t *settings;
    /** Registers routes, frames, events and migrations. Non-zero refuses the load. */
    int (*init)(forum_plugin_t *p, const forum_api_t *api);
    /** Called when the generation is retired and nothing pins it any more; may be NULL. */
    void (*fini)(forum_plugin_t *p);
} forum_plugin_desc_t;

#ifdef __cplusplus
}
#endif

#endif
