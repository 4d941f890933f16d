/*
 * The data access layer: one SQLite connection used only on the loop thread. Statements are
 * prepared once and cached by their text; none is ever built from user input.
 *
 * Checkpoints leave the loop: a thread of the DAL's own, with a second connection, copies the WAL back
 * into the database (PASSIVE, so the loop keeps committing meanwhile) whenever a commit leaves
 * CHECKPOINT_PAGES or more in the WAL. Not the thread pool: its threads run at the lowest priority,
 * and a checkpoint starved by a busy loop would let the WAL grow. A checkpoint cannot finish the WAL
 * while commits keep coming, so a WAL that still reaches CHECKPOINT_FORCE_PAGES is checkpointed on
 * the loop, between two commits, which bounds it.
 */
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

enum { STMT_MAX_WRITES = 8 };

struct forum_stmt {
    sqlite3_stmt *st;
    char *sql;
    /* the tables the statement (with its triggers) writes, as seen by the authorizer while it compiles */
    uint8_t writes[STMT_MAX_WRITES];
    uint8_t num_writes;
    uint8_t writes_unknown; /* more than fit, or a table past MAX_TABLES: every version moves */
    struct forum_stmt *next;        /* hash chain */
    struct forum_stmt *next_active; /* stepped during this loop turn */
    int active;
};

enum { NUM_BUCKETS = 256, CHECKPOINT_PAGES = 1000, CHECKPOINT_FORCE_PAGES = 16000 };

static sqlite3 *db;
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
static forum_stmt_t *buckets[NUM_BUCKETS];
static forum_stmt_t *active;
static uv_check_t turn_end;
static int have_turn_end;

/*
 * Table versions, for renderings cached by plugins (forum_db_version). A statement's writes are learnt
 * from the authorizer while SQLite compiles it, triggers included, so a write through a trigger moves
 * the version of the table the trigger writes. The epoch moves every version at once: raw SQL, a
 * rollback (a rendering made inside the transaction may show rows that are gone), or a commit by
 * another connection (PRAGMA data_version, read once per loop turn).
 */
enum { MAX_TABLES = 64, TABLE_NAME_MAX = 64 };
static struct {
    char name[TABLE_NAME_MAX];
    uint64_t version;
} tables[MAX_TABLES];
static size_t num_tables;
static uint64_t epoch;
static forum_stmt_t *compiling; /* the statement the authorizer reports for */
static int external_checked;
static int64_t external_version = -1;

static int table_index(const char *name)
{
    for (size_t i = 0; i != num_tables; ++i)
        if (strcmp(tables[i].name, name) == 0)
            return (int)i;
    if (num_tables == MAX_TABLES || strlen(name) >= TABLE_NAME_MAX)
        return -1;
    strcpy(tables[num_tables].name, name);
    return (int)num_tables++;
}

static int on_authorize(void *arg, int action, const char *table, const char *column, const char *schema, const char *trigger)
{
    forum_stmt_t *s = compiling;
    (void)arg, (void)column, (void)schema, (void)trigger;
    if (s == NULL || (action != SQLITE_INSERT && action != SQLITE_UPDATE && action != SQLITE_DELETE) || table == NULL ||
        strncmp(table, "sqlite_", 7) == 0)
        return SQLITE_OK;
    int t = table_index(table);
    if (t < 0) {
        s->writes_unknown = 1;
        return SQLITE_OK;
    }
    for (size_t i = 0; i != s->num_writes; ++i)
        if (s->writes[i] == t)
            return SQLITE_OK;
    if (s->num_writes == STMT_MAX_WRITES)
        s->writes_unknown = 1;
    else
        s->writes[s->num_writes++] = (uint8_t)t;
    return SQLITE_OK;
}

static void note_writes(const forum_stmt_t *s)
{
    if (s->writes_unknown)
        ++epoch;
    for (size_t i = 0; i != s->num_writes; ++i)
        ++tables[s->writes[i]].version;
}

uint64_t forum_db_version(const char *table)
{
    if (!external_checked) {
        forum_stmt_t *s = forum_db_stmt("PRAGMA data_version");
        external_checked = 1;
        if (s != NULL && forum_db_step(s) == FORUM_DB_ROW) {
            int64_t v = forum_db_col_int(s, 0);
            if (v != external_version && external_version != -1)
                ++epoch;
            external_version = v;
        }
        if (s != NULL)
            sqlite3_reset(s->st); /* no read transaction left open by asking */
    }
    int t = table_index(table);
    return epoch + (t < 0 ? 0 : tables[t].version);
}

