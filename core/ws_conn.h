/*
 * What the hub's three files share about a WebSocket connection; private to them:
 *   core/hub.c       the users table, presence, publishing to a user, some users or all, session close
 *   core/ws_conn.c   a connection's life: upgrade, reading and parsing frames, dispatch, close handshake, timers
 *   core/ws_queue.c  the send queue: shared frames, the bound, the deferred flush, gathered writes
 */
#ifndef FORUM_WS_CONN_H
#define FORUM_WS_CONN_H

#include "forum.h"

typedef struct user_entry user_entry_t;

/* One frame as it goes on the wire, shared by every queue it is on. */
typedef struct ws_out {
    uint32_t refs;
    uint8_t opcode;
    size_t len;
    uint8_t bytes[];
} ws_out_t;

struct forum_ws {
    h2o_socket_t *sock; /* NULL until the 101 has been written */
    user_entry_t *user;
    uint8_t session[FORUM_SESSION_HASH_LEN];
    int64_t session_expires_ms;
    h2o_linklist_t of_user; /* user_entry_t.conns */
    h2o_linklist_t all;     /* every connection */
    h2o_linklist_t pending; /* waiting for the flush */
    /* the send queue: out[0 .. writing) are in the write under way */
    ws_out_t **out;
    uint32_t out_len, out_cap, writing;
    size_t out_bytes; /* queued and not yet written, the write under way included */
    ws_out_t *pong;      /* the unsent pong, at out[pong_at]: a newer ping replaces it */
    uint32_t pong_at;
    /* a fragmented message being assembled */
    char *frag;
    size_t frag_len, frag_cap;
    uint8_t frag_opcode; /* 0 when none */
    uint8_t close_queued;  /* our close frame is queued: nothing may follow it */
    uint8_t close_written; /* and it has been written */
    uint8_t read_done;     /* the peer's close (or a protocol error) was read: nothing more is read */
    int64_t last_recv_ms;
    int64_t last_ping_ms;
    int64_t over_since_ms; /* since when the send queue has been over its bound, 0 if not */
    int64_t closing_since_ms;
    /* A replay still catching up (forum_hub_replay_set). It lives here, with the connection, and not in a
     * plugin generation: a swap in mid-replay must neither lose its place nor let live frames in early. */
    int64_t replay_after;  /* the last id the replay sent */
    uint8_t replaying;     /* frames published with FORUM_PUB_REPLAYABLE leave this connection out */
    uint8_t replay_skipped; /* one was left out since the replay's round began reading */
    int64_t caught_up;      /* the newest message id it has had (its hello's, a replay's end, one delivered in order) */
    uint8_t drain_wanted;  /* ws.drained is due when the queue drops under its low mark */
    /* On PostgreSQL a plugin's callback may be suspended with this connection in hand (core/fiber.c): the
     * connection is then only marked dead when it goes, and freed when the last such callback has ended. */
    uint32_t fiber_refs;
    uint8_t dead;        /* destroy() ran: nothing is sent to it, nothing more is read */
    uint8_t destroyed;   /* and finished: the memory goes with the last fiber_refs */
    uint8_t in_frame;    /* a frame's handler is suspended: the next frames wait (their order is kept) */
    uint8_t read_paused; /* reading stopped for it, to start again when the handler ends */
    uint8_t close_owed;  /* closed while a frame's handler was suspended: ws.close comes when the handler ends */
    uint8_t replay_busy;  /* a replay is under way on a fiber (core/replay.c) */
    uint8_t replay_again; /* and was asked for again meanwhile */
};

struct user_entry {
    int64_t id;
    uint64_t published; /* the publish_users call that last reached this user */
    user_entry_t *next; /* hash chain */
    h2o_linklist_t conns;
    size_t num_conns;
};

/* core/hub.c */

/** Every connection, in the order they came. */
extern h2o_linklist_t all_conns;
/** Links a new connection to the user `user_id`; true when it is their first (they come online). */
int attach(forum_ws_t *ws, int64_t user_id);
/** Unlinks a connection that is going away; its user goes offline with their last connection. */
void detach(forum_ws_t *ws);
void publish_presence(int64_t user_id, int online);
/** Sends the JSON text in `g` to `ws`. */
void send_gen(forum_ws_t *ws, yajl_gen g);

/* core/ws_conn.c */

void ws_conn_init(uv_loop_t *loop, const forum_config_t *conf);
void ws_conn_dispose(void);
/** Starts the closing handshake; with `after_queued` the frames already queued go out first. */
void begin_close(forum_ws_t *ws, int code, const char *reason, int after_queued);
/** Frees a connection. Called only from its own socket callbacks or from a timer, never from a publish. */
void destroy(forum_ws_t *ws);
/** Keeps `ws`'s memory while a fiber has it in hand; ws_release frees a destroyed one with the last. */
void ws_hold(forum_ws_t *ws);
void ws_release(forum_ws_t *ws);
/** The queue of `ws` that wanted it dropped under its low mark: tells the plugins (ws.drained). */
void drained(forum_ws_t *ws);
/** Lets the loop serve others: the paced sender of `ws` is woken (drained) on a later loop turn. */
void forum_hub_yield(forum_ws_t *ws);

/* core/ws_queue.c */

void ws_queue_init(uv_loop_t *loop, const forum_config_t *conf);
void ws_queue_dispose(void);
/** A new frame with one reference, the caller's. */
ws_out_t *out_new(unsigned opcode, const void *payload, size_t len);
void out_release(ws_out_t *o);
/** Queues `o` on `ws` (taking a reference) and schedules the flush; nothing follows a close frame. */
void enqueue(forum_ws_t *ws, ws_out_t *o);
/** Drops the queued frames that are not in the write under way. */
void discard_unsent(forum_ws_t *ws);
/** Writes everything queued (up to a bound) in one gathered write, unless a write is under way. */
void write_queued(forum_ws_t *ws);
void queue_close(forum_ws_t *ws, unsigned code, const char *reason);
/** Queues a pong for a ping, replacing the unsent one. */
void queue_pong(forum_ws_t *ws, const uint8_t *payload, size_t len);
/** Whether one more frame may be queued on `ws`; closes a peer that stays far behind. */
int admit(forum_ws_t *ws, int flags);

#endif
