/*
 * One order of messages on every node. Messages (private and room) are numbered from one sequence whose
 * numbers commit in order, but each node publishes what it stored on its own: node 2's message 11 may come
 * on the bus before node 1's message 10. Delivered as they come, a client given both would get 11 first,
 * and resuming after 11 would skip 10.
 *
 * So a node announces every run of numbers it drew from "messages" (core/db_sequence.c tells this file of
 * each draw, the data layer of each COMMIT and ROLLBACK) once its transaction has committed, with the frames
 * of those messages, whole. Every node, the one that stored them included, holds what it hears until every
 * earlier number is announced, then delivers each message's frames in number order, to connections that do
 * not have it yet (forum_ws_t.caught_up): the database is still the log, but a delivery reads nothing from
 * it. A number drawn in a transaction that committed and stored nothing under it (a client_id used before)
 * is announced too, with no frame, so it holds nobody up.
 *
 * A number nobody announces (its node died between its COMMIT and its PUBLISH, or was cut off from Redis)
 * is a gap: after GAP_MS the connections that may miss it are rung (they read what is new for them from the
 * database, core/replay.c) and delivery goes on past it.
 *
 * A run's announcement leaves when the callback (fiber) that committed it ends, so that the frames its
 * deliveries publish go with it, and never before: a delivery past a number whose frames may still come
 * could not be undone. A callback that takes long holds every node up to GAP_MS, then it is a gap like any
 * other (a run that comes after its gap was given up is dropped: its users were rung). A frame published
 * after its run left rings its users (forum_order_frame: -1), which is safe only while no later message
 * reached them: plugins publish a message's frames before the callback that committed it returns.
 *
 * Until a node knows where the sequence stands (once subscribed, it reads the newest committed number, and
 * rings every connection behind it), it holds what it hears; while Redis is away, runs ring their users
 * here, and the bus rings everyone once a second (core/bus.c).
 *
 * An announcement, the payload of a bus event of kind `m`:
 *   LO HI \n    then for each frame:    ID KIND N LEN \n  USER,USER,... \n  PAYLOAD (LEN bytes)
 * KIND `u`: to the N users listed; `a`: to everyone but the one user listed (0: nobody left out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_private.h"

enum {
    GAP_MS = 1500,          /* delivery held this long by one number unannounced: it is taken for lost */
    CHECK_MS = 100,         /* the timer that watches for it, while there is a gap */
    HELD_MAX = 100000,      /* runs heard and waiting: past it (or HELD_BYTES_MAX), the oldest gap is given up */
    HELD_BYTES_MAX = 256 << 20,
    RUN_MAX = 1000000,      /* numbers in one run */
    FRAME_USERS_MAX = 100000,
};

typedef struct run {
    struct run *next;
    int64_t lo, hi;
    /* this node's runs not yet announced: the fiber that drew it (alive: a run goes with its fiber's end), and
     * whether its transaction committed */
    forum_fiber_t *fiber;
    int committed;
    size_t len, cap;
    char *body; /* the frames; heard runs: the whole announcement */
} run_t;

static struct {
    uv_timer_t timer, sync_timer;
    int on;
    run_t *outbox;           /* this node's runs, drawn or committed, not announced yet */
    run_t *held, *held_tail; /* heard and waiting for their turn, by ascending lo */
    size_t num_held, held_bytes;
    int64_t next;      /* the number delivered next; 0 while unknown */
    int64_t gap_since; /* since when delivery has waited for the number `next`; 0: no gap */
    unsigned sync_gen; /* a sync under way answers only while it is the last one asked for */
    int draining;
    uint64_t delivered, gaps, late;
} O;

static void watch(void);

/* --- this node's runs: drawn, committed, announced --- */

