/*
 * seed into a PostgreSQL database: the rows of each table are written in COPY's text format into a buffer
 * of their own and sent with COPY FROM STDIN whenever the buffers grow large, parents before children (so
 * every foreign key finds its row), all in one transaction. A million rows take seconds, where one INSERT
 * per row would wait a round trip each.
 *
 * The ids are seed's own (COPY names them): past the largest id there is, and for messages past the core's
 * sequence "messages" too (room messages draw from it); at the end the identity sequences are set to the
 * largest id, and the sequence "messages" raised past it, so forumd goes on from there.
 *
 * Two things PostgreSQL does differently from SQLite here:
 *   - post_categories' counting trigger (one UPDATE of a categories row per row inserted) is switched off
 *     for the load, inside the transaction, and its work done in one UPDATE at the end: within one
 *     transaction no version of a row updated again and again can be pruned, so each UPDATE would walk every
 *     earlier version of its category's row, and a million posts would take hours;
 *   - conversations are copied into a temporary table and merged with the chat plugin's upsert, so a pair
 *     that has a conversation already gets its counts added, as on SQLite.
 * After the commit the tables are vacuumed and analyzed, as autovacuum would do a little later: the planner
 * knows their sizes, and the first readers do not pay for setting every row's hint bits.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "seed_db.h"

static PGconn *conn;

typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer_t;

static buffer_t bufs[SEED_TABLES];
static size_t buffered;
static int64_t inserted[SEED_TABLES];
static int64_t next_id[SEED_TABLES]; /* users, posts, messages */
static int64_t first_post;           /* the first post seeded (post_categories' counts are theirs) */
static char **constraints;           /* ALTER TABLE ... ADD CONSTRAINT of each foreign key dropped for the load */
static int num_constraints;

/* COPY's target of each table (the order of seed_table_t's values, with the id first where seed gives it) */
static const char *const copy_sql[SEED_TABLES] = {
    [SEED_USERS] = "COPY users (id, nickname, email, password_hash, first_name, last_name, age, gender, created_at) FROM STDIN",
    [SEED_POSTS] = "COPY posts (id, author_id, title, body, created_at) FROM STDIN",
    [SEED_POST_CATEGORIES] = "COPY post_categories (category_id, post_id) FROM STDIN",
    [SEED_MESSAGES] = "COPY messages (id, sender_id, recipient_id, body, client_id, created_at, lo_sent, hi_sent) FROM STDIN",
    [SEED_MESSAGE_INDEX] = "COPY message_index (user_id, message_id) FROM STDIN",
    [SEED_CONVERSATIONS] = "COPY seed_conversations (user_id, other_id, last_message_id, last_message_at, unread, received) FROM STDIN",
    [SEED_SESSIONS] = "COPY sessions (token_hash, user_id, created_ms, expires_ms) FROM STDIN",
};
static const int num_vals[SEED_TABLES] = {
    [SEED_USERS] = 8, [SEED_POSTS] = 4,         [SEED_POST_CATEGORIES] = 2, [SEED_MESSAGES] = 7,
    [SEED_MESSAGE_INDEX] = 2, [SEED_CONVERSATIONS] = 6, [SEED_SESSIONS] = 4,
};

/* the buffers are sent when together they hold this much */
#define FLUSH_BYTES (32u << 20)

static void die(const char *what)
{
    fprintf(stderr, "seed: %s: %s", what, conn != NULL ? PQerrorMessage(conn) : "no database\n");
    exit(1);
}

