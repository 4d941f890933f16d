/*
 * Table versions, for renderings cached by plugins (forum_db_version). A statement's writes are learnt
 * from the authorizer while SQLite compiles it, triggers included, so a write through a trigger moves
 * the version of the table the trigger writes. The epoch moves every version at once: raw SQL, a
 * rollback (a rendering made inside the transaction may show rows that are gone), or a commit by
 * another connection (PRAGMA data_version, read once per loop turn). On PostgreSQL the server names
 * the tables each commit wrote, its own and other processes' (core/pg.c).
 */
#include <string.h>
#include "db_private.h"

enum { MAX_TABLES = 64, TABLE_NAME_MAX = 64 };
static struct {
    char name[TABLE_NAME_MAX];
    uint64_t version;
} tables[MAX_TABLES];
static size_t num_tables;
static uint64_t epoch;
static int external_checked;
static int64_t external_version = -1;

forum_stmt_t *forum_db__compiling;

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

int forum_db__authorize(void *arg, int action, const char *table, const char *column, const char *schema, const char *trigger)
{
    forum_stmt_t *s = forum_db__compiling;
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

void forum_db__note_writes(const forum_stmt_t *s)
{
    if (s->writes_unknown)
        ++epoch;
    for (size_t i = 0; i != s->num_writes; ++i)
        ++tables[s->writes[i]].version;
}

void forum_db__move_all(void)
{
    ++epoch;
}

void forum_db__recheck_external(void)
{
    external_checked = 0;
}

void forum_db__move_table(const char *table)
{
    int t = table_index(table);
    if (t < 0)
        ++epoch;
    else
        ++tables[t].version;
}

uint64_t forum_db_version(const char *table)
{
    /* on PostgreSQL every write, ours or another process's, is heard as a notification (core/pg.c) */
    if (!external_checked && !forum_pg_on()) {
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
