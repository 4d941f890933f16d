/*
 * The replay of `/ws?after=ID`: a reconnecting client gets every message newer than ID that it may see,
 * in id order, before anything live. Messages come from the plugins' replay sources (chat's private
 * messages, the rooms' messages), all numbered from one sequence, so the core merges them by id and one
 * resume point covers them all.
 *
 * Replay and live delivery never interleave: while a connection is catching up, frames published with
 * FORUM_PUB_REPLAYABLE leave it out, and the replay reads on from the database, where every delivered
 * message already is. It ends, on the loop, at a round in which no source has anything newer and no
 * such frame was left out while the sources were read, so nothing can slip in between.
 *
 * Where a replay stands is kept by the connection (forum_hub_replay_set) and it goes on when the client
 * has read what was sent (the queue drained): a swap of any plugin in mid-replay loses nothing, since
 * the next round asks the sources that are current then.
 */
#include <stdlib.h>
#include <string.h>
#include "db_private.h"
#include "ws_conn.h"

/* ROUNDS_PER_TURN bounds one call's work: a source may answer a round with a window that holds nothing
 * for this user (sparse messages), and such rounds send nothing that would pace them by the client. */
enum { REPLAY_BATCH = 200, MAX_SOURCES = 16, ROUNDS_PER_TURN = 8, FORUM_WS_TRY_AGAIN_LATER = 1013 };

typedef struct source_batch {
    const forum_replay_source_t *src;
    int64_t ids[REPLAY_BATCH];
    int n, at;
} source_batch_t;

int64_t forum_replay_last_id(int64_t user)
{
    const forum_replay_source_t *srcs[MAX_SOURCES];
    forum_plugin_t *gens[MAX_SOURCES];
    size_t n = forum_plugins_replay_sources(srcs, gens, MAX_SOURCES);
    int64_t last = 0;
    for (size_t i = 0; i != n; ++i) {
        int64_t id = srcs[i]->last_id(user);
        if (id > last)
            last = id;
    }
    for (size_t i = 0; i != n; ++i)
        forum_plugin_unpin(gens[i]);
    return last;
}

/* The source whose next id is the smallest one not above `bound`; NULL when none is left. */
static source_batch_t *next_of(source_batch_t *b, size_t n, int64_t bound)
{
    source_batch_t *best = NULL;
    for (size_t i = 0; i != n; ++i)
        if (b[i].at != b[i].n && b[i].ids[b[i].at] <= bound && (best == NULL || b[i].ids[b[i].at] < best->ids[best->at]))
            best = b + i;
    return best;
}

static void replay_rounds(forum_ws_t *ws, int64_t user, source_batch_t *batches);

void forum_replay_run(forum_ws_t *ws, int64_t user)
{
    /* static while nothing suspends; on fibers (PostgreSQL) each replay has its own, and one at a time per connection */
    static source_batch_t shared[MAX_SOURCES];
    source_batch_t *batches = shared;

    if (forum_hub_replay_get(ws) < 0 || ws->dead)
        return;
    if (forum_fiber_self() != NULL) {
        if (ws->replay_busy) {
            ws->replay_again = 1; /* the one under way goes on when it is through */
            return;
        }
        if ((batches = malloc(sizeof(shared))) == NULL) {
            begin_close(ws, FORUM_WS_TRY_AGAIN_LATER, "try again later", 1);
            return;
        }
        ws_hold(ws);
        ws->replay_busy = 1;
    }
    do {
        ws->replay_again = 0;
        replay_rounds(ws, user, batches);
    } while (batches != shared && ws->replay_again && !ws->dead && forum_hub_replay_get(ws) >= 0);
    if (batches != shared) {
        ws->replay_busy = 0;
        free(batches);
        ws_release(ws);
    }
}

enum { ROUND_AGAIN, ROUND_OVER };

/*
 * On PostgreSQL each source's list is a statement of its own, which sees what was committed when it began:
 * a message committed between two sources' lists would be seen by the second only, and one with a lower id
 * in the first would be passed over. So a round first reads the newest id of a committed draw of the
 * "messages" sequence, which every replayable message is numbered from: ids commit in order (a draw holds the
 * sequence's row until its COMMIT), so every message up to it is visible to the lists that follow, and the
 * round claims nothing past it. -1 when it cannot be read; on SQLite nothing suspends: no bound.
 */
