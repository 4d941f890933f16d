/*
 * The PostgreSQL backend of the data layer (`database: {postgres: CONNINFO}`). A pool of connections,
 * each driven with libpq's non-blocking calls on the loop: a data call on a fiber sends its query and
 * suspends the fiber until the socket has brought the whole answer, so the loop never waits on the
 * network. A fiber takes a connection at its first data call and keeps it until it ends (its statements
 * and its transaction live there); when every connection is taken it waits in line, for at most the
 * statement timeout, and then fails as FORUM_DB_BUSY.
 *
 * Statements are the plugins' own texts, prepared once per connection under a name: `?` becomes `$1`,
 * `$2`, ... Parameters travel as text (byte strings as binary), answers come back as text, whole (a
 * page is a few rows). Table versions come from the server: every table has a statement trigger that
 * notifies channel forum_tables with its name, and every connection listens, so a commit's own
 * notifications are in before its COMMIT returns, and other processes' arrive on idle connections.
 *
 * A lost connection fails what was in flight on it as FORUM_DB_UNAVAILABLE (503) and comes back by
 * itself, with a backoff; while none is up, data calls fail at once rather than wait.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_private.h"

enum {
    CONNECTIONS_MAX = 64,
    RECONNECT_FIRST_MS = 50,
    RECONNECT_MAX_MS = 2000,
    WAITERS_CHECK_MS = 50,
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_NUMERIC = 1700,
    OID_BYTEA = 17,
};

enum conn_state { C_DOWN, C_CONNECTING, C_SETUP, C_IDLE, C_HELD };

/* One SQL text as the plugins wrote it, with its PostgreSQL spelling; shared by every connection. */
typedef struct pg_text {
    char *sql;
    char *pgsql;
    int nparams;
    unsigned id; /* its prepared name is "f<id>" on every connection */
    struct pg_text *next;
} pg_text_t;

typedef struct pg_conn pg_conn_t;

/* forum_stmt_t on PostgreSQL: one text in use on one connection. */
typedef struct pg_use {
    pg_text_t *text;
    pg_conn_t *conn;
    char **values;
    int *lengths, *formats;
    Oid *types;
    PGresult *res;
    int row; /* the current row; -1 before the statement ran */
    int failed;
} pg_use_t;

struct pg_conn {
    int index;
    PGconn *pg;
    uv_poll_t *poll; /* the socket's watcher (closed and made anew when the socket changes) */
    int poll_fd, poll_events;
    enum conn_state state;
    forum_fiber_t *owner;  /* the fiber that holds it (C_HELD) */
    forum_fiber_t *waiter; /* the fiber waiting for its socket */
    int in_txn;
    uint8_t *prepared; /* by text id: prepared on this connection */
    pg_use_t **uses;   /* by text id */
    size_t cap;
    int changes;
    /* what was sent in pipeline mode (db_queue) and not read yet: each statement's text (for the log) and, for a
     * PREPARE, its text's id + 1 (a PREPARE that failed is forgotten) */
    struct pg_queued {
        const char *sql;
        unsigned prepare_id;
    } *queued;
    size_t num_queued, cap_queued;
    unsigned backoff_ms;
    uv_timer_t reconnect;
    pg_conn_t *next_idle;
};

/* A fiber waiting for a connection; it lives on that fiber's stack while it waits. */
typedef struct waiter {
    forum_fiber_t *fiber;
    pg_conn_t *got;
    int64_t deadline_ms;
    int timed_out;
    struct waiter *next;
} waiter_t;

static struct {
    char *conninfo;
    unsigned timeout_ms;
    uv_loop_t *loop;
    pg_conn_t conns[CONNECTIONS_MAX];
    int num;
    pg_conn_t *idle;
    waiter_t *waiters, *waiters_tail;
    size_t num_waiting;
    uv_timer_t waiters_timer;
    int serving;
    pg_text_t *texts[256];
    unsigned num_texts;
    int last_failure;
    pg_conn_t *loop_conn; /* the connection of calls made off any fiber (startup, shutdown) */
    uint64_t lost, timeouts, pool_full;
    int warned_off_fiber;
    int64_t down_since_ms;
    char last_error[200];
} P;

/* libpq's messages span lines and end with one: a log line and an exit message are one line. */
static void one_line(char *s)
{
    char *d = s;
    for (const char *p = s; *p != '\0'; ++p) {
        char ch = *p == '\n' || *p == '\t' ? ' ' : *p;
        if (ch == ' ' && (d == s || d[-1] == ' '))
            continue;
        *d++ = ch;
    }
    while (d != s && d[-1] == ' ')
        --d;
    *d = '\0';
}

static int on;

int forum_pg_on(void)
{
    return on;
}

/* --- SQL texts --- */

/* `?` outside quotes and comments becomes $1, $2, ...; returns the number of parameters. */
static int translate(const char *sql, char **out)
{
    size_t len = strlen(sql), n = 0;
    char *d = malloc(len * 4 + 1), *o = d;
    char quote = 0;
    for (size_t i = 0; i != len; ++i) {
        char c = sql[i];
        if (quote != 0) {
            if (c == quote)
                quote = 0;
            *o++ = c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            *o++ = c;
        } else if (c == '-' && sql[i + 1] == '-') {
            while (i != len && sql[i] != '\n')
                *o++ = sql[i++];
            if (i == len)
                break;
            *o++ = '\n';
        } else if (c == '?') {
            o += sprintf(o, "$%zu", ++n);
        } else {
            *o++ = c;
        }
    }
    *o = '\0';
    *out = d;
    return (int)n;
}

static unsigned hash_text(const char *s)
{
    unsigned h = 5381;
    for (; *s != '\0'; ++s)
        h = h * 33 + (unsigned char)*s;
    return h % 256;
}

static pg_text_t *text_of(const char *sql)
{
    unsigned b = hash_text(sql);
    pg_text_t *t;
    for (t = P.texts[b]; t != NULL; t = t->next)
        if (strcmp(t->sql, sql) == 0)
            return t;
    t = calloc(1, sizeof(*t));
    t->sql = strdup(sql);
    t->nparams = translate(sql, &t->pgsql);
    t->id = P.num_texts++;
    t->next = P.texts[b];
    P.texts[b] = t;
    return t;
}