static const char core_schema[] = "CREATE TABLE IF NOT EXISTS forum_migrations ("
                                  "  owner TEXT NOT NULL,"
                                  "  number INTEGER NOT NULL,"
                                  "  applied_at TEXT NOT NULL,"
                                  "  PRIMARY KEY (owner, number)"
                                  ") WITHOUT ROWID";

static const forum_migration_t core_migrations[] = {
    {1, "CREATE TABLE sessions ("
        "  token_hash BLOB PRIMARY KEY,"
        "  user_id INTEGER NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  expires_ms INTEGER NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE INDEX sessions_user ON sessions (user_id);"
        "CREATE INDEX sessions_expiry ON sessions (expires_ms);"},
};

/*
 * Callers pass string constants, so the text's address finds its statement without hashing the text;
 * the text is still compared, so a reused address can only cost a miss.
 */
enum { BY_ADDRESS_SLOTS = 512 };
static struct {
    const char *sql;
    forum_stmt_t *stmt;
} by_address[BY_ADDRESS_SLOTS];

static unsigned hash_sql(const char *s)
{
    unsigned h = 5381;
    for (; *s != '\0'; ++s)
        h = h * 33 + (unsigned char)*s;
    return h % NUM_BUCKETS;
}

void forum_db_reset_active(void)
{
    external_checked = 0; /* another connection's commits are looked for again */
    while (active != NULL) {
        forum_stmt_t *s = active;
        active = s->next_active;
        s->next_active = NULL;
        s->active = 0;
        sqlite3_reset(s->st);
    }
}

static void on_turn_end(uv_check_t *check)
{
    (void)check;
    forum_db_reset_active();
    if (db != NULL && !sqlite3_get_autocommit(db)) {
        /* a transaction must end within the callback that began it */
        forum_log(FORUM_LOG_ERROR, "database: a transaction was left open; rolled back");
        forum_db_exec("ROLLBACK");
    }
}

/* Runs SQL that changes no rows of its own (BEGIN, COMMIT). */
static int exec_quiet(const char *sql);

int forum_db_exec(const char *sql)
{
    ++epoch; /* what raw SQL writes is not known */
    return exec_quiet(sql);
}

static int exec_quiet(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        forum_log(FORUM_LOG_ERROR, "database: %s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

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

/* Opens the checkpointer's connection and moves checkpoints off the loop; without it SQLite's own stay. */
static void start_checkpointer(const char *path, uv_loop_t *loop)
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
    sqlite3_wal_autocheckpoint(db, 0);
    sqlite3_wal_hook(db, on_wal_commit, NULL);
}

int forum_db_open(const char *path, uv_loop_t *loop, char *err, size_t errlen)
{
    static const char pragmas[] = "PRAGMA journal_mode=WAL;"
                                  "PRAGMA synchronous=NORMAL;"
                                  "PRAGMA foreign_keys=ON;"
                                  "PRAGMA temp_store=MEMORY;";
    char *msg = NULL;

    /* no allocation statistics: they take a global mutex on every malloc (refused once SQLite is initialised) */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open the database: %s", path, db != NULL ? sqlite3_errmsg(db) : "out of memory");
        goto Error;
    }
    sqlite3_extended_result_codes(db, 0);
    sqlite3_set_authorizer(db, on_authorize, NULL);
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK || sqlite3_exec(db, core_schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto Error;
    }
    if (loop != NULL) {
        uv_check_init(loop, &turn_end);
        uv_check_start(&turn_end, on_turn_end);
        uv_unref((uv_handle_t *)&turn_end);
        have_turn_end = 1;
        start_checkpointer(path, loop);
    }
    if (forum_db_migrate("core", core_migrations, FORUM_ARRAY_SIZE(core_migrations)) != 0) {
        snprintf(err, errlen, "%s: the core's schema migration failed (see the log)", path);
        forum_db_close();
        return -1;
    }
    return 0;

Error:
    sqlite3_close(db);
    db = NULL;
    return -1;
}