void forum_order_drawn(int64_t lo, int64_t hi)
{
    forum_fiber_t *self = forum_fiber_self();
    run_t *r;
    /*
     * Off a fiber nothing ties the run to its deliveries; outside a transaction the number commits before the
     * message that uses it (db_next_id's contract is inside the caller's transaction). Either way it is not
     * announced: a gap the nodes get over by reading the database.
     */
    if (!O.on || self == NULL || !forum_pg_in_txn() || (r = calloc(1, sizeof(*r))) == NULL)
        return;
    r->lo = lo, r->hi = hi, r->fiber = self;
    run_t **at = &O.outbox; /* at the end: a callback's runs are announced in the order they were drawn */
    while (*at != NULL)
        at = &(*at)->next;
    *at = r;
}

void forum_order_tx_end(int committed)
{
    forum_fiber_t *self = forum_fiber_self();
    for (run_t **p = &O.outbox; *p != NULL;) {
        run_t *r = *p;
        if (r->fiber != self || r->committed) {
            p = &r->next;
        } else if (committed) {
            r->committed = 1;
            p = &r->next;
        } else {
            *p = r->next; /* rolled back: the numbers are drawn again */
            free(r->body);
            free(r);
        }
    }
}

static int append(run_t *r, const char *s, size_t len)
{
    if (r->cap - r->len < len) {
        size_t cap = r->cap != 0 ? r->cap : 256;
        while (cap - r->len < len)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL)
            return -1;
        r->body = b, r->cap = cap;
    }
    memcpy(r->body + r->len, s, len);
    r->len += len;
    return 0;
}

int forum_order_frame(int64_t id, char kind, const int64_t *users, size_t n, const char *json, size_t len)
{
    run_t *r = O.outbox;
    char line[96];
    while (r != NULL && !(r->committed && r->lo <= id && id <= r->hi))
        r = r->next;
    if (r == NULL || n > FRAME_USERS_MAX)
        return -1; /* announced already (or never drawn here): its users are rung */
    size_t at = r->len;
    int failed = append(r, line, (size_t)snprintf(line, sizeof(line), "%lld %c %zu %zu\n", (long long)id, kind, n, len));
    for (size_t i = 0; i != n && !failed; ++i)
        failed = append(r, line, (size_t)snprintf(line, sizeof(line), i == 0 ? "%lld" : ",%lld", (long long)users[i]));
    if (failed || append(r, "\n", 1) != 0 || append(r, json, len) != 0) {
        r->len = at; /* without the frame: rung instead */
        return -1;
    }
    return 0;
}

/* The frames of an announcement's body, read one at a time; 0 at its end, -1 when malformed. */
typedef struct frame {
    int64_t id;
    char kind;
    const char *users; /* "1,2,3" */
    size_t users_len, n;
    const char *json;
    size_t len;
} frame_t;

static int next_frame(const char **p, const char *end, frame_t *f)
{
    const char *nl, *nl2;
    long long id;
    char kind;
    size_t n, len;
    int used = 0;
    if (*p == end)
        return 0;
    if ((nl = memchr(*p, '\n', (size_t)(end - *p))) == NULL || nl - *p > 80)
        return -1;
    char head[96];
    memcpy(head, *p, (size_t)(nl - *p));
    head[nl - *p] = '\0';
    if (sscanf(head, "%lld %c %zu %zu%n", &id, &kind, &n, &len, &used) != 4 || head[used] != '\0' || (kind != 'u' && kind != 'a') ||
        n > FRAME_USERS_MAX || (kind == 'a' && n != 1))
        return -1;
    if ((nl2 = memchr(nl + 1, '\n', (size_t)(end - nl - 1))) == NULL || (size_t)(end - nl2 - 1) < len)
        return -1;
    *f = (frame_t){id, kind, nl + 1, (size_t)(nl2 - nl - 1), n, nl2 + 1, len};
    *p = nl2 + 1 + len;
    return 1;
}

/* The users of a frame into `out` (n of them); -1 when the list is not n decimal ids. */
static int frame_users(const frame_t *f, int64_t *out)
{
    const char *s = f->users, *end = f->users + f->users_len;
    for (size_t i = 0; i != f->n; ++i) {
        int64_t v = 0;
        const char *start = s;
        for (; s != end && *s >= '0' && *s <= '9' && v <= (INT64_MAX - 9) / 10; ++s)
            v = v * 10 + (*s - '0');
        if (s == start || (i + 1 != f->n ? s == end || *s++ != ',' : s != end))
            return -1;
        out[i] = v;
    }
    return f->n == 0 && f->users_len != 0 ? -1 : 0;
}