int64_t forum_replay_cut(void)
{
    forum_stmt_t *s;
    int rc;
    int64_t cut = 0;
    if (!forum_pg_on())
        return INT64_MAX;
    if ((s = forum_db_stmt("SELECT value FROM forum_sequences WHERE name = 'messages'")) == NULL)
        return -1;
    if ((rc = forum_db_step(s)) == FORUM_DB_ROW) {
        cut = forum_db_col_int(s, 0);
        rc = forum_db_step(s);
    }
    return rc == FORUM_DB_DONE ? cut : -1; /* no row: no message was ever numbered */
}

/* One round over the sources `srcs`: what each lists above `*after`, sent in id order up to where all are complete. */
static int replay_round(forum_ws_t *ws, int64_t user, source_batch_t *batches, const forum_replay_source_t *const *srcs, size_t n,
                        int64_t *after)
{
    int64_t bound = INT64_MAX; /* every message up to it, of every source, is in this round's batches */
    int64_t cut;
    source_batch_t *b;

    ws->replay_skipped = 0;
    if ((cut = forum_replay_cut()) < 0) {
        forum_log(FORUM_LOG_WARN, "replay for user %lld: the message sequence could not be read; the client is asked to reconnect",
                  (long long)user);
        forum_hub_replay_set(ws, *after);
        begin_close(ws, FORUM_WS_TRY_AGAIN_LATER, "try again later", 1);
        return ROUND_OVER;
    }
    for (size_t i = 0; i != n; ++i) {
        int64_t complete_to = *after;
        batches[i].src = srcs[i];
        batches[i].at = 0;
        batches[i].n = srcs[i]->list(user, *after, batches[i].ids, REPLAY_BATCH, &complete_to);
        if (batches[i].n < 0) {
            /* the database failed: the client reconnects with the last id it saw, and misses nothing */
            forum_log(FORUM_LOG_WARN, "replay for user %lld: a source could not be read; the client is asked to reconnect",
                      (long long)user);
            forum_hub_replay_set(ws, *after);
            begin_close(ws, FORUM_WS_TRY_AGAIN_LATER, "try again later", 1);
            return ROUND_OVER;
        }
        if (complete_to < bound)
            bound = complete_to;
    }
    if (ws->dead)
        return ROUND_OVER; /* it went while a source was read */
    int complete = bound >= cut; /* every message up to the cut is in the batches */
    if (bound > cut)
        bound = cut;
    while ((b = next_of(batches, n, bound)) != NULL) {
        if (forum_hub_drain_wait(ws)) {
            forum_hub_replay_set(ws, *after); /* the queue drained: here again */
            return ROUND_OVER;
        }
        *after = b->ids[b->at++];
        b->src->send(ws, user, *after);
    }
    if (complete) {
        /*
         * Nothing newer up to the cut. On PostgreSQL the sources' reads suspend this round, and a message may have
         * been stored and published meanwhile, after its source was read: left out of live delivery (this
         * connection was catching up) and not in this round's batches. Then the sources are read again; only a
         * round during which nothing was left out may end the replay. A message stored after the cut is
         * published after it, and so rings or reaches this connection once the replay is over.
         */
        if (ws->replay_skipped)
            return ROUND_AGAIN;
        if (cut != INT64_MAX && cut > *after)
            *after = cut; /* nothing up to it is left unsent */
        ws->caught_up = *after;
        forum_hub_replay_set(ws, -1); /* caught up: live delivery takes over from here */
        return ROUND_OVER;
    }
    if (bound > *after)
        *after = bound; /* nothing up to it is left unsent */
    return ROUND_AGAIN;
}

static void replay_rounds(forum_ws_t *ws, int64_t user, source_batch_t *batches)
{
    const forum_replay_source_t *srcs[MAX_SOURCES];
    forum_plugin_t *gens[MAX_SOURCES];
    int64_t after = forum_hub_replay_get(ws);

    if (after < 0)
        return;
    for (unsigned round = 0;; ++round) {
        if (round == ROUNDS_PER_TURN) {
            forum_hub_replay_set(ws, after);
            forum_hub_yield(ws); /* the others get the loop; the replay goes on in a later turn */
            return;
        }
        /* the sources' generations stay loaded for the round: on PostgreSQL a swap may come while a source is read */
        size_t n = forum_plugins_replay_sources(srcs, gens, MAX_SOURCES);
        int over = replay_round(ws, user, batches, srcs, n, &after) == ROUND_OVER;
        for (size_t i = 0; i != n; ++i)
            forum_plugin_unpin(gens[i]);
        if (over)
            return;
    }
}

