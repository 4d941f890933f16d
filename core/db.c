/*
 * The data access layer: one SQLite connection used only on the loop thread. Statements are
 * prepared once and cached by their text; none is ever built from user input. Table versions are in
 * core/db_version.c, migrations in core/db_migrate.c, the checkpointer thread in core/db_checkpoint.c.
 *
 * The loop never waits on a lock: once the server serves, the connection has no busy timeout, and a
 * write that meets another process's lock fails at once as FORUM_DB_BUSY (the caller answers 503 or
 * retries later). A write never runs under an old read snapshot: before a statement that writes runs
 * outside a transaction, every other statement in use is reset, so that no read transaction is left
 * open under it (SQLITE_BUSY_SNAPSHOT once another connection has committed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_private.h"

enum { NUM_BUCKETS = 256 };

static sqlite3 *db;
static forum_stmt_t *buckets[NUM_BUCKETS];
static forum_stmt_t *active;
static uv_check_t turn_end;
static int have_turn_end;
static int last_failure = FORUM_DB_ERROR;
static int lock_reported;

/* What a failed call's result code means to a caller: a lock, a full disk, or anything else. */
static int failure_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FORUM_DB_BUSY;
    case SQLITE_FULL:
        return FORUM_DB_FULL;
    default:
        return FORUM_DB_ERROR;
    }
}

/*
 * Records a failure. A lock or a full disk is the operator's business, not a bug: a warning, and a lock
 * only once until a write gets through again (a lock held for a minute is not thousands of lines).
 */
static int fail(int rc, const char *what)
{
    last_failure = failure_of(rc);
    if (last_failure == FORUM_DB_BUSY) {
        if (!lock_reported)
            forum_log(FORUM_LOG_WARN, "database: locked by another connection (%.120s); writes fail at once until it is free", what);
        lock_reported = 1;
    } else {
        forum_log(last_failure == FORUM_DB_ERROR ? FORUM_LOG_ERROR : FORUM_LOG_WARN, "database: %.120s: %s", what, sqlite3_errmsg(db));
    }
    return last_failure;
}

/* A write got through: a lock reported before is gone. */
static void wrote(void)
{
    if (lock_reported) {
        forum_log(FORUM_LOG_INFO, "database: the lock is free again");
        lock_reported = 0;
    }
}

int forum_db_failure(void)
{
    if (forum_pg_on())
        return forum_pg_failure();
    return last_failure;
}

void forum_db_fail_other(void)
{
    if (forum_pg_on())
        forum_pg_fail_other();
    last_failure = FORUM_DB_ERROR;
}

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

/* Resets every statement in use but `keep`: their read transaction ends (outside a transaction). */
static void reset_others(forum_stmt_t *keep)
{
    forum_stmt_t **p = &active;
    while (*p != NULL) {
        forum_stmt_t *s = *p;
        if (s == keep) {
            p = &s->next_active;
            continue;
        }
        *p = s->next_active;
        s->next_active = NULL;
        s->active = 0;
        sqlite3_reset(s->st);
    }
}

/* A column text that was not UTF-8, repaired for output (see forum_db_col_text). */
struct db_repaired {
    struct db_repaired *next;
    char text[];
};

static void release_repaired(forum_stmt_t *s)
{
    while (s->repaired != NULL) {
        struct db_repaired *r = s->repaired;
        s->repaired = r->next;
        free(r);
    }
}

static void log_repaired(const forum_stmt_t *s)
{
    forum_log(FORUM_LOG_WARN, "database: a text of \"%s\" is not UTF-8: read with U+FFFD in place of the bad bytes", s->sql);
}

