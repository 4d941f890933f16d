/* core/db.c: the data access layer, on a fresh database file per test (no event loop). */
#include <sqlite3.h>
#include "unit_db.h"


/* The single integer a query returns. */
static int64_t query_int(const char *sql)
{
    forum_stmt_t *s = forum_db_stmt(sql);
    assert_non_null(s);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    int64_t v = forum_db_col_int(s, 0);
    forum_db_reset_active();
    return v;
}

static int table_exists(const char *name)
{
    forum_stmt_t *s = forum_db_stmt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
    assert_non_null(s);
    forum_db_bind_text(s, 1, name, strlen(name));
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    int found = forum_db_col_int(s, 0) != 0;
    forum_db_reset_active();
    return found;
}

/* The numbers recorded in forum_migrations for `owner`, as "1,2,3". */
static void expect_applied(const char *owner, const char *want)
{
    forum_stmt_t *s = forum_db_stmt("SELECT COALESCE(group_concat(number, ','), '') FROM "
                                    "(SELECT number FROM forum_migrations WHERE owner = ? ORDER BY number)");
    assert_non_null(s);
    forum_db_bind_text(s, 1, owner, strlen(owner));
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_string_equal(forum_db_col_text(s, 0), want);
    forum_db_reset_active();
}

static void expect_json(yajl_gen g, const char *want)
{
    const unsigned char *buf;
    size_t len;
    assert_int_equal(yajl_gen_get_buf(g, &buf, &len), yajl_gen_status_ok);
    char *got = strndup((const char *)buf, len);
    assert_string_equal(got, want);
    free(got);
}

static void test_open_uses_wal_and_foreign_keys(void **state)
{
    (void)state;
    forum_stmt_t *s = forum_db_stmt("PRAGMA journal_mode");
    assert_non_null(s);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_string_equal(forum_db_col_text(s, 0), "wal");
    forum_db_reset_active();
    assert_int_equal(query_int("PRAGMA foreign_keys"), 1);
    assert_int_equal(query_int("PRAGMA synchronous"), 1); /* NORMAL */
}

static void test_open_creates_the_core_schema(void **state)
{
    (void)state;
    assert_true(table_exists("forum_migrations"));
    assert_true(table_exists("sessions"));
    assert_true(table_exists("forum_sequences"));
    expect_applied("core", "1,2");
}

static void test_reopen_keeps_data_and_applies_nothing_twice(void **state)
{
    fixture_t *f = *state;
    char err[512];
    assert_int_equal(forum_db_exec("CREATE TABLE kept (x INTEGER); INSERT INTO kept VALUES (42)"), 0);
    forum_db_close();
    assert_int_equal(forum_db_open(f->db, NULL, err, sizeof(err)), 0);
    assert_int_equal(query_int("SELECT x FROM kept"), 42);
    expect_applied("core", "1,2");
    assert_int_equal(query_int("PRAGMA foreign_keys"), 1);
}

/* The shared sequences: 1 first, one more each time, a rollback gives the number back, names apart. */
static void test_sequences_grow_per_name_and_rollback_gives_back(void **state)
{
    (void)state;
    assert_int_equal(forum_db_begin(), 0);
    assert_int_equal(forum_db_next_id("messages"), 1);
    assert_int_equal(forum_db_next_id("messages"), 2);
    assert_int_equal(forum_db_next_id("other"), 1);
    assert_int_equal(forum_db_commit(), 0);
    assert_int_equal(forum_db_begin(), 0);
    assert_int_equal(forum_db_next_id("messages"), 3);
    forum_db_rollback();
    assert_int_equal(forum_db_begin(), 0);
    assert_int_equal(forum_db_next_id("messages"), 3);
    assert_int_equal(forum_db_commit(), 0);
    /* a migration that brings ids from before raises the sequence; the next number follows them */
    assert_int_equal(forum_db_exec("UPDATE forum_sequences SET value = MAX(value, 41) WHERE name = 'messages'"), 0);
    assert_int_equal(forum_db_begin(), 0);
    assert_int_equal(forum_db_next_id("messages"), 42);
    assert_int_equal(forum_db_commit(), 0);
}