/* runs SQL that answers no rows (or whose rows do not matter) */
static void exec(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "seed: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

static PGresult *query(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "seed: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    return r;
}

static void pg_open(const char *conninfo)
{
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        die("cannot connect");
    /* UTF-8 as forumd's text is; the merge of conversations and the foreign keys' checks may sort */
    exec("SET client_encoding = 'UTF8'; SET client_min_messages = warning; SET work_mem = '64MB'");
}

static int pg_query_ints(const char *sql, int64_t *out, int max)
{
    PGresult *r = query(sql);
    int n = PQntuples(r) < max ? PQntuples(r) : max;
    for (int i = 0; i != n; ++i)
        out[i] = PQgetisnull(r, i, 0) ? 0 : strtoll(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    return n;
}

static int pg_has_schema(void)
{
    int64_t n = 0;
    pg_query_ints("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() "
                  "AND tablename IN ('users', 'posts', 'messages', 'sessions')",
                  &n, 1);
    return n == 4;
}

static char *pg_query_text(const char *sql)
{
    PGresult *r = query(sql);
    char *v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static int64_t query_int(const char *sql)
{
    int64_t v = 0;
    pg_query_ints(sql, &v, 1);
    return v;
}

static void pg_begin(void)
{
    exec("BEGIN");
    /* taken inside the transaction, so no writer of another session takes the same ids meanwhile */
    exec("LOCK TABLE users, posts, messages IN SHARE ROW EXCLUSIVE MODE");
    next_id[SEED_USERS] = query_int("SELECT COALESCE(MAX(id), 0) + 1 FROM users");
    next_id[SEED_POSTS] = first_post = query_int("SELECT COALESCE(MAX(id), 0) + 1 FROM posts");
    next_id[SEED_MESSAGES] = query_int("SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM messages), "
                                       "(SELECT COALESCE(MAX(value), 0) FROM forum_sequences WHERE name = 'messages')) + 1");
}

static const char *const table_names[SEED_TABLES] = {
    [SEED_USERS] = "users", [SEED_POSTS] = "posts", [SEED_POST_CATEGORIES] = "post_categories", [SEED_MESSAGES] = "messages",
    [SEED_MESSAGE_INDEX] = "message_index", [SEED_CONVERSATIONS] = "conversations", [SEED_SESSIONS] = "sessions",
};

/*
 * Drops the foreign keys of a table about to be filled, and keeps what puts them back at the end. Checked
 * row by row, they would cost a lookup in the referenced table's index per row and per key (most of a
 * million rows' load time); added back, each is checked once, by one join over the whole table. Both
 * happen inside the transaction: no other session ever sees the table without them.
 */
static void drop_foreign_keys(const char *table)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT format('ALTER TABLE %%I DROP CONSTRAINT %%I', c.conrelid::regclass::text, c.conname), "
             "format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)) "
             "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = to_regclass('%s') ORDER BY c.conname",
             table);
    PGresult *r = query(sql);
    for (int i = 0; i != PQntuples(r); ++i) {
        exec(PQgetvalue(r, i, 0));
        if ((constraints = realloc(constraints, sizeof(*constraints) * (size_t)(num_constraints + 1))) == NULL ||
            (constraints[num_constraints++] = strdup(PQgetvalue(r, i, 1))) == NULL) {
            fprintf(stderr, "seed: out of memory\n");
            exit(1);
        }
    }
    PQclear(r);
}

static void reserve(buffer_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap != 0 ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    if ((b->data = realloc(b->data, cap)) == NULL) {
        fprintf(stderr, "seed: out of memory\n");
        exit(1);
    }
    b->cap = cap;
}

static void put_int(buffer_t *b, int64_t v)
{
    reserve(b, 24);
    b->len += (size_t)sprintf(b->data + b->len, "%lld", (long long)v);
}

/* text in COPY's text format: a backslash, and the characters that end a value or a row, escaped */
static void put_text(buffer_t *b, const char *s)
{
    size_t n = strlen(s);
    reserve(b, 2 * n);
    for (size_t i = 0; i != n; ++i) {
        char c = s[i], esc = c == '\\' ? '\\' : c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : 0;
        if (esc != 0) {
            b->data[b->len++] = '\\';
            b->data[b->len++] = esc;
        } else {
            b->data[b->len++] = c;
        }
    }
}

/* bytea as \x and hex digits; COPY's own escaping doubles the backslash */
static void put_bytes(buffer_t *b, const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    reserve(b, 3 + 2 * n);
    b->data[b->len++] = '\\';
    b->data[b->len++] = '\\';
    b->data[b->len++] = 'x';
    for (size_t i = 0; i != n; ++i) {
        b->data[b->len++] = digits[(unsigned char)p[i] >> 4];
        b->data[b->len++] = digits[(unsigned char)p[i] & 15];
    }
}

static void copy_table(seed_table_t t)
{
    buffer_t *b = &bufs[t];
    if (b->len == 0)
        return;
    PGresult *r = PQexec(conn, copy_sql[t]);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "seed: %s: %s", copy_sql[t], PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
    /* in pieces: libpq copies what it is given into its own output buffer */
    for (size_t off = 0; off < b->len;) {
        size_t n = b->len - off < (1u << 20) ? b->len - off : (1u << 20);
        if (PQputCopyData(conn, b->data + off, (int)n) != 1)
            die(copy_sql[t]);
        off += n;
    }
    if (PQputCopyEnd(conn, NULL) != 1)
        die(copy_sql[t]);
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "seed: %s: %s", copy_sql[t], PQresultErrorMessage(r));
            exit(1);
        }
        PQclear(r);
    }
    buffered -= b->len;
    b->len = 0;
}

