/*
 * Checkpoints leave the loop: a thread of the DAL's own, with a second connection, copies the WAL back
 * into the database (PASSIVE, so the loop keeps committing meanwhile) whenever a commit leaves
 * CHECKPOINT_PAGES or more in the WAL. Not the thread pool: its threads run at the lowest priority,
 * and a checkpoint starved by a busy loop would let the WAL grow. A checkpoint cannot finish the WAL
 * while commits keep coming, so a WAL that still reaches CHECKPOINT_FORCE_PAGES is checkpointed on
 * the loop, between two commits, which bounds it.
 *
 * Nothing bounds it while another connection (an operator's sqlite3 shell) keeps a read transaction
 * open: no checkpoint may copy past the snapshot that reader holds. Checkpoints that copy nothing new
 * while the WAL grows (STUCK_ATTEMPTS in a row, or one on the loop, where no read of ours can be the
 * cause) mean such a reader: that is logged once, checkpoints stop following commits (each would scan
 * the whole WAL for nothing, on the loop at the worst) and are tried again on a backoff timer instead.
 * The first one that copies everything means the reader has gone: the WAL, grown far past its usual
 * size, is then truncated, once, on the loop (whatever is left to copy is what was committed since).
 */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "db_private.h"

enum {
    CHECKPOINT_PAGES = 1000,
    CHECKPOINT_FORCE_PAGES = 16000,
    STUCK_ATTEMPTS = 3,     /* background checkpoints in a row that copy nothing new while the WAL grows */
    BACKOFF_FIRST_MS = 500, /* while stuck: the first retry, doubled up to BACKOFF_MAX_MS */
    BACKOFF_MAX_MS = 8000,
};

static struct {
    sqlite3 *db;   /* the checkpointer's own connection, used only by its thread */
    sqlite3 *loop; /* the loop's connection */
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t wake;
    uv_async_t done;
    int requested, stop, result, log, copied; /* under lock */
    int running;                              /* loop only: asked and not yet done */
    /* loop only: what the last checkpoint saw, and whether a reader holds the WAL */
    int last_log, last_copied, no_progress;
    int stuck, stuck_copied;
    int truncate; /* the reader is gone: truncate the WAL at the next chance */
    unsigned backoff_ms;
    uv_timer_t retry;
} ckpt;