void forum_db_reset_active(void)
{
    if (forum_pg_on())
        return; /* a PostgreSQL statement holds no snapshot open between calls: its answer came whole */
    forum_db__recheck_external();
    while (active != NULL) {
        forum_stmt_t *s = active;
        active = s->next_active;
        s->next_active = NULL;
        s->active = 0;
        sqlite3_reset(s->st);
        release_repaired(s);
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
    if (forum_pg_on())
        return forum_pg_exec(sql);
    forum_db__move_all(); /* what raw SQL writes is not known */
    return exec_quiet(sql);
}

static int exec_quiet(const char *sql)
{
    int rc;
    /* raw SQL may write: no statement of ours may hold an old snapshot under it */
    if (sqlite3_get_autocommit(db))
        forum_db_reset_active();
    if ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
        fail(rc, sql);
        return -1;
    }
    return 0;
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
    sqlite3_set_authorizer(db, forum_db__authorize, NULL);
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK || sqlite3_exec(db, forum_db__core_schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto Error;
    }
    if (loop != NULL) {
        uv_check_init(loop, &turn_end);
        uv_check_start(&turn_end, on_turn_end);
        uv_unref((uv_handle_t *)&turn_end);
        have_turn_end = 1;
        forum_db__checkpoint_start(db, path, loop);
    }
    if (forum_db__migrate_core() != 0) {
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

int forum_db_open_conf(const forum_config_t *conf, uv_loop_t *loop, char *err, size_t errlen)
{
    if (conf->pg_conninfo == NULL)
        return forum_db_open(conf->database, loop, err, errlen);
    if (forum_pg_open(conf, loop, err, errlen) != 0)
        return -1;
    if (forum_db__migrate_core() != 0) {
        snprintf(err, errlen, "the core's schema migration on PostgreSQL failed (see the log)");
        forum_pg_close();
        return -1;
    }
    return 0;
}

void forum_db_serving(void)
{
    if (forum_pg_on()) {
        forum_pg_serving();
        return;
    }
    sqlite3_busy_timeout(db, 0);
}

void forum_db_serving_end(void)
{
    if (forum_pg_on())
        forum_pg_serving_end();
}

void forum_db_close(void)
{
    if (forum_pg_on()) {
        forum_pg_close();
        return;
    }
    forum_db__checkpoint_stop();
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
            release_repaired(s);
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
    if (forum_pg_on())
        return forum_pg_stmt(sql);
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
        forum_db__compiling = s;
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        forum_db__compiling = NULL;
        if (rc != SQLITE_OK) {
            last_failure = failure_of(rc);
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
    release_repaired(s);
    return s;
}

int forum_db_bind_int(forum_stmt_t *s, int idx, int64_t v)
{
    if (forum_pg_on())
        return forum_pg_bind_int(s, idx, v);
    if (s == NULL)
        return -1; /* a statement that did not compile (logged): the step that follows fails too */
    return sqlite3_bind_int64(s->st, idx, v) == SQLITE_OK ? 0 : -1;
}

int forum_db_bind_text(forum_stmt_t *s, int idx, const char *v, size_t len)
{
    if (forum_pg_on())
        return forum_pg_bind_text(s, idx, v, len);
    if (s == NULL)
        return -1;
    /* the input gate's last door: whatever a plugin computed, no text that is not UTF-8 is ever stored */
    if (!forum_utf8_valid(v, len)) {
        forum_log(FORUM_LOG_ERROR, "database: \"%s\": parameter %d is not UTF-8 text; bound as NULL", s->sql, idx);
        sqlite3_bind_null(s->st, idx);
        return -1;
    }
    return sqlite3_bind_text64(s->st, idx, v, len, SQLITE_TRANSIENT, SQLITE_UTF8) == SQLITE_OK ? 0 : -1;
}

int forum_db_bind_blob(forum_stmt_t *s, int idx, const void *v, size_t len)
{
    if (forum_pg_on())
        return forum_pg_bind_blob(s, idx, v, len);
    if (s == NULL)
        return -1;
    return sqlite3_bind_blob64(s->st, idx, v, len, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -1;
}

int forum_db_bind_null(forum_stmt_t *s, int idx)
{
    if (forum_pg_on())
        return forum_pg_bind_null(s, idx);
    if (s == NULL)
        return -1;
    return sqlite3_bind_null(s->st, idx) == SQLITE_OK ? 0 : -1;
}

int forum_db_step(forum_stmt_t *s)
{
    if (forum_pg_on())
        return forum_pg_step(s);
    int rc, retried = 0;
    if (s == NULL)
        return FORUM_DB_ERROR; /* db_stmt logged why it did not compile */
    if (!s->active) {
        s->active = 1;
        s->next_active = active;
        active = s;
    }
    /* a write outside a transaction starts one of its own: no read of ours may keep an older snapshot open */
    if (!sqlite3_stmt_busy(s->st) && !sqlite3_stmt_readonly(s->st) && sqlite3_get_autocommit(db))
        reset_others(s);
    release_repaired(s);
    for (;;) {
        /* a statement recompiled after a schema change is reported again, with any trigger added since */
        forum_db__compiling = s;
        rc = sqlite3_step(s->st);
        forum_db__compiling = NULL;
        /* another connection committed between our read and our write: once more, from a fresh snapshot */
        if (rc != SQLITE_BUSY || sqlite3_extended_errcode(db) != SQLITE_BUSY_SNAPSHOT || retried || !sqlite3_get_autocommit(db))
            break;
        retried = 1;
        sqlite3_reset(s->st);
        reset_others(s);
    }
    if (s->num_writes != 0 || s->writes_unknown)
        forum_db__note_writes(s);
    switch (rc) {
    case SQLITE_ROW:
        return FORUM_DB_ROW;
    case SQLITE_DONE:
        if (lock_reported && !sqlite3_stmt_readonly(s->st))
            wrote();
        return FORUM_DB_DONE;
    case SQLITE_CONSTRAINT:
        last_failure = FORUM_DB_ERROR; /* not a lock that passes: whoever asks db_failure next must not retry it */
        return FORUM_DB_CONSTRAINT;
    default:
        return fail(rc, s->sql);
    }
}

int64_t forum_db_col_int(forum_stmt_t *s, int col)
{
    if (forum_pg_on())
        return forum_pg_col_int(s, col);
    return sqlite3_column_int64(s->st, col);
}

/*
 * The output half of the input gate: a text stored before the gate (or by another program) may not be
 * UTF-8; it is read with U+FFFD in place of each offending byte, so that no response or frame carries it.
 */
const char *forum_db_col_text(forum_stmt_t *s, int col)
{
    if (forum_pg_on())
        return forum_pg_col_text(s, col);
    const char *text = (const char *)sqlite3_column_text(s->st, col);
    size_t len;
    if (text == NULL)
        return NULL;
    char *fixed = forum_utf8_repair(text, (size_t)sqlite3_column_bytes(s->st, col), &len);
    if (fixed == NULL)
        return text;
    log_repaired(s);
    struct db_repaired *r = malloc(sizeof(*r) + len + 1);
    memcpy(r->text, fixed, len + 1);
    free(fixed);
    r->next = s->repaired;
    s->repaired = r;
    return r->text;
}

int forum_db_col_is_null(forum_stmt_t *s, int col)
{
    if (forum_pg_on())
        return forum_pg_col_is_null(s, col);
    return sqlite3_column_type(s->st, col) == SQLITE_NULL;
}

static void col_json(forum_stmt_t *s, int col, yajl_gen g)
{
    sqlite3_stmt *st = s->st;
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        yajl_gen_integer(g, sqlite3_column_int64(st, col));
        break;
    case SQLITE_FLOAT:
        yajl_gen_double(g, sqlite3_column_double(st, col));
        break;
    case SQLITE_TEXT: {
        const unsigned char *text = sqlite3_column_text(st, col);
        size_t len = (size_t)sqlite3_column_bytes(st, col);
        char *fixed = forum_utf8_repair((const char *)text, len, &len);
        if (fixed != NULL) {
            log_repaired(s);
            text = (const unsigned char *)fixed;
        }
        yajl_gen_string(g, text, len);
        free(fixed);
        break;
    }
    default:
        yajl_gen_null(g);
        break;
    }
}

/*
 * Column names become keys. Consecutive columns named "prefix.key" become one nested object under
 * "prefix", so that `SELECT u.id AS "author.id", u.nickname AS "author.nickname"` yields
 * "author": {"id": ..., "nickname": ...}. Both backends write their rows' keys through here.
 */
void forum_db__row_key(yajl_gen g, const char *name, forum_db_row_nest_t *nest)
{
    const char *dot = strchr(name, '.');
    if (nest->prefix != NULL && (dot == NULL || (size_t)(dot - name) != nest->len || memcmp(name, nest->prefix, nest->len) != 0)) {
        yajl_gen_map_close(g);
        nest->prefix = NULL;
    }
    if (dot == NULL) {
        forum_json_str(g, name);
        return;
    }
    if (nest->prefix == NULL) {
        nest->prefix = name;
        nest->len = (size_t)(dot - name);
        yajl_gen_string(g, (const unsigned char *)name, nest->len);
        yajl_gen_map_open(g);
    }
    forum_json_str(g, dot + 1);
}

void forum_db__row_end(yajl_gen g, forum_db_row_nest_t *nest)
{
    if (nest->prefix != NULL)
        yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

void forum_db_row_json(forum_stmt_t *s, yajl_gen g)
{
    if (forum_pg_on()) {
        forum_pg_row_json(s, g);
        return;
    }
    int n = sqlite3_column_count(s->st);
    forum_db_row_nest_t nest = {NULL, 0};

    yajl_gen_map_open(g);
    for (int i = 0; i != n; ++i) {
        forum_db__row_key(g, sqlite3_column_name(s->st, i), &nest);
        col_json(s, i, g);
    }
    forum_db__row_end(g, &nest);
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
    if (forum_pg_on())
        return forum_pg_last_id();
    return sqlite3_last_insert_rowid(db);
}

int forum_db_changes(void)
{
    if (forum_pg_on())
        return forum_pg_changes();
    return sqlite3_changes(db);
}

/*
 * A statement left on a row keeps the connection's read transaction open past COMMIT, and then the
 * WAL can never restart: it grows with every commit (a gigabyte in seconds of chat traffic). So a
 * transaction starts and ends with no statement in use.
 */
int forum_db_begin(void)
{
    if (forum_pg_on())
        return forum_pg_begin();
    forum_db_reset_active();
    if (exec_quiet("BEGIN IMMEDIATE") != 0)
        return -1;
    wrote(); /* the write lock is ours */
    return 0;
}

int forum_db_commit(void)
{
    if (forum_pg_on()) {
        int rc = forum_pg_commit();
        forum_order_tx_end(rc == 0); /* the numbers it drew are announced, or given back */
        return rc;
    }
    forum_db_reset_active();
    if (exec_quiet("COMMIT") != 0) {
        forum_db_rollback();
        return -1;
    }
    return 0;
}

void forum_db_rollback(void)
{
    if (forum_pg_on()) {
        forum_pg_rollback();
        forum_order_tx_end(0);
        return;
    }
    if (!sqlite3_get_autocommit(db))
        forum_db_exec("ROLLBACK");
}

int forum_db_backend(void)
{
    return forum_pg_on() ? FORUM_DB_POSTGRES : FORUM_DB_SQLITE;
}

void forum_db_status(yajl_gen g)
{
    if (forum_pg_on()) {
        forum_pg_status(g);
        return;
    }
    forum_json_str(g, "backend");
    forum_json_str(g, "sqlite");
    forum_json_str(g, "state");
    forum_json_str(g, db == NULL ? "closed" : lock_reported ? "locked" : "ok");
}

int forum_db_wait(const void *key)
{
    if (forum_fiber_self() == NULL)
        return -1; /* SQLite, or the loop's own stack: nothing suspends */
    if (forum_pg_on())
        forum_pg_release(); /* a waiting callback must not keep a connection others need to wake it */
    return forum_fiber_wait(key);
}

int forum_db_queue(forum_stmt_t *s)
{
    if (forum_pg_on())
        return forum_pg_queue(s);
    int rc = forum_db_step(s); /* SQLite: nothing is sent anywhere, so nothing waits */
    return rc == FORUM_DB_DONE || rc == FORUM_DB_ROW ? 0 : -1;
}