/* --- failures --- */

static const char *error_text(const PGresult *res, pg_conn_t *c)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || *msg == '\0')
        msg = c != NULL && c->pg != NULL ? PQerrorMessage(c->pg) : "no connection";
    return msg;
}

/* What an error means to a caller, from its SQLSTATE. */
static int failure_of_state(const char *state)
{
    if (state == NULL)
        return FORUM_DB_UNAVAILABLE; /* no answer at all: the connection went */
    if (strncmp(state, "23", 2) == 0)
        return FORUM_DB_CONSTRAINT;
    if (strcmp(state, "53100") == 0)
        return FORUM_DB_FULL;
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0 || strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strncmp(state, "53", 2) == 0)
        return FORUM_DB_BUSY;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return FORUM_DB_UNAVAILABLE;
    return FORUM_DB_ERROR;
}

static int fail_with(int failure, const char *what, const char *msg)
{
    P.last_failure = failure == FORUM_DB_CONSTRAINT ? FORUM_DB_ERROR : failure;
    if (strstr(msg, "statement timeout") != NULL)
        ++P.timeouts; /* wherever it came: a statement, its PREPARE, a BEGIN or a COMMIT */
    snprintf(P.last_error, sizeof(P.last_error), "%s", msg);
    one_line(P.last_error);
    if (failure != FORUM_DB_CONSTRAINT)
        forum_log(failure == FORUM_DB_ERROR ? FORUM_LOG_ERROR : FORUM_LOG_WARN, "database: %.120s: %s", what, P.last_error);
    return failure;
}

int forum_pg_failure(void)
{
    return P.last_failure;
}

void forum_pg_fail_other(void)
{
    P.last_failure = FORUM_DB_ERROR;
}

/* --- the socket --- */

static void on_poll(uv_poll_t *h, int status, int events);
static void conn_lost(pg_conn_t *c, const char *why);
static int send_failed(pg_conn_t *c, const char *sql);
static void on_notice(void *arg, const char *message);
static void schedule_reconnect(pg_conn_t *c);
static void connect_step(pg_conn_t *c);

static void poll_closed(uv_handle_t *h)
{
    free(h);
}

static void poll_stop(pg_conn_t *c)
{
    if (c->poll != NULL) {
        uv_close((uv_handle_t *)c->poll, poll_closed);
        c->poll = NULL;
    }
    c->poll_fd = -1;
    c->poll_events = 0;
}