static void hear(const char *msg, size_t len, int own);

/* Sends a run out: on the bus and into this node's own order, or while the bus is away, rings its users here. */
static void announce(run_t *r)
{
    char head[48];
    size_t at = (size_t)snprintf(head, sizeof(head), "%lld %lld\n", (long long)r->lo, (long long)r->hi);
    if (forum_bus_up()) {
        char *msg = malloc(at + r->len);
        if (msg != NULL) {
            memcpy(msg, head, at);
            if (r->len != 0)
                memcpy(msg + at, r->body, r->len);
            forum_bus_publish_order(msg, at + r->len);
            hear(msg, at + r->len, 1);
            free(msg);
            return;
        }
    }
    /* the bus is away (or no memory): the database is the doorbell */
    const char *p = r->body, *end = r->body + r->len;
    frame_t f;
    while (p != NULL && next_frame(&p, end, &f) > 0) {
        int64_t *users = malloc((f.n != 0 ? f.n : 1) * sizeof(*users));
        if (users != NULL && frame_users(&f, users) == 0) {
            if (f.kind == 'a')
                forum_hub_ring_all();
            else
                forum_hub_ring_users(users, f.n);
        }
        free(users);
    }
}

/* A fiber ended: its committed runs are announced (its uncommitted ones were rolled back, core/pg.c). */
static void on_fiber_exit(forum_fiber_t *f)
{
    for (run_t **p = &O.outbox; *p != NULL;) {
        run_t *r = *p;
        if (r->fiber != f) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        if (r->committed)
            announce(r);
        free(r->body);
        free(r);
    }
}

/* --- what the nodes announced, delivered in order --- */

static void drop_held(run_t *r)
{
    --O.num_held;
    O.held_bytes -= r->len;
    free(r->body);
    free(r);
}

/* Delivers the frames of `r` numbered `from` or more, in number order (a plugin may publish them in any). */
static void deliver_run(run_t *r, int64_t from)
{
    const char *p = r->body, *end = r->body + r->len;
    frame_t *frames = NULL, f;
    size_t n = 0, cap = 0;
    int64_t *users = NULL;

    if ((p = memchr(p, '\n', r->len)) == NULL)
        return;
    ++p;
    while (next_frame(&p, end, &f) > 0) {
        if (n == cap) {
            frame_t *more = realloc(frames, (cap = cap != 0 ? 2 * cap : 16) * sizeof(*more));
            if (more == NULL) {
                /* no memory to sort them: whoever may miss one reads the database, before delivery goes past */
                forum_hub_ring_behind(r->hi);
                free(frames);
                return;
            }
            frames = more;
        }
        size_t i = n++;
        for (; i != 0 && frames[i - 1].id > f.id; --i) /* stable: one message's frames keep their order */
            frames[i] = frames[i - 1];
        frames[i] = f;
    }
    for (size_t i = 0; i != n; ++i) {
        int64_t *u;
        if (frames[i].id < from)
            continue;
        if ((u = realloc(users, (frames[i].n != 0 ? frames[i].n : 1) * sizeof(*u))) == NULL) {
            forum_hub_ring_behind(frames[i].id); /* as above, for this frame's users and whoever is behind it */
            continue;
        }
        users = u;
        if (frame_users(&frames[i], users) != 0)
            continue; /* checked when heard */
        forum_hub_deliver_message(frames[i].id, frames[i].kind == 'a', users, frames[i].n, frames[i].json, frames[i].len);
        ++O.delivered;
    }
    free(users);
    free(frames);
}

