/*
 * seed's two databases behind one face: tools/seed.c makes the rows, a backend stores them.
 *   tools/seed_sqlite.c  a SQLite file, through prepared statements in one transaction
 *   tools/seed_pg.c      a PostgreSQL database, through COPY FROM STDIN in one transaction
 * Every function prints what went wrong and exits on an error: seed has nothing to undo (the
 * transaction is left uncommitted).
 */
#ifndef SEED_DB_H
#define SEED_DB_H

#include <stddef.h>
#include <stdint.h>

/* the tables seed fills; the values of a row come in the order of the comment */
typedef enum seed_table {
    SEED_USERS,           /* nickname, email, password_hash, first_name, last_name, age, gender, created_at */
    SEED_POSTS,           /* author_id, title, body, created_at */
    SEED_POST_CATEGORIES, /* category_id, post_id */
    SEED_MESSAGES,        /* sender_id, recipient_id, body, client_id, created_at, lo_sent, hi_sent */
    SEED_MESSAGE_INDEX,   /* user_id, message_id */
    SEED_CONVERSATIONS,   /* user_id, other_id, last_message_id, last_message_at, unread, received (added to a row there is) */
    SEED_SESSIONS,        /* token_hash (bytes), user_id, created_ms, expires_ms */
    SEED_TABLES
} seed_table_t;

typedef enum seed_kind { SEED_INT, SEED_TEXT, SEED_BYTES } seed_kind_t;

typedef struct seed_val {
    seed_kind_t kind;
    int64_t i;       /* SEED_INT */
    const char *p;   /* SEED_TEXT (NUL-terminated) and SEED_BYTES */
    size_t len;      /* SEED_BYTES */
} seed_val_t;

#define SEED_I(v) ((seed_val_t){.kind = SEED_INT, .i = (v)})
#define SEED_T(s) ((seed_val_t){.kind = SEED_TEXT, .p = (s)})
#define SEED_B(b, n) ((seed_val_t){.kind = SEED_BYTES, .p = (const char *)(b), .len = (n)})

typedef struct seed_db {
    const char *name;
    /* connects (a path, or a libpq conninfo) and tunes the session for a bulk load */
    void (*open)(const char *target);
    /* 1 when forumd has made its schema there (users, posts, messages, sessions) */
    int (*has_schema)(void);
    /* up to `max` integers of the first column of a portable query's rows (NULL as 0); how many */
    int (*query_ints)(const char *sql, int64_t *out, int max);
    /* the first column of the first row as a new string, or NULL */
    char *(*query_text)(const char *sql);
    void (*begin)(void);
    /* stores a row (see seed_table_t); the new row's id for users, posts and messages, else 0 */
    int64_t (*insert)(seed_table_t table, const seed_val_t *vals);
    /* what forumd keeps beside the rows (its id sequences past the new ids), then COMMIT */
    void (*commit)(void);
    void (*close)(void);
} seed_db_t;

extern const seed_db_t seed_sqlite;
extern const seed_db_t seed_pg;

#endif