/* Watches the connection's socket for `events` (it may have changed: a connection attempt opens a new one). */
static void poll_want(pg_conn_t *c, int events)
{
    int fd = c->pg != NULL ? PQsocket(c->pg) : -1;
    if (P.loop == NULL)
        return;
    if (fd != c->poll_fd)
        poll_stop(c);
    if (fd < 0)
        return;
    if (c->poll == NULL) {
        c->poll = malloc(sizeof(*c->poll));
        if (uv_poll_init(P.loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return;
        }
        c->poll->data = c;
        uv_unref((uv_handle_t *)c->poll); /* a connection's socket never keeps a stopping loop alive */
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (events != c->poll_events) {
        uv_poll_start(c->poll, events, on_poll);
        c->poll_events = events;
    }
}

static void take_notifies(pg_conn_t *c)
{
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (strcmp(n->relname, "forum_sessions") == 0)
            forum_session_forget_hex(n->extra != NULL ? n->extra : "");
        else if (n->extra != NULL && *n->extra != '\0')
            forum_db__move_table(n->extra);
        else
            forum_db__move_all();
        PQfreemem(n);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pg_conn_t *c = h->data;
    if (c->state == C_CONNECTING) {
        connect_step(c);
        return;
    }
    if (status < 0 || c->pg == NULL) {
        conn_lost(c, uv_strerror(status));
        return;
    }
    if ((events & UV_WRITABLE) && PQflush(c->pg) == 0)
        poll_want(c, UV_READABLE);
    if (events & UV_READABLE) {
        if (PQconsumeInput(c->pg) == 0) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
        take_notifies(c);
    }
    if (c->waiter != NULL) {
        forum_fiber_t *f = c->waiter;
        c->waiter = NULL;
        forum_fiber_wake(f);
    } else if (c->state == C_SETUP && !PQisBusy(c->pg)) {
        connect_step(c);
    }
}

/*
 * Sends nothing: waits until every result of what was sent is in, and returns the last one (an error's, when
 * one failed), NULL when the connection went. On a fiber it suspends; off any fiber it waits in poll(2).
 */
static PGresult *pipe_next(pg_conn_t *c, int *lost);

static PGresult *await(pg_conn_t *c)
{
    PGresult *keep = NULL, *r;
    int lost = 0;
    while ((r = pipe_next(c, &lost)) != NULL) {
        /* the first error is the one that says why; later results of the same query only follow from it */
        if (keep == NULL || PQresultStatus(keep) != PGRES_FATAL_ERROR) {
            PQclear(keep);
            keep = r;
        } else {
            PQclear(r);
        }
    }
    if (lost) {
        PQclear(keep);
        return NULL;
    }
    return keep;
}

/* --- pipelines: writes sent without waiting (db_queue), their results read at the next call that waits --- */

/*
 * The next result of what was sent (one statement, or a pipeline's), NULL at the end of a statement's results;
 * sets *lost when the connection went (and marks it lost). On a fiber it suspends; off any fiber it waits in poll(2).
 */
static PGresult *pipe_next(pg_conn_t *c, int *lost)
{
    for (;;) {
        if (c->pg == NULL || c->state == C_DOWN)
            break;
        int flushed = PQflush(c->pg);
        if (flushed < 0)
            break;
        if (flushed == 0 && !PQisBusy(c->pg)) {
            PGresult *r = PQgetResult(c->pg);
            /* a COMMIT's own notifications come just before its end: parsed by now, taken before anyone answers */
            take_notifies(c);
            return r;
        }
        forum_fiber_t *self = forum_fiber_self();
        if (self != NULL && P.loop != NULL) {
            c->waiter = self;
            poll_want(c, UV_READABLE | (flushed == 1 ? UV_WRITABLE : 0));
            forum_fiber_suspend();
            c->waiter = NULL;
            if (c->pg == NULL || c->state == C_DOWN)
                break;
        } else {
            struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN | (flushed == 1 ? POLLOUT : 0)};
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                break;
        }
        if (PQconsumeInput(c->pg) == 0)
            break;
        take_notifies(c);
    }
    *lost = 1;
    if (c->state != C_DOWN)
        conn_lost(c, c->pg != NULL ? PQerrorMessage(c->pg) : "closed");
    return NULL;
}

static void queued_add(pg_conn_t *c, const char *sql, unsigned prepare_id)
{
    if (c->num_queued == c->cap_queued) {
        c->cap_queued = c->cap_queued == 0 ? 16 : c->cap_queued * 2;
        if ((c->queued = realloc(c->queued, c->cap_queued * sizeof(*c->queued))) == NULL)
            h2o_fatal("no memory");
    }
    c->queued[c->num_queued++] = (struct pg_queued){sql, prepare_id};
}

/*
 * Ends the pipeline: sends `then` (COMMIT, say; NULL for nothing) behind the queued statements, and a sync,
 * then reads every result. 0, or the first failure (later statements of the pipeline are skipped by the
 * server once one fails; so is `then`). The connection leaves pipeline mode.
 */
static int pipeline_finish_keep(pg_conn_t *c, const char *then, PGresult **last);

static int pipeline_finish(pg_conn_t *c, const char *then)
{
    return pipeline_finish_keep(c, then, NULL);
}

/* The same, keeping the result of the last statement sent (when it succeeded) in *last. */
static int pipeline_finish_keep(pg_conn_t *c, const char *then, PGresult **last)
{
    int failure = 0, lost = 0;
    if (c->state == C_DOWN)
        return fail_with(FORUM_DB_UNAVAILABLE, then != NULL ? then : "a queued statement", "the connection to PostgreSQL was lost");
    if (then != NULL) {
        if (!PQsendQueryParams(c->pg, then, 0, NULL, NULL, NULL, NULL, 0))
            return send_failed(c, then);
        queued_add(c, then, 0);
    }
    if (!PQpipelineSync(c->pg)) {
        /* the pipeline cannot be ended: whatever it holds, the connection is out of step */
        if (c->state != C_DOWN)
            conn_lost(c, "a pipeline could not be ended");
        return fail_with(FORUM_DB_UNAVAILABLE, then != NULL ? then : "a queued statement", "the connection to PostgreSQL was lost");
    }
    for (size_t i = 0; i != c->num_queued && !lost; ++i) {
        const struct pg_queued *q = &c->queued[i];
        PGresult *r;
        while ((r = pipe_next(c, &lost)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
                if (q->prepare_id != 0)
                    c->prepared[q->prepare_id - 1] = 0;
                if (failure == 0 && st == PGRES_FATAL_ERROR)
                    failure = fail_with(failure_of_state(PQresultErrorField(r, PG_DIAG_SQLSTATE)), q->sql, error_text(r, c));
            } else if (last != NULL && i + 1 == c->num_queued && *last == NULL) {
                *last = r;
                continue;
            }
            PQclear(r);
        }
    }
    c->num_queued = 0;
    if (lost && last != NULL) {
        PQclear(*last);
        *last = NULL;
    }
    if (lost)
        return fail_with(FORUM_DB_UNAVAILABLE, then != NULL ? then : "a queued statement",
                         P.last_error[0] != '\0' ? P.last_error : "the connection to PostgreSQL was lost");
    /* the sync's own result */
    int synced = 0;
    for (PGresult *r; !synced && (r = pipe_next(c, &lost)) != NULL;) {
        synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
    }
    take_notifies(c);
    if (!lost && (!synced || !PQexitPipelineMode(c->pg))) {
        /* results out of step with what was sent: nothing more on this connection can be trusted */
        if (c->state != C_DOWN)
            conn_lost(c, "a pipeline's results were out of step");
        lost = 1;
    }
    if (lost) {
        if (last != NULL) {
            PQclear(*last);
            *last = NULL;
        }
        return fail_with(FORUM_DB_UNAVAILABLE, "a pipeline's end", "the connection to PostgreSQL was lost");
    }
    if (failure != 0 && last != NULL) {
        PQclear(*last);
        *last = NULL;
    }
    return failure;
}

/* Runs `sql` (no parameters, maybe several statements); 0, or the failure. */
static int simple(pg_conn_t *c, const char *sql)
{
    PGresult *r;
    int ret = 0;
    if (c->state == C_DOWN)
        return fail_with(FORUM_DB_UNAVAILABLE, sql, "the connection to PostgreSQL was lost");
    /* what was queued runs first; a failure there is this call's, but a ROLLBACK still ends the transaction */
    if (c->num_queued != 0 && (ret = pipeline_finish(c, NULL)) != 0 && (strcmp(sql, "ROLLBACK") != 0 || c->state == C_DOWN))
        return ret; /* (a connection lost meanwhile has no transaction left to roll back) */
    ret = 0;
    if (!PQsendQuery(c->pg, sql))
        return send_failed(c, sql);
    if ((r = await(c)) == NULL)
        return fail_with(FORUM_DB_UNAVAILABLE, sql, P.last_error[0] != '\0' ? P.last_error : "the connection was lost");
    if (PQresultStatus(r) == PGRES_FATAL_ERROR)
        ret = fail_with(failure_of_state(PQresultErrorField(r, PG_DIAG_SQLSTATE)), sql, error_text(r, c));
    PQclear(r);
    return ret;
}

/* --- connections --- */

static void use_clear(pg_use_t *u)
{
    for (int i = 0; i != u->text->nparams; ++i) {
        free(u->values[i]);
        u->values[i] = NULL;
        u->lengths[i] = 0;
        u->formats[i] = 0;
        u->types[i] = 0;
    }
    PQclear(u->res);
    u->res = NULL;
    u->row = -1;
    u->failed = 0;
}

static void conn_forget_statements(pg_conn_t *c)
{
    for (size_t i = 0; i != c->cap; ++i) {
        if (c->uses[i] != NULL)
            use_clear(c->uses[i]);
        c->prepared[i] = 0;
    }
}

static void conn_lost(pg_conn_t *c, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "%s", why != NULL ? why : "");
    one_line(msg);
    ++P.lost;
    if (P.down_since_ms == 0)
        P.down_since_ms = forum_now_ms();
    forum_log(FORUM_LOG_WARN, "database: connection %d to PostgreSQL lost (%s); reconnecting", c->index, msg);
    poll_stop(c);
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    conn_forget_statements(c);
    c->in_txn = 0;
    c->num_queued = 0; /* went with the connection */
    if (c->state == C_IDLE) {
        for (pg_conn_t **p = &P.idle; *p != NULL; p = &(*p)->next_idle)
            if (*p == c) {
                *p = c->next_idle;
                break;
            }
        c->next_idle = NULL;
    }
    int held = c->state == C_HELD;
    c->state = C_DOWN;
    if (c->waiter != NULL) {
        forum_fiber_t *f = c->waiter;
        c->waiter = NULL;
        forum_fiber_wake(f);
    }
    /* a held connection stays with its fiber (its calls fail at once) and reconnects once given back */
    if (!held && c != P.loop_conn)
        schedule_reconnect(c);
}