static void test_open_reports_an_unusable_path(void **state)
{
    fixture_t *f = *state;
    char err[512] = "", path[PATH_MAX];
    forum_db_close();
    unit_path(path, sizeof(path), f->dir, "no/such/folder/forum.db");
    assert_int_not_equal(forum_db_open(path, NULL, err, sizeof(err)), 0);
    assert_non_null(strstr(err, path));
}

static const forum_migration_t two_migrations[] = {
    {1, "CREATE TABLE m_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"},
    /* needs migration 1 to have run first */
    {2, "INSERT INTO m_items (name) VALUES ('from 2')"},
    {3, "INSERT INTO m_items (name) VALUES ('from 3')"},
};

static void test_migrate_applies_in_order_once(void **state)
{
    (void)state;
    assert_int_equal(forum_db_migrate("unit", two_migrations, 2), 0);
    expect_applied("unit", "1,2");
    assert_int_equal(query_int("SELECT count(*) FROM m_items"), 1);

    /* a second call applies nothing */
    assert_int_equal(forum_db_migrate("unit", two_migrations, 2), 0);
    expect_applied("unit", "1,2");
    assert_int_equal(query_int("SELECT count(*) FROM m_items"), 1);

    /* one more migration: only the new one runs */
    assert_int_equal(forum_db_migrate("unit", two_migrations, 3), 0);
    expect_applied("unit", "1,2,3");
    assert_int_equal(query_int("SELECT count(*) FROM m_items"), 2);
    assert_int_equal(query_int("SELECT count(*) FROM m_items WHERE name = 'from 3'"), 1);

    /* the time of each is recorded as API.md's time format */
    forum_stmt_t *s = forum_db_stmt("SELECT applied_at FROM forum_migrations WHERE owner = 'unit' AND number = 3");
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    const char *when = forum_db_col_text(s, 0);
    assert_int_equal(strlen(when), 24);
    assert_int_equal(when[10], 'T');
    assert_int_equal(when[23], 'Z');
    forum_db_reset_active();
}

static void test_migrate_keeps_owners_apart(void **state)
{
    (void)state;
    static const forum_migration_t other[] = {{1, "CREATE TABLE m_other (x INTEGER)"}};
    assert_int_equal(forum_db_migrate("unit", two_migrations, 1), 0);
    assert_int_equal(forum_db_migrate("other", other, 1), 0);
    assert_true(table_exists("m_other"));
    expect_applied("unit", "1");
    expect_applied("other", "1");
    /* an owner with no migrations at all is fine */
    assert_int_equal(forum_db_migrate("empty", NULL, 0), 0);
    expect_applied("empty", "");
}

static void test_migrate_refuses_misnumbered_lists(void **state)
{
    (void)state;
    static const forum_migration_t gap[] = {{1, "CREATE TABLE mis_a (x)"}, {3, "CREATE TABLE mis_c (x)"}};
    static const forum_migration_t starts_at_2[] = {{2, "CREATE TABLE mis_b (x)"}};
    static const forum_migration_t starts_at_0[] = {{0, "CREATE TABLE mis_z (x)"}};
    static const forum_migration_t swapped[] = {{2, "CREATE TABLE mis_s2 (x)"}, {1, "CREATE TABLE mis_s1 (x)"}};
    assert_int_not_equal(forum_db_migrate("gap", gap, 2), 0);
    assert_false(table_exists("mis_c"));
    assert_int_not_equal(forum_db_migrate("starts_at_2", starts_at_2, 1), 0);
    assert_false(table_exists("mis_b"));
    expect_applied("starts_at_2", "");
    assert_int_not_equal(forum_db_migrate("starts_at_0", starts_at_0, 1), 0);
    assert_false(table_exists("mis_z"));
    assert_int_not_equal(forum_db_migrate("swapped", swapped, 2), 0);
    assert_false(table_exists("mis_s1"));
    assert_false(table_exists("mis_s2"));
}

static void test_migrate_refused_list_applies_none_of_it(void **state)
{
    (void)state;
    /* a list refused for its numbering must not be half applied: migration 1 comes before the gap */
    static const forum_migration_t gap[] = {{1, "CREATE TABLE half_a (x)"}, {3, "CREATE TABLE half_c (x)"}};
    assert_int_not_equal(forum_db_migrate("half", gap, 2), 0);
    assert_false(table_exists("half_a"));
    expect_applied("half", "");
}

