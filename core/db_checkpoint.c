/*
 * Checkpoints leave the loop: a thread of the DAL's own, with a second connection, copies the WAL back
 * into the database (PASSIVE, so the loop keeps committing meanwhile) whenever a commit leaves
 * CHECKPOINT_PAGES or more in the WAL. Not the thread pool: its threads run at the lowest priority,
 * and a checkpoint starved by a busy loop would let the WAL grow. A checkpoint cannot finish the WAL
 * while commits keep coming, so a WAL that still reaches CHECKPOINT_FORCE_PAGES is checkpointed on
 * the loop, between two commits, which bounds it.
 */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "db_private.h"

enum { CHECKPOINT_PAGES = 1000, CHECKPOINT_FORCE_PAGES = 16000 };

static uv_loop_t *db_loop;
static struct {
    sqlite3 *db; /* the checkpointer's own connection, used only by its thread */
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t wake;
    uv_async_t done;
    int requested, stop, result; /* under lock */
    int running;                 /* loop only: asked and not yet done */
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
        int rc = sqlite3_wal_checkpoint_v2(ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        uv_mutex_lock(&ckpt.lock);
        ckpt.result = rc;
        uv_async_send(&ckpt.done);
    }
    uv_mutex_unlock(&ckpt.lock);
}

static void checkpoint_done(uv_async_t *async)
{
    int rc;
    (void)async;
    uv_mutex_lock(&ckpt.lock);
    rc = ckpt.result;
    uv_mutex_unlock(&ckpt.lock);
    ckpt.running = 0;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        forum_log(FORUM_LOG_WARN, "database: background checkpoint: %s", sqlite3_errstr(rc));
}

/* After every commit, with the number of pages in the WAL. */
static int on_wal_commit(void *arg, sqlite3 *conn, const char *name, int pages)
{
    (void)arg;
    if (pages < CHECKPOINT_PAGES)
        return SQLITE_OK;
    if (!ckpt.running) {
        if (pages >= CHECKPOINT_FORCE_PAGES) {
            int64_t start = forum_mono_ms();
            int rc = sqlite3_wal_checkpoint_v2(conn, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            if (rc == SQLITE_OK)
                forum_log(FORUM_LOG_INFO, "database: the WAL reached %d pages under load; checkpointed on the loop in %lld ms",
                          pages, (long long)(forum_mono_ms() - start));
            else /* a statement of this turn still reads: the next commit tries again */
                forum_log(FORUM_LOG_DEBUG, "database: the WAL has %d pages; checkpoint on the loop: %s", pages, sqlite3_errstr(rc));
        } else {
            uv_mutex_lock(&ckpt.lock);
            ckpt.requested = 1;
            uv_cond_signal(&ckpt.wake);
            uv_mutex_unlock(&ckpt.lock);
            ckpt.running = 1;
        }
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
    if (uv_thread_create(&ckpt.thread, checkpointer, NULL) != 0) {
        forum_log(FORUM_LOG_WARN, "database: no background checkpoints: no thread");
        uv_close((uv_handle_t *)&ckpt.done, NULL);
        uv_cond_destroy(&ckpt.wake);
        uv_mutex_destroy(&ckpt.lock);
        sqlite3_close(ckpt.db);
        ckpt.db = NULL;
        return;
    }
    db_loop = loop;
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
    uv_cond_destroy(&ckpt.wake);
    uv_mutex_destroy(&ckpt.lock);
    sqlite3_close(ckpt.db);
    ckpt.db = NULL;
    ckpt.running = ckpt.stop = ckpt.requested = 0;
}
