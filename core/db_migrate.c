/*
 * Schema migrations: the core's and every plugin's, numbered 1, 2, 3, ... per owner, each applied once
 * in its own transaction and recorded in forum_migrations.
 */
#include <string.h>
#include "db_private.h"

const char forum_db__core_schema[] = "CREATE TABLE IF NOT EXISTS forum_migrations ("
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
    /* numbers several plugins draw from (forum_db_next_id): private and room messages share "messages" */
    {2, "CREATE TABLE forum_sequences ("
        "  name TEXT PRIMARY KEY,"
        "  value INTEGER NOT NULL"
        ") WITHOUT ROWID;"},
};

const char forum_db__core_schema_pg[] = "CREATE TABLE IF NOT EXISTS forum_migrations ("
                                        "  owner TEXT NOT NULL,"
                                        "  number BIGINT NOT NULL,"
                                        "  applied_at TEXT NOT NULL,"
                                        "  PRIMARY KEY (owner, number)"
                                        ")";

/* the same, in PostgreSQL's dialect, and the trigger function that tells every forumd what a commit wrote */
static const forum_migration_t core_migrations_pg[] = {
    {1, "CREATE TABLE sessions ("
        "  token_hash BYTEA PRIMARY KEY,"
        "  user_id BIGINT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  expires_ms BIGINT NOT NULL"
        ");"
        "CREATE INDEX sessions_user ON sessions (user_id);"
        "CREATE INDEX sessions_expiry ON sessions (expires_ms);"},
    {2, "CREATE TABLE forum_sequences ("
        "  name TEXT PRIMARY KEY,"
        "  value BIGINT NOT NULL"
        ");"
        "CREATE FUNCTION forum_tables_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('forum_tables', TG_TABLE_NAME); RETURN NULL; END $$;"},
    /* every forumd keeps the sessions it found in memory: a deleted or changed row is named to all of them */
    {3, "CREATE FUNCTION forum_sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('forum_sessions', CASE WHEN TG_OP = 'TRUNCATE' THEN '' ELSE encode(OLD.token_hash, 'hex') END); "
        "RETURN NULL; END $$;"
        "CREATE TRIGGER forum_sessions_rows AFTER UPDATE OR DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION forum_sessions_notify();"
        "CREATE TRIGGER forum_sessions_all AFTER TRUNCATE ON sessions FOR EACH STATEMENT EXECUTE FUNCTION forum_sessions_notify();"},
};

/*
 * Every table of the schema that has no notifying trigger gets one (a statement trigger: one notification
 * per statement, and PostgreSQL folds a transaction's equal ones into one). Run after every migration, so
 * a plugin's new tables are heard as soon as they exist; the core's own bookkeeping is left out.
 */
static const char notify_triggers_pg[] =
    "DO $$ DECLARE t text; BEGIN "
    "FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() "
    "AND c.relname NOT IN ('forum_migrations', 'forum_sequences', 'sessions') "
    "AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'forum_tables_notify') LOOP "
    "EXECUTE format('CREATE TRIGGER forum_tables_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I "
    "FOR EACH STATEMENT EXECUTE FUNCTION forum_tables_notify()', t); "
    "END LOOP; END $$";

/*
 * On PostgreSQL several nodes may start at once: each migrates under one advisory lock (a number every forumd
 * uses), and reads what is applied only once it holds it, so each migration runs once. The lock is the
 * session's: it goes with the connection if that is lost, and taking it again within it nests.
 */
static int lock_migrations(void)
{
    return forum_pg_on() ? forum_db_exec("SELECT pg_advisory_lock(7262746115)") : 0;
}

static void unlock_migrations(void)
{
    if (forum_pg_on())
        forum_db_exec("SELECT pg_advisory_unlock(7262746115)");
}

static int migrate(const char *owner, const forum_migration_t *migrations, size_t n);

int forum_db__migrate_core(void)
{
    int ret;
    if (!forum_pg_on())
        return forum_db_migrate("core", core_migrations, FORUM_ARRAY_SIZE(core_migrations));
    if (lock_migrations() != 0)
        return -1;
    ret = forum_db_exec(forum_db__core_schema_pg) != 0 ? -1 : migrate("core", core_migrations_pg, FORUM_ARRAY_SIZE(core_migrations_pg));
    unlock_migrations();
    return ret;
}

int forum_db_migrate(const char *owner, const forum_migration_t *migrations, size_t n)
{
    int ret;
    if (lock_migrations() != 0)
        return -1;
    ret = migrate(owner, migrations, n);
    unlock_migrations();
    return ret;
}

static int migrate(const char *owner, const forum_migration_t *migrations, size_t n)
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
    if (!forum_pg_on())
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
        if (!forum_pg_on())
            sqlite3_reset(s->st);
        if (forum_db_commit() != 0)
            return -1;
        forum_log(FORUM_LOG_INFO, "%s: applied schema migration %d", owner, migrations[i].number);
    }
    if (forum_pg_on() && forum_db_exec(notify_triggers_pg) != 0) {
        forum_log(FORUM_LOG_ERROR, "%s: the tables' notifying triggers could not be made", owner);
        return -1;
    }
    return 0;

Error:
    forum_log(FORUM_LOG_ERROR, "%s: schema migration %d failed; nothing of it was kept", owner, migrations[i].number);
    forum_db_rollback();
    return -1;
}