static void checkpointer(void *arg)
{
    (void)arg;
    /* below the loop, above the thread pool: it yields to requests but is never starved for long */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    uv_mutex_lock(&ckpt.lock);
    for (;;) {
        while (!ckpt.requested && !ckpt.stop)
            uv_cond_wait(&ckpt.wake, &ckpt.lock);
        if (ckpt.stop)
            break;
        ckpt.requested = 0;
        uv_mutex_unlock(&ckpt.lock);
        int log = -1, copied = -1;
        int rc = sqlite3_wal_checkpoint_v2(ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        uv_mutex_lock(&ckpt.lock);
        ckpt.result = rc;
        ckpt.log = log;
        ckpt.copied = copied;
        uv_async_send(&ckpt.done);
    }
    uv_mutex_unlock(&ckpt.lock);
}

static void on_retry(uv_timer_t *timer);

static void request_background(void)
{
    uv_mutex_lock(&ckpt.lock);
    ckpt.requested = 1;
    uv_cond_signal(&ckpt.wake);
    uv_mutex_unlock(&ckpt.lock);
    ckpt.running = 1;
}

static void backoff(void)
{
    ckpt.backoff_ms = ckpt.backoff_ms == 0 ? BACKOFF_FIRST_MS : ckpt.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ckpt.backoff_ms * 2;
    uv_timer_start(&ckpt.retry, on_retry, ckpt.backoff_ms, 0);
}

/*
 * Truncates the WAL on the loop once the reader has gone: no busy handler, so a writer or reader of
 * another connection makes it fail at once (BUSY), and it is tried again after the backoff.
 */
static void truncate_wal(void)
{
    int log = -1, copied = -1, rc;
    int64_t start = forum_mono_ms();
    forum_db_reset_active(); /* a read of ours left from earlier in this turn would hold the WAL too */
    rc = sqlite3_wal_checkpoint_v2(ckpt.loop, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied);
    if (rc == SQLITE_OK) {
        forum_log(FORUM_LOG_INFO, "database: the reader is gone; WAL truncated (%d pages were left to copy, %lld ms on the loop)",
                  log - ckpt.last_copied > 0 ? log - ckpt.last_copied : 0, (long long)(forum_mono_ms() - start));
        ckpt.truncate = 0;
        ckpt.backoff_ms = 0;
        ckpt.last_log = ckpt.last_copied = 0;
    } else {
        backoff();
    }
}

/* What a checkpoint saw: `log` pages in the WAL, `copied` of them in the database. `certain`: no read of ours could hold it. */
static void observe(int rc, int log, int copied, int certain)
{
    if (rc != SQLITE_OK || log < 0)
        return; /* another checkpointer, or no WAL: nothing learnt */
    if (copied >= log) {
        ckpt.no_progress = 0;
        if (ckpt.stuck) {
            ckpt.stuck = 0;
            ckpt.truncate = 1;
        }
    } else if (ckpt.stuck) {
        if (copied > ckpt.stuck_copied) { /* the reader moved on to a newer snapshot */
            forum_log(FORUM_LOG_INFO, "database: checkpoints progress again (%d of %d WAL pages copied)", copied, log);
            ckpt.stuck = 0;
            ckpt.no_progress = 0;
            ckpt.backoff_ms = 0;
        }
    } else if (certain || (log > ckpt.last_log && copied <= ckpt.last_copied && ++ckpt.no_progress >= STUCK_ATTEMPTS - 1)) {
        forum_log(FORUM_LOG_WARN,
                  "database: checkpoint cannot progress: the WAL has %d pages and only %d can be copied back, because another "
                  "connection keeps a read transaction open (an operator's sqlite3 shell?); the WAL grows until it ends. "
                  "Checkpoints back off meanwhile, and the WAL is truncated after it",
                  log, copied);
        ckpt.stuck = 1;
        ckpt.stuck_copied = copied;
        ckpt.backoff_ms = 0;
    } else if (copied > ckpt.last_copied || log < ckpt.last_log) {
        ckpt.no_progress = 0;
    }
    ckpt.last_log = log;
    ckpt.last_copied = copied;
    if (ckpt.stuck)
        backoff();
    else if (ckpt.truncate)
        truncate_wal();
}

static void on_retry(uv_timer_t *timer)
{
    (void)timer;
    if (ckpt.truncate)
        truncate_wal();
    else if (ckpt.stuck && !ckpt.running)
        request_background();
    else if (ckpt.stuck)
        backoff();
}

static void checkpoint_done(uv_async_t *async)
{
    int rc, log, copied;
    (void)async;
    uv_mutex_lock(&ckpt.lock);
    rc = ckpt.result;
    log = ckpt.log;
    copied = ckpt.copied;
    uv_mutex_unlock(&ckpt.lock);
    ckpt.running = 0;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        forum_log(FORUM_LOG_WARN, "database: background checkpoint: %s", sqlite3_errstr(rc));
    observe(rc, log, copied, 0);
}

/* After every commit, with the number of pages in the WAL. */
static int on_wal_commit(void *arg, sqlite3 *conn, const char *name, int pages)
{
    (void)arg;
    /* while a reader holds the WAL, checkpoints follow the backoff timer, not commits */
    if (pages < CHECKPOINT_PAGES || ckpt.running || ckpt.stuck || ckpt.truncate)
        return SQLITE_OK;
    if (pages >= CHECKPOINT_FORCE_PAGES) {
        int64_t start = forum_mono_ms();
        int log = -1, copied = -1;
        int rc = sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        if (rc == SQLITE_OK && copied >= log)
            forum_log(FORUM_LOG_INFO, "database: the WAL reached %d pages under load; checkpointed on the loop in %lld ms", pages,
                      (long long)(forum_mono_ms() - start));
        else if (rc != SQLITE_OK) /* another checkpointer is at work: the next commit tries again */
            forum_log(FORUM_LOG_DEBUG, "database: the WAL has %d pages; checkpoint on the loop: %s", pages, sqlite3_errstr(rc));
        observe(rc, log, copied, 1);
    } else {
        request_background();
    }
    return SQLITE_OK;
}

void forum_db__checkpoint_start(sqlite3 *conn, const char *path, uv_loop_t *loop)
{
    if (sqlite3_open_v2(path, &ckpt.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        forum_log(FORUM_LOG_WARN, "database: no background checkpoints: %s", ckpt.db != NULL ? sqlite3_errmsg(ckpt.db) : "no memory");
        sqlite3_close(ckpt.db);
        ckpt.db = NULL;
        return;
    }
    sqlite3_busy_timeout(ckpt.db, 2000);
    sqlite3_exec(ckpt.db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    uv_mutex_init(&ckpt.lock);
    uv_cond_init(&ckpt.wake);
    uv_async_init(loop, &ckpt.done, checkpoint_done);
    uv_unref((uv_handle_t *)&ckpt.done);
    uv_timer_init(loop, &ckpt.retry);
    uv_unref((uv_handle_t *)&ckpt.retry);
    if (uv_thread_create(&ckpt.thread, checkpointer, NULL) != 0) {
        forum_log(FORUM_LOG_WARN, "database: no background checkpoints: no thread");
        uv_close((uv_handle_t *)&ckpt.done, NULL);
        uv_close((uv_handle_t *)&ckpt.retry, NULL);
        uv_cond_destroy(&ckpt.wake);
        uv_mutex_destroy(&ckpt.lock);
        sqlite3_close(ckpt.db);
        ckpt.db = NULL;
        return;
    }
    ckpt.loop = conn;
    sqlite3_wal_autocheckpoint(conn, 0);
    sqlite3_wal_hook(conn, on_wal_commit, NULL);
}

void forum_db__checkpoint_stop(void)
{
    if (ckpt.db == NULL)
        return;
    /* a checkpoint under way ends first: the thread is joined before its connection closes */
    uv_mutex_lock(&ckpt.lock);
    ckpt.stop = 1;
    uv_cond_signal(&ckpt.wake);
    uv_mutex_unlock(&ckpt.lock);
    uv_thread_join(&ckpt.thread);
    uv_close((uv_handle_t *)&ckpt.done, NULL);
    uv_close((uv_handle_t *)&ckpt.retry, NULL);
    uv_cond_destroy(&ckpt.wake);
    uv_mutex_destroy(&ckpt.lock);
    sqlite3_close(ckpt.db);
    ckpt.db = NULL;
    ckpt.loop = NULL;
    ckpt.running = ckpt.stop = ckpt.requested = 0;
    ckpt.stuck = ckpt.truncate = ckpt.no_progress = ckpt.last_log = ckpt.last_copied = 0;
    ckpt.backoff_ms = 0;
}
