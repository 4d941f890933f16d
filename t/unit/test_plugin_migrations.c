/*
 * Each feature plugin's migrations, per backend, as its init registers them (the plugin loaded from the
 * build, with an api that only records): a PostgreSQL list of its own in PostgreSQL's dialect, numbered 1..n
 * in order, and the SQLite list that databases in the field have run, unchanged (each text's digest is
 * pinned here: a migration that ran is never edited, a change is a new number).
 */
#include <dlfcn.h>
#include "unit.h"
#include "../../plugins/forum_plugin.h"

enum { MAX_MIGRATIONS = 16 };

typedef struct list {
    int numbers[MAX_MIGRATIONS];
    const char *sql[MAX_MIGRATIONS];
    size_t n;
} list_t;

static list_t sqlite_list, pg_list;

static void add(list_t *l, int number, const char *sql)
{
    assert_true(l->n < MAX_MIGRATIONS);
    l->numbers[l->n] = number;
    l->sql[l->n] = sql;
    ++l->n;
}

static int migration_for(forum_plugin_t *p, int backend, int number, const char *sql)
{
    (void)p;
    assert_true(backend == 0 || backend == FORUM_DB_SQLITE || backend == FORUM_DB_POSTGRES);
    if (backend != FORUM_DB_POSTGRES)
        add(&sqlite_list, number, sql);
    if (backend != FORUM_DB_SQLITE)
        add(&pg_list, number, sql);
    return 0;
}

static int migration(forum_plugin_t *p, int number, const char *sql)
{
    return migration_for(p, 0, number, sql);
}

/* --- the rest of what init calls: accepted and forgotten --- */

static int route(forum_plugin_t *p, const char *method, const char *pattern, int flags, forum_route_fn fn)
{
    (void)p, (void)method, (void)pattern, (void)flags, (void)fn;
    return 0;
}

static int on_frame(forum_plugin_t *p, const char *type, forum_frame_fn fn)
{
    (void)p, (void)type, (void)fn;
    return 0;
}

static int on_event(forum_plugin_t *p, const char *name, forum_event_fn fn)
{
    (void)p, (void)name, (void)fn;
    return 0;
}

static int replay_source(forum_plugin_t *p, const forum_replay_source_t *src)
{
    (void)p, (void)src;
    return 0;
}

static void log_line(int level, const char *fmt, ...)
{
    (void)level, (void)fmt;
}

static uint64_t setting_uint(forum_plugin_t *p, const char *key)
{
    (void)p, (void)key;
    return 1024; /* in every declared range of the five plugins */
}

static int setting_bool(forum_plugin_t *p, const char *key)
{
    (void)p, (void)key;
    return 1;
}

static int64_t db_next_id(const char *name)
{
    (void)name;
    return 0;
}

static void publish_all_but(int64_t user_id, const char *json, size_t len, int flags)
{
    (void)user_id, (void)json, (void)len, (void)flags;
}

static int db_backend(void)
{
    return FORUM_DB_SQLITE;
}

static const forum_plugin_desc_t *loaded;

/* Loads BUILD/plugins/NAME.so and runs its init; the lists then hold what it registered. */
static void load(const char *name)
{
    static forum_api_t api;
    char path[PATH_MAX];
    unit_build_dir(path, sizeof(path));
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "/plugins/%s.so", name);
    memset(&api, 0, sizeof(api));
    api.version = FORUM_API_VERSION;
    api.size = sizeof(api);
    api.migration = migration;
    api.migration_for = migration_for;
    api.route = route;
    api.on_frame = on_frame;
    api.on_event = on_event;
    api.replay_source = replay_source;
    api.log = log_line;
    api.setting_uint = setting_uint;
    api.setting_bool = setting_bool;
    api.db_next_id = db_next_id;
    api.publish_all_but = publish_all_but;
    api.db_backend = db_backend;
    memset(&sqlite_list, 0, sizeof(sqlite_list));
    memset(&pg_list, 0, sizeof(pg_list));

    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (so == NULL)
        unit_fail("dlopen %s: %s", path, dlerror());
    const forum_plugin_desc_t *desc = dlsym(so, "forum_plugin");
    assert_non_null(desc);
    assert_int_equal(desc->init((forum_plugin_t *)&api, &api), 0);
    loaded = desc;
    /* left loaded: the lists point into it */
}

/* FNV-1a, 64 bits: enough to tell an edited text from the one that ran */
static uint64_t digest(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s != '\0'; ++s)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void assert_numbered(const list_t *l)
{
    assert_true(l->n >= 1);
    for (size_t i = 0; i != l->n; ++i)
        assert_int_equal(l->numbers[i], (int)i + 1);
}

/* Words of SQLite's dialect that PostgreSQL refuses or reads otherwise (INTEGER is 32 bits there). */
static void assert_postgres_dialect(const list_t *l)
{
    static const char *const sqlite_only[] = {"INTEGER", "WITHOUT ROWID", "NOCASE", "strftime", "BLOB", "VIRTUAL", "AUTOINCREMENT",
                                              "INSERT OR", "MIN(", "MAX(value"};
    for (size_t i = 0; i != l->n; ++i)
        for (size_t w = 0; w != sizeof(sqlite_only) / sizeof(sqlite_only[0]); ++w)
            if (strstr(l->sql[i], sqlite_only[w]) != NULL)
                unit_fail("PostgreSQL migration %d has \"%s\": %s", l->numbers[i], sqlite_only[w], l->sql[i]);
}

static void check(const char *name, const uint64_t *sqlite_digests, size_t num_sqlite)
{
    load(name);
    assert_numbered(&sqlite_list);
    assert_numbered(&pg_list);
    assert_int_equal(sqlite_list.n, num_sqlite);
    for (size_t i = 0; i != sqlite_list.n; ++i)
        if (digest(sqlite_list.sql[i]) != sqlite_digests[i])
            unit_fail("%s: SQLite migration %zu changed (digest %#llx): databases in the field ran the old text", name, i + 1,
                      (unsigned long long)digest(sqlite_list.sql[i]));
    assert_true(pg_list.n <= sqlite_list.n);
    assert_postgres_dialect(&pg_list);
    if (loaded->fini != NULL)
        loaded->fini((forum_plugin_t *)loaded); /* what init allocated goes back (the ASan build counts leaks) */
}

static void test_auth(void **state)
{
    static const uint64_t sqlite[] = {0x54eca5465f87aa52ull};
    (void)state;
    check("auth", sqlite, 1);
}

static void test_posts(void **state)
{
    static const uint64_t sqlite[] = {0x6c62f908c5c1d26aull, 0x47c5e6b2aa73c9e8ull};
    (void)state;
    check("posts", sqlite, 2);
}

static void test_comments(void **state)
{
    static const uint64_t sqlite[] = {0x02169a2af846ecdeull, 0x64ca7d5399221a35ull};
    (void)state;
    check("comments", sqlite, 2);
}

static void test_chat(void **state)
{
    static const uint64_t sqlite[] = {0xb7b401fbe38de470ull, 0x3c3f02edd09d7f8full, 0xd222432477ff90b5ull};
    (void)state;
    check("chat", sqlite, 3);
}

static void test_rooms(void **state)
{
    static const uint64_t sqlite[] = {0x2e8822c5b9c7362dull, 0xb63a3a43393bb6ecull};
    (void)state;
    check("rooms", sqlite, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth), cmocka_unit_test(test_posts), cmocka_unit_test(test_comments),
        cmocka_unit_test(test_chat), cmocka_unit_test(test_rooms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