/* The `after` parameter of the /ws query string, or -1 when absent or not a number. */
static int64_t query_after(const char *query)
{
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > 6 && memcmp(p, "after=", 6) == 0 && len - 6 < 20) {
            int64_t v = 0;
            size_t i;
            for (i = 6; i != len && p[i] >= '0' && p[i] <= '9' && v <= (INT64_MAX - 9) / 10; ++i)
                v = v * 10 + (p[i] - '0');
            /* digits only, no sign, no leading zero (but "0" itself) */
            return i == len && (len == 7 || p[6] != '0') ? v : -1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return -1;
}

void forum_replay_hold(forum_ws_t *ws, const char *query)
{
    int64_t after = query_after(query);
    forum_hub_replay_set(ws, after >= 0 ? after : 0);
    ws->replay_skipped = 0;
}

void forum_replay_open(forum_ws_t *ws, int64_t user, const char *query, int64_t hello_last)
{
    int64_t after = query_after(query);
    if (after < 0) {
        if (!ws->replay_skipped) {
            ws->caught_up = hello_last;
            forum_hub_replay_set(ws, -1); /* nothing came while the hello was written: live from here */
            return;
        }
        after = hello_last; /* what was published while the hello was written comes after it, once */
    }
    forum_hub_replay_set(ws, after);
    forum_replay_run(ws, user);
}

/*
 * Rings (a bus): a connection is rung when a message may be new for it, here or on another node. It is
 * marked as catching up from the newest id it has had, so that frames published meanwhile leave it out (and
 * a second ring finds it so), and its replay runs in a moment, on a fiber of its own: a ring comes from the
 * middle of a publisher's work. At most RINGS_AT_ONCE replays run at a time, the others wait here in turn:
 * a ring of everyone (a lobby message) would otherwise make a fiber per connection, each waiting for one of a
 * few database connections, and those past the statement timeout would fail and close their connections.
 */
enum { RINGS_AT_ONCE = 32 };
static forum_ws_t **rung; /* rung[rung_head .. num_rung) wait, oldest first */
static size_t rung_head, num_rung, rung_cap, rings_running;
static uv_timer_t ring_timer;

static void on_rings(uv_timer_t *t);

static void ring_on_fiber(void *arg)
{
    forum_ws_t *ws = arg;
    if (!ws->dead)
        forum_replay_run(ws, ws->user->id);
    ws_release(ws);
    if (--rings_running < RINGS_AT_ONCE && rung_head != num_rung)
        uv_timer_start(&ring_timer, on_rings, 0, 0);
}

size_t forum_replay_rings_busy(void)
{
    return num_rung - rung_head + rings_running;
}

static void on_rings(uv_timer_t *t)
{
    (void)t;
    while (rings_running < RINGS_AT_ONCE && rung_head != num_rung) {
        ++rings_running;
        forum_fiber_run(ring_on_fiber, rung[rung_head++]);
    }
    if (rung_head == num_rung)
        rung_head = num_rung = 0;
}

void forum_replay_ring(forum_ws_t *ws)
{
    if (ws->dead)
        return;
    if (ws->replaying) {
        ws->replay_skipped = 1; /* its replay (a ring's, waiting or running) reads again before it ends */
        return;
    }
    if (num_rung == rung_cap && rung_head != 0) {
        memmove(rung, rung + rung_head, (num_rung - rung_head) * sizeof(*rung));
        num_rung -= rung_head, rung_head = 0;
    }
    if (num_rung == rung_cap) {
        size_t cap = rung_cap != 0 ? 2 * rung_cap : 64;
        forum_ws_t **p = realloc(rung, cap * sizeof(*p));
        if (p == NULL) {
            begin_close(ws, FORUM_WS_TRY_AGAIN_LATER, "try again later", 1); /* it reconnects with ?after= and misses nothing */
            return;
        }
        rung = p, rung_cap = cap;
    }
    forum_hub_replay_set(ws, ws->caught_up);
    ws_hold(ws);
    rung[num_rung++] = ws;
    if (rings_running < RINGS_AT_ONCE)
        uv_timer_start(&ring_timer, on_rings, 0, 0);
}

void forum_replay_init(uv_loop_t *loop)
{
    uv_timer_init(loop, &ring_timer);
    uv_unref((uv_handle_t *)&ring_timer);
}