static void give_to_waiter_or_idle(pg_conn_t *c);

static void on_reconnect_timer(uv_timer_t *t)
{
    pg_conn_t *c = t->data;
    if (c->state != C_DOWN)
        return;
    c->pg = PQconnectStart(P.conninfo);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        if (c->pg != NULL)
            PQfinish(c->pg);
        c->pg = NULL;
        schedule_reconnect(c);
        return;
    }
    PQsetnonblocking(c->pg, 1);
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    c->state = C_CONNECTING;
    poll_want(c, UV_WRITABLE);
}

static void schedule_reconnect(pg_conn_t *c)
{
    if (P.loop == NULL)
        return;
    c->backoff_ms = c->backoff_ms == 0 ? RECONNECT_FIRST_MS : c->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : c->backoff_ms * 2;
    uv_timer_start(&c->reconnect, on_reconnect_timer, c->backoff_ms, 0);
}

static void setup_sql(char *buf, size_t len)
{
    snprintf(buf, len, "SET statement_timeout = %u; LISTEN forum_tables; LISTEN forum_sessions", P.timeout_ms);
}

/* Drives a connection attempt (C_CONNECTING), then its setup query (C_SETUP), to C_IDLE. */
static void connect_step(pg_conn_t *c)
{
    if (c->state == C_CONNECTING) {
        switch (PQconnectPoll(c->pg)) {
        case PGRES_POLLING_READING:
            poll_want(c, UV_READABLE);
            return;
        case PGRES_POLLING_WRITING:
            poll_want(c, UV_WRITABLE);
            return;
        case PGRES_POLLING_OK: {
            char sql[128];
            setup_sql(sql, sizeof(sql));
            c->state = C_SETUP;
            if (!PQsendQuery(c->pg, sql))
                goto Failed;
            poll_want(c, UV_READABLE | UV_WRITABLE);
            return;
        }
        default:
            goto Failed;
        }
    }
    if (c->state == C_SETUP) {
        PGresult *r;
        int ok = 1;
        if (PQflush(c->pg) == 1) {
            poll_want(c, UV_READABLE | UV_WRITABLE);
            return;
        }
        poll_want(c, UV_READABLE);
        if (PQisBusy(c->pg))
            return;
        while ((r = PQgetResult(c->pg)) != NULL) {
            if (PQresultStatus(r) == PGRES_FATAL_ERROR)
                ok = 0;
            PQclear(r);
        }
        if (!ok)
            goto Failed;
        c->backoff_ms = 0;
        forum_log(FORUM_LOG_INFO, "database: connection %d to PostgreSQL is back", c->index);
        P.down_since_ms = 0;
        /* what others wrote while it was away was not heard: every cached rendering and session is read again */
        forum_db__move_all();
        forum_session_cache_clear();
        give_to_waiter_or_idle(c);
    }
    return;

Failed:
    poll_stop(c);
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = C_DOWN;
    schedule_reconnect(c);
}

/* PostgreSQL's notices (a migration's "already exists, skipping") go to the log as its other lines do. */
static void on_notice(void *arg, const char *message)
{
    char line[300];
    (void)arg;
    snprintf(line, sizeof(line), "%s", message);
    one_line(line);
    forum_log(FORUM_LOG_INFO, "database: PostgreSQL says: %s", line);
}

static int conn_open_blocking(pg_conn_t *c, char *err, size_t errlen)
{
    char sql[128];
    PGresult *r;
    c->pg = PQconnectdb(P.conninfo);
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c->pg));
        goto Error;
    }
    setup_sql(sql, sizeof(sql));
    r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "PostgreSQL refused \"%s\": %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        goto Error;
    }
    PQclear(r);
    PQsetnonblocking(c->pg, 1);
    c->state = C_IDLE;
    return 0;
Error:
    one_line(err);
    PQfinish(c->pg);
    c->pg = NULL;
    c->state = C_DOWN;
    return -1;
}

/* --- the pool --- */

static void fiber_done(forum_fiber_t *f);

static void hold(pg_conn_t *c, forum_fiber_t *f)
{
    c->state = C_HELD;
    c->owner = f;
    forum_fiber_set_data(f, c);
}

