/*
 * What the files of the data access layer share (core/db*.c); nothing outside core/db*.c includes it.
 * The connection and the statement cache live in core/db.c; table versions and the authorizer that
 * learns a statement's writes in core/db_version.c; migrations in core/db_migrate.c; the checkpointer
 * thread in core/db_checkpoint.c.
 */
#ifndef FORUM_DB_PRIVATE_H
#define FORUM_DB_PRIVATE_H

#include <sqlite3.h>
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
    /* texts of the current row that were not UTF-8, handed out repaired; freed when the row goes (step, reset) */
    struct db_repaired *repaired;
};

/* core/db_version.c */

/** The statement the authorizer reports writes for, set while it compiles or steps. */
extern forum_stmt_t *forum_db__compiling;
/** The authorizer (sqlite3_set_authorizer): records the tables a compiling statement writes. */
int forum_db__authorize(void *arg, int action, const char *table, const char *column, const char *schema, const char *trigger);
/** Moves the versions of the tables `s` writes. */
void forum_db__note_writes(const forum_stmt_t *s);
/** Moves every version at once (raw SQL, a rollback). */
void forum_db__move_all(void);
/** Another connection's commits are looked for again at the next forum_db_version (a new loop turn). */
void forum_db__recheck_external(void);

/* core/db_migrate.c */

/** The core's bookkeeping table of applied migrations, created at every open. */
extern const char forum_db__core_schema[];
/** Applies the core's own migrations (sessions). */
int forum_db__migrate_core(void);

/* core/db_checkpoint.c */

/** Opens the checkpointer's connection and moves the checkpoints of `conn` (the loop's) off the loop; without it SQLite's own stay. */
void forum_db__checkpoint_start(sqlite3 *conn, const char *path, uv_loop_t *loop);
/** Joins the checkpointer thread (a checkpoint under way ends first) and closes its connection. */
void forum_db__checkpoint_stop(void);

/* core/pg.c: the PostgreSQL backend, behind the same forum_db_* calls (core/db.c dispatches to it) */

int forum_pg_on(void);
/** Whether the running fiber's connection is inside a transaction. */
int forum_pg_in_txn(void);
/** The running fiber is about to wait for something other than the database: its connection goes back, unless a
 * transaction is open on it (its statements are cleared; its next data call takes a connection again). */
void forum_pg_release(void);
int forum_pg_open(const forum_config_t *conf, uv_loop_t *loop, char *err, size_t errlen);
void forum_pg_serving(void);
void forum_pg_serving_end(void);
void forum_pg_close(void);
int forum_pg_failure(void);
void forum_pg_fail_other(void);
forum_stmt_t *forum_pg_stmt(const char *sql);
int forum_pg_bind_int(forum_stmt_t *s, int idx, int64_t v);
int forum_pg_bind_text(forum_stmt_t *s, int idx, const char *v, size_t len);
int forum_pg_bind_blob(forum_stmt_t *s, int idx, const void *v, size_t len);
int forum_pg_bind_null(forum_stmt_t *s, int idx);
int forum_pg_step(forum_stmt_t *s);
int64_t forum_pg_col_int(forum_stmt_t *s, int col);
const char *forum_pg_col_text(forum_stmt_t *s, int col);
int forum_pg_col_is_null(forum_stmt_t *s, int col);
int forum_pg_row_json(forum_stmt_t *s, yajl_gen g);
int64_t forum_pg_last_id(void);
int forum_pg_changes(void);
int forum_pg_exec(const char *sql);
int forum_pg_begin(void);
int forum_pg_commit(void);
int forum_pg_queue(forum_stmt_t *s);
void forum_pg_rollback(void);
void forum_pg_status(yajl_gen g);

/** Where a row's keys stand: the "prefix" of the nested object open, if any (core/db.c). */
typedef struct forum_db_row_nest {
    const char *prefix;
    size_t len;
} forum_db_row_nest_t;
/** Writes column `name` as the next key of a row's object ("a.b" nests b under a); then the value follows. */
void forum_db__row_key(yajl_gen g, const char *name, forum_db_row_nest_t *nest);
/** Closes a row's object (and the nested one still open). */
void forum_db__row_end(yajl_gen g, forum_db_row_nest_t *nest);

/** The core's bookkeeping table on PostgreSQL. */
extern const char forum_db__core_schema_pg[];
/** Moves the version of one table (a PostgreSQL notification names it). */
void forum_db__move_table(const char *table);

#endif