static void test_failing_migration_keeps_nothing_of_it(void **state)
{
    (void)state;
    static const forum_migration_t broken[] = {
        {1, "CREATE TABLE keep_me (x INTEGER)"},
        {2, "CREATE TABLE gone (x INTEGER); INSERT INTO keep_me VALUES (1); THIS IS NOT SQL"},
    };
    static const forum_migration_t fixed[] = {
        {1, "CREATE TABLE keep_me (x INTEGER)"},
        {2, "CREATE TABLE gone (x INTEGER)"},
    };
    assert_int_not_equal(forum_db_migrate("broken", broken, 2), 0);
    assert_true(table_exists("keep_me"));
    assert_false(table_exists("gone"));
    assert_int_equal(query_int("SELECT count(*) FROM keep_me"), 0);
    expect_applied("broken", "1");
    /* no transaction was left open */
    assert_int_equal(forum_db_begin(), 0);
    forum_db_rollback();
    /* once fixed, only migration 2 runs */
    assert_int_equal(forum_db_migrate("broken", fixed, 2), 0);
    assert_true(table_exists("gone"));
    expect_applied("broken", "1,2");
}

static void test_stmt_is_cached_by_its_text(void **state)
{
    (void)state;
    forum_stmt_t *a = forum_db_stmt("SELECT 1");
    forum_stmt_t *b = forum_db_stmt("SELECT 2");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(forum_db_stmt("SELECT 1"), a);
    assert_ptr_equal(forum_db_stmt("SELECT 2"), b);
    assert_ptr_not_equal(forum_db_stmt("SELECT  1"), a);
    assert_null(forum_db_stmt("SELEC nonsense"));
}

static void test_cached_stmt_starts_over_without_bindings(void **state)
{
    (void)state;
    assert_int_equal(forum_db_exec("CREATE TABLE three (n INTEGER); INSERT INTO three VALUES (1), (2), (3)"), 0);
    forum_stmt_t *s = forum_db_stmt("SELECT n FROM three WHERE n >= COALESCE(?, 0) ORDER BY n");
    forum_db_bind_int(s, 1, 2);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_int_equal(forum_db_col_int(s, 0), 2);
    /* taken again while stepping: back at the first row, the old binding gone */
    s = forum_db_stmt("SELECT n FROM three WHERE n >= COALESCE(?, 0) ORDER BY n");
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_int_equal(forum_db_col_int(s, 0), 1);
    forum_db_reset_active();
}

static void test_bind_step_col_round_trip(void **state)
{
    (void)state;
    static const char text[] = "O'Brien said \"hi\"; -- DROP TABLE rt; \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    static const uint8_t blob[] = {0, 1, 2, 0xff, 0};
    forum_stmt_t *s;

    assert_int_equal(forum_db_exec("CREATE TABLE rt (id INTEGER PRIMARY KEY, t TEXT, n INTEGER, z TEXT, b BLOB, part TEXT)"), 0);
    s = forum_db_stmt("INSERT INTO rt (t, n, z, b, part) VALUES (?, ?, ?, ?, ?)");
    assert_non_null(s);
    assert_int_equal(forum_db_bind_text(s, 1, text, strlen(text)), 0);
    assert_int_equal(forum_db_bind_int(s, 2, INT64_C(-9007199254740993)), 0);
    assert_int_equal(forum_db_bind_null(s, 3), 0);
    assert_int_equal(forum_db_bind_blob(s, 4, blob, sizeof(blob)), 0);
    assert_int_equal(forum_db_bind_text(s, 5, "abcdef", 3), 0);
    assert_int_not_equal(forum_db_bind_int(s, 6, 1), 0); /* no such parameter */
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    int64_t id = forum_db_last_id();
    assert_true(id > 0);

    s = forum_db_stmt("SELECT t, n, z, hex(b), part, length(t) FROM rt WHERE id = ?");
    forum_db_bind_int(s, 1, id);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_string_equal(forum_db_col_text(s, 0), text);
    assert_false(forum_db_col_is_null(s, 0));
    assert_true(forum_db_col_int(s, 1) == INT64_C(-9007199254740993));
    assert_true(forum_db_col_is_null(s, 2));
    assert_null(forum_db_col_text(s, 2));
    assert_string_equal(forum_db_col_text(s, 3), "000102FF00");
    assert_string_equal(forum_db_col_text(s, 4), "abc");
    assert_int_equal(forum_db_col_int(s, 5), 44); /* characters, not bytes */
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    forum_db_reset_active();

    /* the same text finds the row: bound values are compared, never spliced into SQL */
    s = forum_db_stmt("SELECT id FROM rt WHERE t = ?");
    forum_db_bind_text(s, 1, text, strlen(text));
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_int_equal(forum_db_col_int(s, 0), id);
    forum_db_reset_active();
}