static void give_to_waiter_or_idle(pg_conn_t *c)
{
    waiter_t *w;
    while ((w = P.waiters) != NULL) {
        if ((P.waiters = w->next) == NULL)
            P.waiters_tail = NULL;
        --P.num_waiting;
        if (w->timed_out)
            continue;
        w->got = c;
        hold(c, w->fiber);
        forum_fiber_wake(w->fiber);
        return;
    }
    c->state = C_IDLE;
    c->owner = NULL;
    c->next_idle = P.idle;
    P.idle = c;
    poll_want(c, UV_READABLE); /* other processes' notifications come while it is idle */
}

static void on_waiters_timer(uv_timer_t *t)
{
    int64_t now = forum_mono_ms();
    (void)t;
    for (waiter_t **p = &P.waiters; *p != NULL;) {
        waiter_t *w = *p;
        if (w->deadline_ms > now) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        if (P.waiters_tail == w) {
            P.waiters_tail = NULL;
            for (waiter_t *x = P.waiters; x != NULL; x = x->next)
                P.waiters_tail = x;
        }
        --P.num_waiting;
        w->timed_out = 1;
        forum_fiber_wake(w->fiber);
    }
    if (P.waiters == NULL)
        uv_timer_stop(&P.waiters_timer);
}

static int any_up(void)
{
    for (int i = 0; i != P.num; ++i)
        if (P.conns[i].state == C_IDLE || P.conns[i].state == C_HELD)
            return 1;
    return 0;
}

/* The connection of the running fiber (taken now when it has none), or NULL with the failure recorded. */
static pg_conn_t *conn_get(void)
{
    forum_fiber_t *self = forum_fiber_self();
    pg_conn_t *c;
    if (self == NULL || P.loop == NULL) {
        if (P.serving && !P.warned_off_fiber) {
            forum_log(FORUM_LOG_ERROR, "database: a data call off any fiber waits for PostgreSQL on the loop (a bug)");
            P.warned_off_fiber = 1;
        }
        if (P.loop_conn == NULL || P.loop_conn->state == C_DOWN) {
            fail_with(FORUM_DB_UNAVAILABLE, "no connection", "no connection to PostgreSQL is free");
            return NULL;
        }
        return P.loop_conn;
    }
    if ((c = forum_fiber_data(self)) != NULL)
        return c;
    if ((c = P.idle) != NULL) {
        P.idle = c->next_idle;
        c->next_idle = NULL;
        hold(c, self);
        forum_fiber_on_exit(fiber_done);
        return c;
    }
    if (!any_up()) {
        fail_with(FORUM_DB_UNAVAILABLE, "no connection", "PostgreSQL cannot be reached (forumd keeps trying to reconnect)");
        return NULL;
    }
    waiter_t w = {.fiber = self, .deadline_ms = forum_mono_ms() + (int64_t)P.timeout_ms};
    if (P.waiters_tail != NULL)
        P.waiters_tail->next = &w;
    else
        P.waiters = &w;
    P.waiters_tail = &w;
    ++P.num_waiting;
    if (!uv_is_active((uv_handle_t *)&P.waiters_timer))
        uv_timer_start(&P.waiters_timer, on_waiters_timer, WAITERS_CHECK_MS, WAITERS_CHECK_MS);
    forum_fiber_suspend();
    if (w.got == NULL) {
        ++P.pool_full;
        char msg[120];
        snprintf(msg, sizeof(msg), "all %d connections stayed busy for %u ms", P.num, P.timeout_ms);
        fail_with(FORUM_DB_BUSY, "waiting for a connection", msg);
        return NULL;
    }
    forum_fiber_on_exit(fiber_done);
    return w.got;
}

/* The fiber ended: its connection goes back (a transaction it left open is rolled back first). */
static void fiber_done(forum_fiber_t *f)
{
    pg_conn_t *c = forum_fiber_data(f);
    if (c == NULL)
        return;
    if (c->in_txn && c->state == C_HELD) {
        forum_log(FORUM_LOG_ERROR, "database: a transaction was left open; rolled back");
        simple(c, "ROLLBACK");
        forum_db__move_all();
        c->in_txn = 0;
    }
    forum_fiber_set_data(f, NULL);
    for (size_t i = 0; i != c->cap; ++i)
        if (c->uses[i] != NULL && c->uses[i]->res != NULL)
            use_clear(c->uses[i]);
    c->owner = NULL;
    if (c->state == C_DOWN) {
        schedule_reconnect(c);
        return;
    }
    give_to_waiter_or_idle(c);
}

int forum_pg_in_txn(void)
{
    forum_fiber_t *self = forum_fiber_self();
    pg_conn_t *c = self != NULL ? forum_fiber_data(self) : NULL;
    return c != NULL && c->in_txn;
}

void forum_pg_release(void)
{
    forum_fiber_t *self = forum_fiber_self();
    pg_conn_t *c = self != NULL ? forum_fiber_data(self) : NULL;
    if (c != NULL && !c->in_txn)
        fiber_done(self); /* its next data call takes one again */
}

/* --- statements --- */

static pg_use_t *use_of(pg_conn_t *c, pg_text_t *t)
{
    if (t->id >= c->cap) {
        size_t cap = c->cap == 0 ? 64 : c->cap;
        while (cap <= t->id)
            cap *= 2;
        c->uses = realloc(c->uses, cap * sizeof(*c->uses));
        c->prepared = realloc(c->prepared, cap);
        memset(c->uses + c->cap, 0, (cap - c->cap) * sizeof(*c->uses));
        memset(c->prepared + c->cap, 0, cap - c->cap);
        c->cap = cap;
    }
    pg_use_t *u = c->uses[t->id];
    if (u == NULL) {
        int n = t->nparams > 0 ? t->nparams : 1;
        u = c->uses[t->id] = calloc(1, sizeof(*u));
        u->text = t;
        u->conn = c;
        u->values = calloc((size_t)n, sizeof(*u->values));
        u->lengths = calloc((size_t)n, sizeof(*u->lengths));
        u->formats = calloc((size_t)n, sizeof(*u->formats));
        u->types = calloc((size_t)n, sizeof(*u->types));
        u->row = -1;
    }
    return u;
}