/* every buffer, in seed_table_t's order: a row's parents are in a table before its own */
static void flush(void)
{
    for (int t = 0; t != SEED_TABLES; ++t)
        copy_table((seed_table_t)t);
}

static int64_t pg_insert(seed_table_t table, const seed_val_t *vals)
{
    buffer_t *b = &bufs[table];
    size_t before = b->len;
    int64_t id = 0;
    if (inserted[table] == 0) {
        if (table != SEED_CONVERSATIONS)
            drop_foreign_keys(table_names[table]);
        if (table == SEED_POST_CATEGORIES)
            exec("ALTER TABLE post_categories DISABLE TRIGGER USER");
        else if (table == SEED_CONVERSATIONS)
            exec("CREATE TEMPORARY TABLE seed_conversations (LIKE conversations INCLUDING DEFAULTS) ON COMMIT DROP");
    }
    if (table == SEED_USERS || table == SEED_POSTS || table == SEED_MESSAGES) {
        id = next_id[table]++;
        put_int(b, id);
        reserve(b, 1);
        b->data[b->len++] = '\t';
    }
    for (int i = 0; i != num_vals[table]; ++i) {
        const seed_val_t *v = &vals[i];
        if (v->kind == SEED_INT)
            put_int(b, v->i);
        else if (v->kind == SEED_TEXT)
            put_text(b, v->p);
        else
            put_bytes(b, v->p, v->len);
        reserve(b, 1);
        b->data[b->len++] = i + 1 == num_vals[table] ? '\n' : '\t';
    }
    buffered += b->len - before;
    ++inserted[table];
    if (buffered >= FLUSH_BYTES)
        flush();
    return id;
}

static void pg_commit(void)
{
    char sql[512];
    flush();
    if (inserted[SEED_USERS] != 0)
        exec("SELECT setval(pg_get_serial_sequence('users', 'id'), MAX(id)) FROM users");
    if (inserted[SEED_POSTS] != 0)
        exec("SELECT setval(pg_get_serial_sequence('posts', 'id'), MAX(id)) FROM posts");
    if (inserted[SEED_POST_CATEGORIES] != 0) {
        /* what the counting trigger would have done, row by row */
        snprintf(sql, sizeof(sql),
                 "UPDATE categories c SET post_count = c.post_count + n.count FROM (SELECT category_id, COUNT(*) AS count "
                 "FROM post_categories WHERE post_id >= %lld GROUP BY category_id) n WHERE c.id = n.category_id",
                 (long long)first_post);
        exec(sql);
        exec("ALTER TABLE post_categories ENABLE TRIGGER USER");
    }
    if (inserted[SEED_CONVERSATIONS] != 0)
        exec("INSERT INTO conversations (user_id, other_id, last_message_id, last_message_at, unread, received) "
             "SELECT user_id, other_id, last_message_id, last_message_at, unread, received FROM seed_conversations "
             "ON CONFLICT (user_id, other_id) DO UPDATE SET last_message_id = excluded.last_message_id, "
             "last_message_at = excluded.last_message_at, unread = conversations.unread + excluded.unread, "
             "received = conversations.received + excluded.received");
    /* the core's one sequence of message ids (private and room messages) goes on past the seeded ones */
    if (inserted[SEED_MESSAGES] != 0)
        exec("INSERT INTO forum_sequences (name, value) SELECT 'messages', COALESCE(MAX(id), 0) FROM messages "
             "ON CONFLICT (name) DO UPDATE SET value = GREATEST(forum_sequences.value, excluded.value)");
    for (int i = 0; i != num_constraints; ++i) {
        exec(constraints[i]);
        free(constraints[i]);
    }
    free(constraints);
    constraints = NULL;
    num_constraints = 0;
    exec("COMMIT");

    size_t n = (size_t)snprintf(sql, sizeof(sql), "VACUUM (ANALYZE)");
    int any = 0;
    for (int t = 0; t != SEED_TABLES; ++t) {
        if (inserted[t] == 0)
            continue;
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s %s", any ? "," : "", table_names[t]);
        any = 1;
    }
    if (any)
        exec(sql);
}

static void pg_close(void)
{
    PQfinish(conn);
    conn = NULL;
    for (int t = 0; t != SEED_TABLES; ++t)
        free(bufs[t].data);
}

const seed_db_t seed_pg = {
    .name = "postgres",
    .open = pg_open,
    .has_schema = pg_has_schema,
    .query_ints = pg_query_ints,
    .query_text = pg_query_text,
    .begin = pg_begin,
    .insert = pg_insert,
    .commit = pg_commit,
    .close = pg_close,
};