static void drain(void)
{
    int64_t was = O.next;
    if (O.draining)
        return; /* not reached today (a delivery only queues); a second drain inside one would deliver twice */
    O.draining = 1;
    while (O.next != 0 && O.held != NULL && O.held->lo <= O.next) {
        run_t *r = O.held;
        if ((O.held = r->next) == NULL)
            O.held_tail = NULL;
        if (r->hi >= O.next) {
            deliver_run(r, O.next);
            O.next = r->hi + 1;
        }
        drop_held(r);
    }
    O.draining = 0;
    if (O.next != 0 && O.held != NULL) {
        if (O.gap_since == 0 || O.next != was)
            O.gap_since = forum_mono_ms(); /* the wait is for the number now first, not for one already in */
    } else {
        O.gap_since = 0;
    }
    watch();
}

/* The numbers before the first held run were never announced: whoever may miss them reads the database. */
static void give_up_gap(const char *why)
{
    if (O.held == NULL || O.next == 0)
        return;
    ++O.gaps;
    forum_log(FORUM_LOG_WARN, "bus: messages %lld to %lld were not announced (%s); the connections behind them read them from the database",
              (long long)O.next, (long long)(O.held->lo - 1), why);
    forum_hub_ring_behind(O.held->lo - 1);
    O.next = O.held->lo;
    O.gap_since = 0;
    drain();
}

/* An announcement, this node's own or heard on the bus: checked whole, then held for its turn. */
static void hear(const char *msg, size_t len, int own)
{
    const char *p, *end = msg + len, *nl = memchr(msg, '\n', len);
    long long lo, hi;
    int used = 0;
    char head[48];
    frame_t f;
    int rc;
    run_t *r;

    if (nl == NULL || nl - msg >= (long)sizeof(head))
        goto Malformed;
    memcpy(head, msg, (size_t)(nl - msg));
    head[nl - msg] = '\0';
    if (sscanf(head, "%lld %lld%n", &lo, &hi, &used) != 2 || head[used] != '\0' || lo < 1 || hi < lo || hi - lo >= RUN_MAX)
        goto Malformed;
    for (p = nl + 1; (rc = next_frame(&p, end, &f)) > 0;)
        if (f.id < lo || f.id > hi)
            goto Malformed;
    if (rc < 0)
        goto Malformed;
    if (O.next != 0 && hi < O.next) {
        ++O.late; /* after its gap was given up, or before the number read at a sync: its users were rung */
        return;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->body = malloc(len)) == NULL) {
        free(r);
        forum_log(FORUM_LOG_ERROR, "bus: no memory to hold messages %lld to %lld: the connections behind them are rung", lo, hi);
        return; /* a gap: given up in GAP_MS */
    }
    memcpy(r->body, msg, len);
    r->lo = lo, r->hi = hi, r->len = len;
    /* in the order of lo, from the end: runs mostly come in order */
    run_t **at = &O.held;
    if (O.held_tail != NULL && O.held_tail->hi < lo)
        at = &O.held_tail->next;
    else
        while (*at != NULL && (*at)->hi < lo)
            at = &(*at)->next;
    if (*at != NULL && (*at)->lo <= hi) {
        free(r->body);
        free(r);
        forum_log(FORUM_LOG_WARN, "bus: messages %lld to %lld were announced twice; the second was ignored", lo, hi);
        return;
    }
    r->next = *at;
    *at = r;
    if (r->next == NULL)
        O.held_tail = r;
    ++O.num_held;
    O.held_bytes += len;
    drain();
    if (O.num_held > HELD_MAX || O.held_bytes > HELD_BYTES_MAX) {
        if (O.next != 0) {
            give_up_gap("too many held behind them");
        } else {
            /* still reading where the sequence stands: the oldest goes, a gap given up once it is known */
            r = O.held;
            if ((O.held = r->next) == NULL)
                O.held_tail = NULL;
            drop_held(r);
        }
    }
    return;

Malformed:
    forum_log(own ? FORUM_LOG_ERROR : FORUM_LOG_WARN, "bus: an announcement of messages that is not well formed was ignored (%zu bytes)", len);
}

void forum_order_heard(const char *msg, size_t len)
{
    if (O.on)
        hear(msg, len, 0);
}

/* --- where the sequence stands: read once the bus is up (again) --- */