forum_stmt_t *forum_pg_stmt(const char *sql)
{
    pg_conn_t *c = conn_get();
    if (c == NULL)
        return NULL;
    pg_use_t *u = use_of(c, text_of(sql));
    use_clear(u);
    return (forum_stmt_t *)u;
}

static int use_bind(pg_use_t *u, int idx, char *value, int len, int format, Oid type)
{
    if (u == NULL)
        return -1;
    if (idx < 1 || idx > u->text->nparams) {
        free(value);
        forum_log(FORUM_LOG_ERROR, "database: \"%s\" has no parameter %d", u->text->sql, idx);
        return -1;
    }
    free(u->values[idx - 1]);
    u->values[idx - 1] = value;
    u->lengths[idx - 1] = len;
    u->formats[idx - 1] = format;
    u->types[idx - 1] = type;
    return 0;
}

int forum_pg_bind_int(forum_stmt_t *s, int idx, int64_t v)
{
    char *buf = malloc(24);
    snprintf(buf, 24, "%" PRId64, v);
    return use_bind((pg_use_t *)s, idx, buf, 0, 0, OID_INT8);
}

int forum_pg_bind_text(forum_stmt_t *s, int idx, const char *v, size_t len)
{
    pg_use_t *u = (pg_use_t *)s;
    if (u == NULL)
        return -1;
    if (!forum_utf8_valid(v, len)) {
        forum_log(FORUM_LOG_ERROR, "database: \"%s\": parameter %d is not UTF-8 text; bound as NULL", u->text->sql, idx);
        use_bind(u, idx, NULL, 0, 0, 0);
        return -1;
    }
    char *copy = malloc(len + 1);
    memcpy(copy, v, len);
    copy[len] = '\0';
    return use_bind(u, idx, copy, (int)len, 0, OID_TEXT);
}

int forum_pg_bind_blob(forum_stmt_t *s, int idx, const void *v, size_t len)
{
    char *copy = malloc(len + 1);
    memcpy(copy, v, len);
    return use_bind((pg_use_t *)s, idx, copy, (int)len, 1, OID_BYTEA);
}

int forum_pg_bind_null(forum_stmt_t *s, int idx)
{
    return use_bind((pg_use_t *)s, idx, NULL, 0, 0, 0);
}

/* A send that libpq refused: a connection found broken is lost (and comes back), whatever the caller does next. */
static int send_failed(pg_conn_t *c, const char *sql)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "%s", c->pg != NULL ? PQerrorMessage(c->pg) : "no connection");
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD)
        conn_lost(c, msg);
    return fail_with(FORUM_DB_UNAVAILABLE, sql, msg);
}

/* Sends the statement (preparing it first on this connection), waits, and keeps its result. */
static int run(pg_use_t *u)
{
    pg_conn_t *c = u->conn;
    pg_text_t *t = u->text;
    char name[16];
    PGresult *r;
    int failure;

    if (c->state == C_DOWN)
        return fail_with(FORUM_DB_UNAVAILABLE, t->sql, "the connection to PostgreSQL was lost");
    snprintf(name, sizeof(name), "f%u", t->id);
    if (c->num_queued != 0) {
        /* a pipeline is open (a BEGIN, queued writes): this statement goes at its end, and the whole pipeline is
         * one round trip; what was queued before runs first, and its failure is this call's */
        if (!c->prepared[t->id]) {
            if (!PQsendPrepare(c->pg, name, t->pgsql, t->nparams, u->types))
                return send_failed(c, t->sql);
            queued_add(c, t->sql, t->id + 1);
            c->prepared[t->id] = 1;
        }
        if (!PQsendQueryPrepared(c->pg, name, t->nparams, (const char *const *)u->values, u->lengths, u->formats, 0))
            return send_failed(c, t->sql);
        queued_add(c, t->sql, 0);
        r = NULL;
        if ((failure = pipeline_finish_keep(c, NULL, &r)) != 0)
            return failure;
        if (r == NULL)
            return fail_with(FORUM_DB_ERROR, t->sql, "no result");
        u->res = r;
        c->changes = atoi(PQcmdTuples(r));
        return FORUM_DB_DONE;
    }
    if (!c->prepared[t->id]) {
        if (!PQsendPrepare(c->pg, name, t->pgsql, t->nparams, u->types))
            return send_failed(c, t->sql);
        if ((r = await(c)) == NULL)
            return fail_with(FORUM_DB_UNAVAILABLE, t->sql, "the connection to PostgreSQL was lost");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            failure = failure_of_state(PQresultErrorField(r, PG_DIAG_SQLSTATE));
            /* a text that does not compile is a bug (logged as such); a lost connection or a timeout is not */
            if (failure == FORUM_DB_CONSTRAINT)
                failure = FORUM_DB_ERROR;
            fail_with(failure, t->sql, error_text(r, c));
            PQclear(r);
            return failure;
        }
        PQclear(r);
        if (c->state == C_DOWN)
            return fail_with(FORUM_DB_UNAVAILABLE, t->sql, "the connection to PostgreSQL was lost");
        c->prepared[t->id] = 1;
    }
    if (!PQsendQueryPrepared(c->pg, name, t->nparams, (const char *const *)u->values, u->lengths, u->formats, 0))
        return send_failed(c, t->sql);
    if ((r = await(c)) == NULL)
        return fail_with(FORUM_DB_UNAVAILABLE, t->sql, "the connection to PostgreSQL was lost");
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        u->res = r;
        c->changes = atoi(PQcmdTuples(r));
        return FORUM_DB_DONE;
    default:
        failure = failure_of_state(PQresultErrorField(r, PG_DIAG_SQLSTATE));
        fail_with(failure, t->sql, error_text(r, c));
        PQclear(r);
        return failure;
    }
}

int forum_pg_step(forum_stmt_t *s)
{
    pg_use_t *u = (pg_use_t *)s;
    int ret;
    if (u == NULL)
        return P.last_failure == FORUM_DB_ERROR ? FORUM_DB_ERROR : P.last_failure;
    if (u->failed)
        return FORUM_DB_ERROR;
    if (u->row < 0) {
        if ((ret = run(u)) != FORUM_DB_DONE) {
            u->failed = 1;
            return ret;
        }
    }
    if (++u->row < PQntuples(u->res))
        return FORUM_DB_ROW;
    u->row = PQntuples(u->res);
    return FORUM_DB_DONE;
}