static void test_text_that_is_not_utf8_is_never_stored_nor_read(void **state)
{
    (void)state;
    forum_stmt_t *s;
    assert_int_equal(forum_db_exec("CREATE TABLE g (id INTEGER PRIMARY KEY, t TEXT)"), 0);
    /* the DAL refuses to bind it: NULL is stored instead */
    s = forum_db_stmt("INSERT INTO g (t) VALUES (?)");
    assert_int_equal(forum_db_bind_text(s, 1, "a\xed\xa0\x80" "b", 5), -1);
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    s = forum_db_stmt("INSERT INTO g (t) VALUES (?)");
    assert_int_equal(forum_db_bind_text(s, 1, "a\0b", 3), -1);
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    s = forum_db_stmt("SELECT count(*) FROM g WHERE t IS NULL");
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_int_equal(forum_db_col_int(s, 0), 2);
    forum_db_reset_active();

    /* what got in another way (an older forumd, another program) is read with U+FFFD, as text and as JSON */
    assert_int_equal(forum_db_exec("DELETE FROM g; INSERT INTO g (id, t) VALUES (1, CAST(X'61C0AF62' AS TEXT)), (2, 'ok')"), 0);
    s = forum_db_stmt("SELECT t, t AS again FROM g ORDER BY id");
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    const char *first = forum_db_col_text(s, 0), *second = forum_db_col_text(s, 1);
    assert_string_equal(first, "a\xef\xbf\xbd\xef\xbf\xbd" "b");
    assert_string_equal(second, "a\xef\xbf\xbd\xef\xbf\xbd" "b"); /* both stay valid until the next step */
    yajl_gen g = forum_json_gen();
    forum_db_row_json(s, g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    static const char want[] = "{\"t\":\"a\xef\xbf\xbd\xef\xbf\xbd" "b\",\"again\":\"a\xef\xbf\xbd\xef\xbf\xbd" "b\"}";
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(buf, want, len);
    yajl_gen_free(g);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_string_equal(forum_db_col_text(s, 0), "ok");
    forum_db_reset_active();
}

static void test_unique_violation_is_a_constraint(void **state)
{
    (void)state;
    assert_int_equal(forum_db_exec("CREATE TABLE u (name TEXT UNIQUE NOT NULL)"), 0);
    forum_stmt_t *s = forum_db_stmt("INSERT INTO u (name) VALUES (?)");
    forum_db_bind_text(s, 1, "ann", 3);
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    s = forum_db_stmt("INSERT INTO u (name) VALUES (?)");
    forum_db_bind_text(s, 1, "ann", 3);
    assert_int_equal(forum_db_step(s), FORUM_DB_CONSTRAINT);
    /* NOT NULL is a constraint too, and the statement stays usable */
    s = forum_db_stmt("INSERT INTO u (name) VALUES (?)");
    forum_db_bind_null(s, 1);
    assert_int_equal(forum_db_step(s), FORUM_DB_CONSTRAINT);
    s = forum_db_stmt("INSERT INTO u (name) VALUES (?)");
    forum_db_bind_text(s, 1, "bob", 3);
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    assert_int_equal(query_int("SELECT count(*) FROM u"), 2);
}

static void test_foreign_key_violation_is_a_constraint(void **state)
{
    (void)state;
    assert_int_equal(forum_db_exec("CREATE TABLE fk_parent (id INTEGER PRIMARY KEY);"
                                   "CREATE TABLE fk_child (id INTEGER PRIMARY KEY,"
                                   "  parent INTEGER NOT NULL REFERENCES fk_parent (id))"),
                     0);
    forum_stmt_t *s = forum_db_stmt("INSERT INTO fk_child (parent) VALUES (?)");
    forum_db_bind_int(s, 1, 99);
    assert_int_equal(forum_db_step(s), FORUM_DB_CONSTRAINT);
    assert_int_equal(query_int("SELECT count(*) FROM fk_child"), 0);
}

static void test_begin_rollback_discards(void **state)
{
    (void)state;
    assert_int_equal(forum_db_exec("CREATE TABLE tx (x INTEGER)"), 0);
    assert_int_equal(forum_db_begin(), 0);
    assert_int_equal(forum_db_exec("INSERT INTO tx VALUES (1)"), 0);
    assert_int_equal(query_int("SELECT count(*) FROM tx"), 1);
    forum_db_rollback();
    assert_int_equal(query_int("SELECT count(*) FROM tx"), 0);
    forum_db_rollback(); /* outside a transaction: nothing happens */
}

static void test_begin_commit_keeps(void **state)
{
    fixture_t *f = *state;
    char err[512];
    assert_int_equal(forum_db_exec("CREATE TABLE tx (x INTEGER)"), 0);
    assert_int_equal(forum_db_begin(), 0);
    forum_stmt_t *s = forum_db_stmt("INSERT INTO tx VALUES (?)");
    forum_db_bind_int(s, 1, 7);
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    assert_int_equal(forum_db_commit(), 0);
    forum_db_rollback();
    assert_int_equal(query_int("SELECT sum(x) FROM tx"), 7);
    /* committed means on disk */
    forum_db_close();
    assert_int_equal(forum_db_open(f->db, NULL, err, sizeof(err)), 0);
    assert_int_equal(query_int("SELECT sum(x) FROM tx"), 7);
    /* a commit without a transaction is an error */
    assert_int_not_equal(forum_db_commit(), 0);
}

static void make_rows_json_tables(void)
{
    assert_int_equal(forum_db_exec("CREATE TABLE j_users (id INTEGER PRIMARY KEY, nickname TEXT NOT NULL);"
                                   "CREATE TABLE j_posts (id INTEGER PRIMARY KEY, author INTEGER NOT NULL, score REAL,"
                                   "  title TEXT, note TEXT);"
                                   "INSERT INTO j_users VALUES (7, 'ann'), (9, 'b\"o\\b');"
                                   "INSERT INTO j_posts VALUES (1, 7, 2.5, 'Say \"hi\" \xc3\xa9', NULL);"
                                   "INSERT INTO j_posts VALUES (2, 9, 3.0, 'second', 'n/a');"),
                     0);
}

static void test_rows_json_types_and_nested_author(void **state)
{
    (void)state;
    make_rows_json_tables();
    forum_stmt_t *s = forum_db_stmt("SELECT p.id, p.score, p.title, p.note,"
                                    " u.id AS \"author.id\", u.nickname AS \"author.nickname\", p.id * 10 AS tail"
                                    " FROM j_posts p JOIN j_users u ON u.id = p.author ORDER BY p.id");
    assert_non_null(s);
    yajl_gen g = forum_json_gen();
    yajl_gen_array_open(g);
    assert_int_equal(forum_db_rows_json(s, g), 2);
    yajl_gen_array_close(g);
    expect_json(g, "[{\"id\":1,\"score\":2.5,\"title\":\"Say \\\"hi\\\" \xc3\xa9\",\"note\":null,"
                   "\"author\":{\"id\":7,\"nickname\":\"ann\"},\"tail\":10},"
                   "{\"id\":2,\"score\":3.0,\"title\":\"second\",\"note\":\"n/a\","
                   "\"author\":{\"id\":9,\"nickname\":\"b\\\"o\\\\b\"},\"tail\":20}]");
    yajl_gen_free(g);
    forum_db_reset_active();
}

static void test_rows_json_nested_object_last_and_two_prefixes(void **state)
{
    (void)state;
    make_rows_json_tables();
    /* the nested columns close the row; then two prefixes one after the other */
    forum_stmt_t *s = forum_db_stmt("SELECT p.id, u.id AS \"author.id\", u.nickname AS \"author.nickname\" FROM j_posts p"
                                    " JOIN j_users u ON u.id = p.author WHERE p.id = 1");
    yajl_gen g = forum_json_gen();
    yajl_gen_array_open(g);
    assert_int_equal(forum_db_rows_json(s, g), 1);
    yajl_gen_array_close(g);
    expect_json(g, "[{\"id\":1,\"author\":{\"id\":7,\"nickname\":\"ann\"}}]");
    yajl_gen_free(g);

    s = forum_db_stmt("SELECT 1 AS \"a.x\", 2 AS \"a.y\", 3 AS \"b.x\", NULL AS \"c\"");
    g = forum_json_gen();
    assert_int_equal(forum_db_rows_json(s, g), 1);
    expect_json(g, "{\"a\":{\"x\":1,\"y\":2},\"b\":{\"x\":3},\"c\":null}");
    yajl_gen_free(g);
    forum_db_reset_active();
}

static void test_rows_json_no_rows(void **state)
{
    (void)state;
    make_rows_json_tables();
    forum_stmt_t *s = forum_db_stmt("SELECT id FROM j_posts WHERE id > 100");
    yajl_gen g = forum_json_gen();
    yajl_gen_array_open(g);
    assert_int_equal(forum_db_rows_json(s, g), 0);
    yajl_gen_array_close(g);
    expect_json(g, "[]");
    yajl_gen_free(g);
    forum_db_reset_active();
}

static void exec_ok(const char *sql)
{
    assert_int_equal(forum_db_exec(sql), 0);
}

static void step_done(const char *sql)
{
    forum_stmt_t *s = forum_db_stmt(sql);
    assert_non_null(s);
    assert_int_equal(forum_db_step(s), FORUM_DB_DONE);
    forum_db_reset_active();
}

static void test_version_moves_with_writes_to_its_table_only(void **state)
{
    (void)state;
    exec_ok("CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER)");
    forum_db_reset_active();
    uint64_t a = forum_db_version("a"), b = forum_db_version("b");
    step_done("INSERT INTO a (x) VALUES (1)");
    assert_true(forum_db_version("a") > a);
    assert_int_equal(forum_db_version("b"), b);
    a = forum_db_version("a");
    forum_stmt_t *s = forum_db_stmt("SELECT x FROM a");
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    forum_db_reset_active();
    assert_int_equal(forum_db_version("a"), a);
    step_done("UPDATE a SET x = 2");
    assert_true(forum_db_version("a") > a);
    a = forum_db_version("a");
    step_done("DELETE FROM a");
    assert_true(forum_db_version("a") > a);
    assert_int_equal(forum_db_version("b"), b);
}

static void test_version_follows_triggers_and_without_rowid_tables(void **state)
{
    (void)state;
    exec_ok("CREATE TABLE items (id INTEGER PRIMARY KEY);"
            "CREATE TABLE tally (k INTEGER PRIMARY KEY, n INTEGER) WITHOUT ROWID;"
            "INSERT INTO tally VALUES (1, 0);"
            "CREATE TRIGGER count_items AFTER INSERT ON items BEGIN UPDATE tally SET n = n + 1 WHERE k = 1; END;");
    forum_db_reset_active();
    uint64_t tally = forum_db_version("tally");
    step_done("INSERT INTO items DEFAULT VALUES");
    assert_true(forum_db_version("tally") > tally);
}

static void test_version_moves_on_rollback_and_raw_sql(void **state)
{
    (void)state;
    exec_ok("CREATE TABLE a (x INTEGER)");
    forum_db_reset_active();
    uint64_t v = forum_db_version("a");
    assert_int_equal(forum_db_begin(), 0);
    forum_db_rollback();
    assert_true(forum_db_version("a") > v);
    v = forum_db_version("a");
    exec_ok("INSERT INTO a VALUES (3)");
    assert_true(forum_db_version("a") > v);
}

static void test_version_moves_when_another_connection_commits(void **state)
{
    fixture_t *f = *state;
    sqlite3 *other;
    exec_ok("CREATE TABLE a (x INTEGER)");
    forum_db_reset_active();
    uint64_t v = forum_db_version("a");
    forum_db_reset_active();
    assert_int_equal(forum_db_version("a"), v);
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "INSERT INTO a VALUES (9)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    forum_db_reset_active(); /* the next loop turn */
    assert_true(forum_db_version("a") > v);
}

/* Another connection, as an operator's sqlite3 shell would be. */
static sqlite3 *other_connection(const fixture_t *f)
{
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    return other;
}

static void test_write_under_a_read_left_open_survives_another_commit(void **state)
{
    fixture_t *f = *state;
    exec_ok("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1)");
    /* a read left on its row holds a snapshot ... */
    forum_stmt_t *r = forum_db_stmt("SELECT x FROM a");
    assert_int_equal(forum_db_step(r), FORUM_DB_ROW);
    /* ... another connection commits past it ... */
    sqlite3 *other = other_connection(f);
    assert_int_equal(sqlite3_exec(other, "INSERT INTO a VALUES (2)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* ... and a write outside a transaction still goes through (not SQLITE_BUSY_SNAPSHOT) */
    forum_stmt_t *w = forum_db_stmt("INSERT INTO a VALUES (3)");
    assert_int_equal(forum_db_step(w), FORUM_DB_DONE);
    forum_db_reset_active();
    assert_int_equal(query_int("SELECT count(*) FROM a"), 3);
}

static void test_a_lock_fails_at_once_as_busy(void **state)
{
    fixture_t *f = *state;
    exec_ok("CREATE TABLE a (x INTEGER)");
    forum_db_reset_active();
    forum_db_serving(); /* no busy timeout from here on, as in the server */
    sqlite3 *other = other_connection(f);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE; INSERT INTO a VALUES (1)", NULL, NULL, NULL), SQLITE_OK);

    forum_stmt_t *w = forum_db_stmt("INSERT INTO a VALUES (2)");
    assert_int_equal(forum_db_step(w), FORUM_DB_BUSY);
    assert_int_equal(forum_db_failure(), FORUM_DB_BUSY);
    assert_int_equal(forum_db_begin(), -1);
    assert_int_equal(forum_db_failure(), FORUM_DB_BUSY);
    /* reads go on: WAL readers never wait for the writer */
    assert_int_equal(query_int("SELECT count(*) FROM a"), 0);

    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    w = forum_db_stmt("INSERT INTO a VALUES (2)");
    assert_int_equal(forum_db_step(w), FORUM_DB_DONE);
    forum_db_reset_active();
    assert_int_equal(query_int("SELECT count(*) FROM a"), 2);
}

static void test_a_full_database_is_full_not_an_error(void **state)
{
    (void)state;
    exec_ok("CREATE TABLE a (x TEXT)");
    forum_db_reset_active();
    /* the database may not grow past the pages it has: the next page it needs is refused, as on a full disk */
    int64_t pages = query_int("PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages);
    forum_stmt_t *s = forum_db_stmt(sql);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    forum_db_reset_active();
    s = forum_db_stmt("INSERT INTO a VALUES (zeroblob(100000))");
    assert_int_equal(forum_db_step(s), FORUM_DB_FULL);
    assert_int_equal(forum_db_failure(), FORUM_DB_FULL);
    forum_db_reset_active();

    forum_db_answer_t a;
    forum_db_describe(FORUM_DB_FULL, "the post could not be stored", &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.code, "unavailable");
    assert_true(a.retry_after_s > 0);
    forum_db_describe(FORUM_DB_BUSY, "x", &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.code, "unavailable");
    forum_db_describe(FORUM_DB_ERROR, "x", &a);
    assert_int_equal(a.status, 500);
    assert_string_equal(a.code, "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_uses_wal_and_foreign_keys, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_the_core_schema, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data_and_applies_nothing_twice, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_sequences_grow_per_name_and_rollback_gives_back, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_open_reports_an_unusable_path, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_applies_in_order_once, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_keeps_owners_apart, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_refuses_misnumbered_lists, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_refused_list_applies_none_of_it, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_failing_migration_keeps_nothing_of_it, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_stmt_is_cached_by_its_text, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_cached_stmt_starts_over_without_bindings, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_bind_step_col_round_trip, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_unique_violation_is_a_constraint, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_key_violation_is_a_constraint, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_begin_rollback_discards, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_begin_commit_keeps, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_rows_json_types_and_nested_author, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_rows_json_nested_object_last_and_two_prefixes, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_rows_json_no_rows, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_version_moves_with_writes_to_its_table_only, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_version_follows_triggers_and_without_rowid_tables, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_version_moves_on_rollback_and_raw_sql, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_version_moves_when_another_connection_commits, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_write_under_a_read_left_open_survives_another_commit, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_a_lock_fails_at_once_as_busy, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_a_full_database_is_full_not_an_error, unit_db_setup, unit_db_teardown),

        cmocka_unit_test_setup_teardown(test_text_that_is_not_utf8_is_never_stored_nor_read, unit_db_setup, unit_db_teardown),
    };
    forum_log_set_level(FORUM_LOG_WARN);
    return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