static void on_sync_timer(uv_timer_t *t);

static void sync_on_fiber(void *arg)
{
    unsigned gen = O.sync_gen;
    int64_t cut = forum_replay_cut();
    (void)arg;
    if (gen != O.sync_gen || !forum_bus_up())
        return; /* lost again meanwhile: a new sync comes with the next connection */
    if (cut < 0) {
        forum_log(FORUM_LOG_WARN, "bus: the message sequence could not be read; trying again in a second");
        uv_timer_start(&O.sync_timer, on_sync_timer, 1000, 0);
        return;
    }
    O.next = cut + 1;
    /* what was published while this node did not hear the bus (or before it started): from the database */
    forum_hub_ring_behind(cut);
    drain();
}

static void on_sync_timer(uv_timer_t *t)
{
    (void)t;
    forum_fiber_run(sync_on_fiber, NULL);
}

void forum_order_sync(void)
{
    if (!O.on)
        return;
    O.next = 0;
    ++O.sync_gen;
    uv_timer_start(&O.sync_timer, on_sync_timer, 0, 0); /* from the loop: hiredis's callback is no place to suspend */
}

void forum_order_lost(void)
{
    ++O.sync_gen;
    O.next = 0;
    O.gap_since = 0;
    while (O.held != NULL) {
        run_t *r = O.held;
        O.held = r->next;
        drop_held(r);
    }
    O.held_tail = NULL;
}

/* --- the watch: a gap that lasts --- */

static void on_check(uv_timer_t *t)
{
    int64_t now = forum_mono_ms();
    (void)t;
    if (O.gap_since != 0 && now - O.gap_since >= GAP_MS) {
        forum_bus_read_pending(); /* a busy loop may not have read the announcement that fills it */
        if (O.gap_since != 0 && now - O.gap_since >= GAP_MS)
            give_up_gap("nothing came for 1.5 s");
    }
    watch();
}

static void watch(void)
{
    int wanted = O.gap_since != 0;
    if (!O.on)
        return;
    if (wanted && !uv_is_active((uv_handle_t *)&O.timer))
        uv_timer_start(&O.timer, on_check, CHECK_MS, CHECK_MS);
    else if (!wanted && uv_is_active((uv_handle_t *)&O.timer))
        uv_timer_stop(&O.timer);
}

void forum_order_start(uv_loop_t *loop)
{
    uv_timer_init(loop, &O.timer);
    uv_timer_init(loop, &O.sync_timer);
    uv_unref((uv_handle_t *)&O.timer);
    uv_unref((uv_handle_t *)&O.sync_timer);
    forum_fiber_on_every_exit(on_fiber_exit);
    O.on = 1;
}

void forum_order_stop(void)
{
    if (!O.on)
        return;
    /*
     * A run still here belongs to a callback that has not ended (the drain is over: it never will, on this loop):
     * announced now, it would lack the frames still to come. Left out, it is a gap, and the other nodes read it.
     */
    while (O.outbox != NULL) {
        run_t *r = O.outbox;
        O.outbox = r->next;
        free(r->body);
        free(r);
    }
    forum_order_lost();
    forum_fiber_on_every_exit(NULL);
    uv_timer_stop(&O.timer);
    uv_timer_stop(&O.sync_timer);
    uv_close((uv_handle_t *)&O.timer, NULL);
    uv_close((uv_handle_t *)&O.sync_timer, NULL);
    O.on = 0;
}

void forum_order_status(yajl_gen g)
{
    const struct {
        const char *name;
        int64_t value;
    } counts[] = {{"next", O.next}, {"held", (int64_t)O.num_held}, {"delivered", (int64_t)O.delivered}, {"gaps", (int64_t)O.gaps},
                  {"late", (int64_t)O.late}};
    forum_json_str(g, "order");
    yajl_gen_map_open(g);
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(counts); ++i) {
        forum_json_str(g, counts[i].name);
        yajl_gen_integer(g, (long long)counts[i].value);
    }
    yajl_gen_map_close(g);
}