int64_t forum_pg_col_int(forum_stmt_t *s, int col)
{
    pg_use_t *u = (pg_use_t *)s;
    if (u->res == NULL || u->row >= PQntuples(u->res) || PQgetisnull(u->res, u->row, col))
        return 0;
    const char *v = PQgetvalue(u->res, u->row, col);
    /* a truth value, should a plugin select one, reads as SQLite's 1 and 0 */
    if (PQftype(u->res, col) == OID_BOOL)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

const char *forum_pg_col_text(forum_stmt_t *s, int col)
{
    pg_use_t *u = (pg_use_t *)s;
    if (u->res == NULL || u->row >= PQntuples(u->res) || PQgetisnull(u->res, u->row, col))
        return NULL;
    return PQgetvalue(u->res, u->row, col);
}

int forum_pg_col_is_null(forum_stmt_t *s, int col)
{
    pg_use_t *u = (pg_use_t *)s;
    return u->res == NULL || u->row >= PQntuples(u->res) || PQgetisnull(u->res, u->row, col);
}

int forum_pg_row_json(forum_stmt_t *s, yajl_gen g)
{
    pg_use_t *u = (pg_use_t *)s;
    int n = PQnfields(u->res);
    forum_db_row_nest_t nest = {NULL, 0};

    yajl_gen_map_open(g);
    for (int i = 0; i != n; ++i) {
        forum_db__row_key(g, PQfname(u->res, i), &nest);
        if (PQgetisnull(u->res, u->row, i)) {
            yajl_gen_null(g);
            continue;
        }
        const char *v = PQgetvalue(u->res, u->row, i);
        switch (PQftype(u->res, i)) {
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_OID:
            yajl_gen_integer(g, strtoll(v, NULL, 10));
            break;
        case OID_FLOAT4:
        case OID_FLOAT8:
        case OID_NUMERIC:
            yajl_gen_number(g, v, strlen(v));
            break;
        case OID_BOOL:
            yajl_gen_integer(g, v[0] == 't');
            break;
        default:
            yajl_gen_string(g, (const unsigned char *)v, (size_t)PQgetlength(u->res, u->row, i));
            break;
        }
    }
    forum_db__row_end(g, &nest);
    return 0;
}

int forum_pg_changes(void)
{
    pg_conn_t *c = forum_fiber_self() != NULL ? forum_fiber_data(forum_fiber_self()) : P.loop_conn;
    return c != NULL ? c->changes : 0;
}

int64_t forum_pg_last_id(void)
{
    forum_stmt_t *s = forum_pg_stmt("SELECT lastval()");
    return forum_pg_step(s) == FORUM_DB_ROW ? forum_pg_col_int(s, 0) : 0;
}

int forum_pg_exec(const char *sql)
{
    pg_conn_t *c = conn_get();
    int ret;
    if (c == NULL)
        return -1;
    ret = simple(c, sql);
    forum_db__move_all(); /* what raw SQL writes is not known */
    return ret == 0 ? 0 : -1;
}

int forum_pg_begin(void)
{
    pg_conn_t *c = conn_get();
    if (c == NULL)
        return -1;
    if (c->state == C_HELD && c->num_queued == 0 && c->pg != NULL) {
        /* sent ahead of the transaction's first statement, in one round trip with it */
        if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c->pg)) {
            fail_with(FORUM_DB_ERROR, "BEGIN", PQerrorMessage(c->pg));
            return -1;
        }
        if (!PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) {
            send_failed(c, "BEGIN");
            return -1;
        }
        queued_add(c, "BEGIN", 0);
    } else if (simple(c, "BEGIN") != 0) {
        return -1;
    }
    c->in_txn = 1;
    return 0;
}

int forum_pg_queue(forum_stmt_t *s)
{
    pg_use_t *u = (pg_use_t *)s;
    if (u == NULL)
        return -1;
    pg_conn_t *c = u->conn;
    pg_text_t *t = u->text;
    char name[16];
    /* outside a transaction nothing follows that it could be sent with: it runs now */
    if (!c->in_txn || c->state != C_HELD) {
        int rc = forum_pg_step(s);
        return rc == FORUM_DB_DONE || rc == FORUM_DB_ROW ? 0 : -1;
    }
    if (c->num_queued == 0 && PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c->pg)) {
        fail_with(FORUM_DB_ERROR, t->sql, PQerrorMessage(c->pg));
        return -1;
    }
    snprintf(name, sizeof(name), "f%u", t->id);
    if (!c->prepared[t->id]) {
        if (!PQsendPrepare(c->pg, name, t->pgsql, t->nparams, u->types)) {
            send_failed(c, t->sql);
            return -1;
        }
        queued_add(c, t->sql, t->id + 1);
        c->prepared[t->id] = 1; /* taken back if the PREPARE fails: it fails the pipeline, this statement too */
    }
    if (!PQsendQueryPrepared(c->pg, name, t->nparams, (const char *const *)u->values, u->lengths, u->formats, 0)) {
        send_failed(c, t->sql);
        return -1;
    }
    queued_add(c, t->sql, 0);
    use_clear(u); /* libpq holds what it sends: the text may be used again at once */
    return 0;
}