void forum_db_close(void)
{
    if (ckpt.db != NULL) {
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
    if (have_turn_end) {
        uv_check_stop(&turn_end);
        uv_close((uv_handle_t *)&turn_end, NULL);
        have_turn_end = 0;
    }
    active = NULL;
    memset(by_address, 0, sizeof(by_address));
    for (size_t i = 0; i != NUM_BUCKETS; ++i) {
        while (buckets[i] != NULL) {
            forum_stmt_t *s = buckets[i];
            buckets[i] = s->next;
            sqlite3_finalize(s->st);
            free(s->sql);
            free(s);
        }
    }
    if (db != NULL) {
        sqlite3_close(db);
        db = NULL;
    }
}

forum_stmt_t *forum_db_stmt(const char *sql)
{
    size_t slot = ((uintptr_t)sql >> 3) % BY_ADDRESS_SLOTS;
    forum_stmt_t *s = by_address[slot].sql == sql ? by_address[slot].stmt : NULL;

    if (s == NULL || strcmp(s->sql, sql) != 0) {
        for (s = buckets[hash_sql(sql)]; s != NULL; s = s->next)
            if (strcmp(s->sql, sql) == 0)
                break;
        if (s != NULL) {
            by_address[slot].sql = sql;
            by_address[slot].stmt = s;
        }
    }
    if (s == NULL) {
        sqlite3_stmt *st;
        int rc;
        s = calloc(1, sizeof(*s));
        compiling = s;
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        compiling = NULL;
        if (rc != SQLITE_OK) {
            forum_log(FORUM_LOG_ERROR, "database: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(db));
            free(s);
            return NULL;
        }
        s->st = st;
        s->sql = strdup(sql);
        s->next = buckets[hash_sql(sql)];
        buckets[hash_sql(sql)] = s;
        by_address[slot].sql = sql;
        by_address[slot].stmt = s;
        return s;
    }
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    return s;
}

int forum_db_bind_int(forum_stmt_t *s, int idx, int64_t v)
{
    return sqlite3_bind_int64(s->st, idx, v) == SQLITE_OK ? 0 : -1;
}

int forum_db_bind_text(forum_stmt_t *s, int idx, const char *v, size_t len)
{
    return sqlite3_bind_text64(s->st, idx, v, len, SQLITE_TRANSIENT, SQLITE_UTF8) == SQLITE_OK ? 0 : -1;
}

int forum_db_bind_blob(forum_stmt_t *s, int idx, const void *v, size_t len)
{
    return sqlite3_bind_blob64(s->st, idx, v, len, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -1;
}

int forum_db_bind_null(forum_stmt_t *s, int idx)
{
    return sqlite3_bind_null(s->st, idx) == SQLITE_OK ? 0 : -1;
}

int forum_db_step(forum_stmt_t *s)
{
    if (!s->active) {
        s->active = 1;
        s->next_active = active;
        active = s;
    }
    /* a statement recompiled after a schema change is reported again, with any trigger added since */
    compiling = s;
    int rc = sqlite3_step(s->st);
    compiling = NULL;
    if (s->num_writes != 0 || s->writes_unknown)
        note_writes(s);
    switch (rc) {
    case SQLITE_ROW:
        return FORUM_DB_ROW;
    case SQLITE_DONE:
        return FORUM_DB_DONE;
    case SQLITE_CONSTRAINT:
        return FORUM_DB_CONSTRAINT;
    default:
        forum_log(FORUM_LOG_ERROR, "database: \"%s\": %s", s->sql, sqlite3_errmsg(db));
        return FORUM_DB_ERROR;
    }
}

int64_t forum_db_col_int(forum_stmt_t *s, int col)
{
    return sqlite3_column_int64(s->st, col);
}

const char *forum_db_col_text(forum_stmt_t *s, int col)
{
    return (const char *)sqlite3_column_text(s->st, col);
}

int forum_db_col_is_null(forum_stmt_t *s, int col)
{
    return sqlite3_column_type(s->st, col) == SQLITE_NULL;
}

static void col_json(sqlite3_stmt *st, int col, yajl_gen g)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        yajl_gen_integer(g, sqlite3_column_int64(st, col));
        break;
    case SQLITE_FLOAT:
        yajl_gen_double(g, sqlite3_column_double(st, col));
        break;
    case SQLITE_TEXT:
        yajl_gen_string(g, sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
        break;
    default:
        yajl_gen_null(g);
        break;
    }
}

/*
 * Column names become keys. Consecutive columns named "prefix.key" become one nested object under
 * "prefix", so that `SELECT u.id AS "author.id", u.nickname AS "author.nickname"` yields
 * "author": {"id": ..., "nickname": ...}.
 */
void forum_db_row_json(forum_stmt_t *s, yajl_gen g)
{
    int n = sqlite3_column_count(s->st);
    const char *open_prefix = NULL;
    size_t open_len = 0;

    yajl_gen_map_open(g);
    for (int i = 0; i != n; ++i) {
        const char *name = sqlite3_column_name(s->st, i), *dot = strchr(name, '.');
        if (open_prefix != NULL && (dot == NULL || (size_t)(dot - name) != open_len || memcmp(name, open_prefix, open_len) != 0)) {
            yajl_gen_map_close(g);
            open_prefix = NULL;
        }
        if (dot != NULL) {
            if (open_prefix == NULL) {
                open_prefix = name;
                open_len = (size_t)(dot - name);
                yajl_gen_string(g, (const unsigned char *)name, open_len);
                yajl_gen_map_open(g);
            }
            forum_json_str(g, dot + 1);
        } else {
            forum_json_str(g, name);
        }
        col_json(s->st, i, g);
    }
    if (open_prefix != NULL)
        yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

int64_t forum_db_rows_json(forum_stmt_t *s, yajl_gen g)
{
    int64_t n = 0;
    int ret;
    while ((ret = forum_db_step(s)) == FORUM_DB_ROW) {
        forum_db_row_json(s, g);
        ++n;
    }
    return ret == FORUM_DB_DONE ? n : -1;
}

int64_t forum_db_last_id(void)
{
    return sqlite3_last_insert_rowid(db);
}

int forum_db_changes(void)
{
    return sqlite3_changes(db);
}

/*
 * A statement left on a row keeps the connection's read transaction open past COMMIT, and then the
 * WAL can never restart: it grows with every commit (a gigabyte in seconds of chat traffic). So a
 * transaction starts and ends with no statement in use.
 */
int forum_db_begin(void)
{
    forum_db_reset_active();
    return exec_quiet("BEGIN IMMEDIATE");
}

int forum_db_commit(void)
{
    forum_db_reset_active();
    if (exec_quiet("COMMIT") != 0) {
        forum_db_rollback();
        return -1;
    }
    return 0;
}

void forum_db_rollback(void)
{
    if (!sqlite3_get_autocommit(db))
        forum_db_exec("ROLLBACK");
}

int forum_db_migrate(const char *owner, const forum_migration_t *migrations, size_t n)
{
    int64_t applied = 0;
    char when[32];
    forum_stmt_t *s;
    size_t i;

    if ((s = forum_db_stmt("SELECT COALESCE(MAX(number), 0) FROM forum_migrations WHERE owner = ?")) == NULL)
        return -1;
    forum_db_bind_text(s, 1, owner, strlen(owner));
    if (forum_db_step(s) != FORUM_DB_ROW)
        return -1;
    applied = forum_db_col_int(s, 0);
    sqlite3_reset(s->st);

    for (i = 0; i != n; ++i) {
        if (migrations[i].number != (int)i + 1) {
            forum_log(FORUM_LOG_ERROR, "%s: migrations must be numbered 1, 2, 3, ... (found %d at position %zu)", owner,
                      migrations[i].number, i + 1);
            return -1;
        }
    }
    for (i = 0; i != n; ++i) {
        if (migrations[i].number <= applied)
            continue;
        if (forum_db_begin() != 0)
            return -1;
        if (forum_db_exec(migrations[i].sql) != 0)
            goto Error;
        if ((s = forum_db_stmt("INSERT INTO forum_migrations (owner, number, applied_at) VALUES (?, ?, ?)")) == NULL)
            goto Error;
        forum_format_time(forum_now_ms(), when);
        forum_db_bind_text(s, 1, owner, strlen(owner));
        forum_db_bind_int(s, 2, migrations[i].number);
        forum_db_bind_text(s, 3, when, strlen(when));
        if (forum_db_step(s) != FORUM_DB_DONE)
            goto Error;
        sqlite3_reset(s->st);
        if (forum_db_commit() != 0)
            return -1;
        forum_log(FORUM_LOG_INFO, "%s: applied schema migration %d", owner, migrations[i].number);
    }
    return 0;

Error:
    forum_log(FORUM_LOG_ERROR, "%s: schema migration %d failed; nothing of it was kept", owner, migrations[i].number);
    forum_db_rollback();
    return -1;
}
