/*
 * seed into a SQLite file: one prepared INSERT per table, every row in one transaction.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "seed_db.h"

static sqlite3 *db;
static sqlite3_stmt *stmts[SEED_TABLES];
static int64_t inserted[SEED_TABLES];
static int left_wal;

/* the SQL of each table's insert; conversations take the upsert the chat plugin runs per message */
static const char *const insert_sql[SEED_TABLES] = {
    [SEED_USERS] = "INSERT INTO users (nickname, email, password_hash, first_name, last_name, age, gender, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [SEED_POSTS] = "INSERT INTO posts (author_id, title, body, created_at) VALUES (?, ?, ?, ?)",
    /* through post_categories, so that its trigger keeps categories.post_count */
    [SEED_POST_CATEGORIES] = "INSERT INTO post_categories (category_id, post_id) VALUES (?, ?)",
    [SEED_MESSAGES] = "INSERT INTO messages (sender_id, recipient_id, body, client_id, created_at, lo_sent, hi_sent) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
    [SEED_MESSAGE_INDEX] = "INSERT INTO message_index (user_id, message_id) VALUES (?, ?)",
    [SEED_CONVERSATIONS] = "INSERT INTO conversations (user_id, other_id, last_message_id, last_message_at, unread, received) "
                           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, other_id) DO UPDATE SET "
                           "last_message_id = excluded.last_message_id, last_message_at = excluded.last_message_at, "
                           "unread = unread + excluded.unread, received = received + excluded.received",
    [SEED_SESSIONS] = "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
};

static void die(const char *what)
{
    fprintf(stderr, "seed: %s: %s\n", what, db != NULL ? sqlite3_errmsg(db) : "no database");
    exit(1);
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql);
    return st;
}

static void exec(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "seed: %s: %s\n", sql, msg != NULL ? msg : "?");
        exit(1);
    }
}

static void sq_open(const char *path)
{
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        die(path);
    sqlite3_busy_timeout(db, 5000);
    /* a bulk load needs no crash safety: no WAL (every page would be written twice, to the WAL and back), no
     * syncing, pages kept in memory; the database goes back to WAL, forumd's mode, at the end. Leaving WAL
     * needs the only connection: while forumd has the database open, the load goes through the WAL. */
    left_wal = sqlite3_exec(db, "PRAGMA journal_mode=MEMORY", NULL, NULL, NULL) == SQLITE_OK;
    if (!left_wal)
        fprintf(stderr, "seed: the database is in use (is forumd running?): loading through the WAL, more slowly\n");
    exec("PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY");
}

static int sq_query_ints(const char *sql, int64_t *out, int max)
{
    sqlite3_stmt *st = prepare(sql);
    int n = 0, rc;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        out[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int sq_has_schema(void)
{
    int64_t n = 0;
    sq_query_ints("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('users', 'posts', 'messages', 'sessions')", &n, 1);
    return n == 4;
}

static char *sq_query_text(const char *sql)
{
    sqlite3_stmt *st = prepare(sql);
    char *v = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

static void sq_begin(void)
{
    exec("BEGIN");
}

static int64_t sq_insert(seed_table_t table, const seed_val_t *vals)
{
    if (stmts[table] == NULL)
        stmts[table] = prepare(insert_sql[table]);
    sqlite3_stmt *st = stmts[table];
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 0; i != n; ++i) {
        const seed_val_t *v = &vals[i];
        if (v->kind == SEED_INT)
            sqlite3_bind_int64(st, i + 1, v->i);
        else if (v->kind == SEED_TEXT)
            sqlite3_bind_text(st, i + 1, v->p, -1, SQLITE_STATIC);
        else
            sqlite3_bind_blob(st, i + 1, v->p, (int)v->len, SQLITE_STATIC);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        die(insert_sql[table]);
    sqlite3_reset(st);
    ++inserted[table];
    return table == SEED_USERS || table == SEED_POSTS || table == SEED_MESSAGES ? sqlite3_last_insert_rowid(db) : 0;
}

static void sq_commit(void)
{
    /* the core's one sequence of message ids (private and room messages) goes on past the seeded ones */
    if (inserted[SEED_MESSAGES] != 0)
        exec("INSERT INTO forum_sequences (name, value) SELECT 'messages', COALESCE(MAX(id), 0) FROM messages WHERE true "
             "ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)");
    for (int t = 0; t != SEED_TABLES; ++t) {
        sqlite3_finalize(stmts[t]);
        stmts[t] = NULL;
    }
    exec("COMMIT");
    if (left_wal)
        exec("PRAGMA journal_mode=WAL");
}

static void sq_close(void)
{
    sqlite3_close(db);
    db = NULL;
}

const seed_db_t seed_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .has_schema = sq_has_schema,
    .query_ints = sq_query_ints,
    .query_text = sq_query_text,
    .begin = sq_begin,
    .insert = sq_insert,
    .commit = sq_commit,
    .close = sq_close,
};