int forum_pg_commit(void)
{
    pg_conn_t *c = conn_get();
    if (c == NULL)
        return -1;
    /* the queued writes and the COMMIT go together: one round trip. A transaction a failed statement aborted is
     * not committed: PostgreSQL would answer its COMMIT as a ROLLBACK, which must not read as stored. */
    int ret;
    if (c->num_queued == 0 && c->state != C_DOWN && c->pg != NULL && PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        ret = fail_with(FORUM_DB_ERROR, "COMMIT", "the transaction was aborted by a statement that failed");
    else
        ret = c->num_queued != 0 ? pipeline_finish(c, "COMMIT") : simple(c, "COMMIT");
    if (ret != 0 && c->state != C_DOWN && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        simple(c, "ROLLBACK"); /* a failure in the pipeline left the transaction open, aborted */
    c->in_txn = 0;
    if (ret != 0) {
        forum_db__move_all();
        return -1;
    }
    return 0;
}

void forum_pg_rollback(void)
{
    pg_conn_t *c = conn_get();
    if (c == NULL || !c->in_txn)
        return;
    c->in_txn = 0;
    if (c->state != C_DOWN)
        simple(c, "ROLLBACK"); /* after the end of a pipeline under way, whatever it met */
    forum_db__move_all();
}

/* --- open, close, status --- */

int forum_pg_open(const forum_config_t *conf, uv_loop_t *loop, char *err, size_t errlen)
{
    memset(&P, 0, sizeof(P));
    P.conninfo = strdup(conf->pg_conninfo);
    P.timeout_ms = conf->pg_statement_timeout_ms;
    P.num = (int)conf->pg_connections;
    P.loop = loop;
    P.last_failure = FORUM_DB_ERROR;
    on = 1;
    for (int i = 0; i != P.num; ++i) {
        pg_conn_t *c = &P.conns[i];
        c->index = i;
        c->poll_fd = -1;
        if (loop != NULL) {
            uv_timer_init(loop, &c->reconnect);
            c->reconnect.data = c;
            uv_unref((uv_handle_t *)&c->reconnect);
        }
    }
    if (loop != NULL) {
        uv_timer_init(loop, &P.waiters_timer);
        uv_unref((uv_handle_t *)&P.waiters_timer);
    }
    /* at start nothing is served yet: the connections are made here, and one that fails stops forumd */
    for (int i = 0; i != P.num; ++i) {
        if (conn_open_blocking(&P.conns[i], err, errlen) != 0) {
            forum_pg_close();
            return -1;
        }
    }
    P.loop_conn = &P.conns[0];
    forum_session_cache_enable(1);
    return 0;
}

void forum_pg_serving(void)
{
    /* from now on every data call is on a fiber: the connection used at start joins the pool */
    P.serving = 1;
    P.loop_conn = NULL;
    P.idle = NULL;
    for (int i = P.num - 1; i >= 0; --i)
        if (P.conns[i].state == C_IDLE) {
            P.conns[i].state = C_HELD; /* give_to_waiter_or_idle puts it on the idle list */
            give_to_waiter_or_idle(&P.conns[i]);
        }
    forum_fiber_enable(1);
}

void forum_pg_serving_end(void)
{
    /* fibers still suspended never resume: calls from now on wait in place, on a connection none of them holds */
    forum_fiber_enable(0);
    P.serving = 0;
    P.loop_conn = P.idle;
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

void forum_pg_close(void)
{
    if (!on)
        return;
    for (int i = 0; i != P.num; ++i) {
        pg_conn_t *c = &P.conns[i];
        poll_stop(c);
        if (P.loop != NULL && !uv_is_closing((uv_handle_t *)&c->reconnect))
            uv_close((uv_handle_t *)&c->reconnect, timer_closed);
        if (c->pg != NULL)
            PQfinish(c->pg);
        c->pg = NULL;
        for (size_t k = 0; k != c->cap; ++k) {
            pg_use_t *u = c->uses[k];
            if (u == NULL)
                continue;
            use_clear(u);
            free(u->values);
            free(u->lengths);
            free(u->formats);
            free(u->types);
            free(u);
        }
        free(c->uses);
        free(c->prepared);
        free(c->queued);
    }
    if (P.loop != NULL && !uv_is_closing((uv_handle_t *)&P.waiters_timer))
        uv_close((uv_handle_t *)&P.waiters_timer, timer_closed);
    for (size_t b = 0; b != 256; ++b) {
        while (P.texts[b] != NULL) {
            pg_text_t *t = P.texts[b];
            P.texts[b] = t->next;
            free(t->sql);
            free(t->pgsql);
            free(t);
        }
    }
    free(P.conninfo);
    forum_session_cache_enable(0);
    forum_fiber_enable(0);
    on = 0;
}

void forum_pg_status(yajl_gen g)
{
    int up = 0, idle = 0, held = 0;
    for (int i = 0; i != P.num; ++i) {
        up += P.conns[i].state == C_IDLE || P.conns[i].state == C_HELD;
        idle += P.conns[i].state == C_IDLE;
        held += P.conns[i].state == C_HELD;
    }
    size_t live, peak;
    forum_fiber_stats(&live, &peak);
    forum_json_str(g, "backend");
    forum_json_str(g, "postgresql");
    forum_json_str(g, "state");
    forum_json_str(g, up == P.num ? "connected" : up != 0 ? "degraded" : "unavailable");
    forum_json_str(g, "connections");
    yajl_gen_integer(g, P.num);
    forum_json_str(g, "connections_up");
    yajl_gen_integer(g, up);
    forum_json_str(g, "connections_busy");
    yajl_gen_integer(g, held);
    forum_json_str(g, "waiting");
    yajl_gen_integer(g, (long long)P.num_waiting);
    forum_json_str(g, "statement_timeout_ms");
    yajl_gen_integer(g, P.timeout_ms);
    forum_json_str(g, "connections_lost");
    yajl_gen_integer(g, (long long)P.lost);
    forum_json_str(g, "statement_timeouts");
    yajl_gen_integer(g, (long long)P.timeouts);
    forum_json_str(g, "pool_full");
    yajl_gen_integer(g, (long long)P.pool_full);
    forum_json_str(g, "fibers");
    yajl_gen_integer(g, (long long)live);
    forum_json_str(g, "fibers_peak");
    yajl_gen_integer(g, (long long)peak);
    (void)idle;
}

int forum_pg_check_conninfo(const char *conninfo, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (opts == NULL) {
        snprintf(err, errlen, "not a libpq connection string: %s", msg != NULL ? msg : "out of memory");
        one_line(err);
        PQfreemem(msg);
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}
