/*
 * core/plugin_host.c: route registration and matching, frame lookup, and refused loads. Routes can only
 * be registered by a plugin's init, so each test loads the real probe plugin (t/plugins/probe.c) from
 * the build the test binary belongs to (BUILD/t-plugins/probe.so), through a generated configuration.
 */
#include "unit.h"
#include "../../core/forum.h"

/* every plugin the tests load; the broken ones are copied under their own names */
static const char *const plugin_names[] = {"probe", "wrong_abi", "no_descriptor", "init_fails"};

typedef struct fixture {
    char dir[PATH_MAX];
    char plugins[PATH_MAX];
    char build[PATH_MAX];
    forum_config_t *conf;
} fixture_t;

/* Copies BUILD/t-plugins/`from`.so into the fixture's plugins folder as `to`.so. */
static void install_plugin(fixture_t *f, const char *from, const char *to)
{
    char src[PATH_MAX + 64], dst[PATH_MAX + 64];
    snprintf(src, sizeof(src), "%s/t-plugins/%s.so", f->build, from);
    snprintf(dst, sizeof(dst), "%s/%s.so", f->plugins, to);
    unit_copy(src, dst);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char yaml[PATH_MAX], text[4 * PATH_MAX], db[PATH_MAX], err[1024] = "";

    unit_build_dir(f->build, sizeof(f->build));
    unit_mkdtemp(f->dir, sizeof(f->dir));
    unit_path(f->plugins, sizeof(f->plugins), f->dir, "plugins");
    assert_int_equal(mkdir(f->plugins, 0700), 0);
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(plugin_names); ++i)
        install_plugin(f, plugin_names[i], plugin_names[i]);

    unit_path(db, sizeof(db), f->dir, "forum.db");
    snprintf(text, sizeof(text),
             "listen: 8080\n"
             "database: %s\n"
             "plugins:\n"
             "  dir: %s\n"
             "  load: [probe, wrong_abi, no_descriptor, init_fails]\n"
             "  settings:\n"
             "    probe:\n"
             "      answer: 9\n",
             db, f->plugins);
    unit_write(unit_path(yaml, sizeof(yaml), f->dir, "forum.yaml"), text);
    if ((f->conf = forum_config_load(yaml, err, sizeof(err))) == NULL)
        unit_fail("forum_config_load: %s", err);
    if (forum_db_open(f->conf->database, NULL, err, sizeof(err)) != 0)
        unit_fail("forum_db_open: %s", err);
    assert_int_equal(forum_plugins_init(f->conf), 0);
    assert_int_equal(forum_plugins_load("probe"), 0);
    forum_db_reset_active();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    forum_plugins_shutdown();
    forum_db_close();
    forum_config_free(f->conf);
    unit_rmtree(f->dir);
    free(f);
    return 0;
}

static int route(const char *method, const char *path, forum_route_match_t *m)
{
    memset(m, 0, sizeof(*m));
    return forum_plugins_route(h2o_iovec_init(method, strlen(method)), h2o_iovec_init(path, strlen(path)), m);
}

static void expect_no_route(const char *method, const char *path)
{
    forum_route_match_t m;
    int ret = route(method, path, &m);
    if (ret == 1)
        unit_fail("%s %s matched", method, path);
}

static void expect_param(const forum_route_match_t *m, size_t i, const char *name, const char *value)
{
    assert_true(i < m->num_params);
    assert_string_equal(m->params[i].name, name);
    assert_int_equal(m->params[i].value.len, strlen(value));
    assert_memory_equal(m->params[i].value.base, value, strlen(value));
}

/* The loaded plugins as forum_plugins_status writes them. */
static char *status_json(void)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen g = forum_json_gen();
    forum_plugins_status(g);
    yajl_gen_get_buf(g, &buf, &len);
    char *out = strndup((const char *)buf, len);
    yajl_gen_free(g);
    return out;
}

static void expect_status(const char *name, const char *version, int generation)
{
    char *json = status_json(), want[256], err[128];
    snprintf(want, sizeof(want), "\"name\":\"%s\",\"version\":\"%s\",\"generation\":%d,\"loaded_at\":\"", name, version,
             generation);
    if (strncmp(json, "[{", 2) != 0 || strncmp(json + 2, want, strlen(want)) != 0) {
        unit_note("status: %s", json);
        free(json);
        fail();
    }
    /* one plugin only */
    yajl_val v = forum_json_parse(json, strlen(json), err, sizeof(err));
    free(json);
    assert_non_null(v);
    assert_true(YAJL_IS_ARRAY(v));
    assert_int_equal(v->u.array.len, 1);
    yajl_tree_free(v);
}

static void test_route_with_params_matches(void **state)
{
    (void)state;
    forum_route_match_t m;
    assert_int_equal(route("GET", "/api/probe/echo/x/y", &m), 1);
    assert_non_null(m.plugin);
    assert_string_equal(forum_plugin_name(m.plugin), "probe");
    assert_non_null(m.fn);
    assert_int_equal(m.flags & FORUM_ROUTE_PUBLIC, 0);
    assert_int_equal(m.num_params, 2);
    expect_param(&m, 0, "a", "x");
    expect_param(&m, 1, "b", "y");

    /* a parameter takes the whole segment, whatever it holds */
    assert_int_equal(route("GET", "/api/probe/echo/hello%20world/:b", &m), 1);
    expect_param(&m, 0, "a", "hello%20world");
    expect_param(&m, 1, "b", ":b");

    /* the plugin's settings reach it by its name: as text, and typed as it declares them, or the declared default */
    assert_string_equal(forum_plugin_setting(m.plugin, "answer"), "9");
    assert_int_equal(forum_plugin_setting_uint(m.plugin, "answer"), 9);
    assert_int_equal(forum_plugin_setting_bool(m.plugin, "fail-init"), 0);
    assert_null(forum_plugin_setting(m.plugin, "flavour"));
    /* a setting the plugin does not declare, or asked for as another type, is 0 (and logged) */
    assert_int_equal(forum_plugin_setting_uint(m.plugin, "flavour"), 0);
    assert_int_equal(forum_plugin_setting_uint(m.plugin, "fail-init"), 0);
}

static void test_route_without_params_matches(void **state)
{
    (void)state;
    forum_route_match_t m;
    assert_int_equal(route("POST", "/api/probe/echo", &m), 1);
    assert_int_equal(m.num_params, 0);
    assert_int_equal(m.flags, 0);
    forum_route_fn echo_body = m.fn;
    assert_int_equal(route("POST", "/api/probe/items", &m), 1);
    assert_ptr_not_equal(m.fn, echo_body);
}

static void test_wrong_method_does_not_match(void **state)
{
    (void)state;
    expect_no_route("POST", "/api/probe/echo/x/y");
    expect_no_route("DELETE", "/api/probe/echo/x/y");
    expect_no_route("get", "/api/probe/echo/x/y");
    expect_no_route("GETX", "/api/probe/echo/x/y");
    expect_no_route("GET", "/api/probe/login");
    expect_no_route("", "/api/probe/whoami");
}

static void test_wrong_method_reports_the_path_exists(void **state)
{
    (void)state;
    /* forum.h: -1 when the path exists with another method */
    forum_route_match_t m;
    assert_int_equal(route("POST", "/api/probe/echo/x/y", &m), -1);
    assert_int_equal(route("GET", "/api/probe/login", &m), -1);
    assert_int_equal(route("GET", "/api/probe/nothing-here", &m), 0);
}

static void test_segment_count_must_match(void **state)
{
    (void)state;
    expect_no_route("GET", "/api/probe/echo/x/y/z");
    expect_no_route("GET", "/api/probe/echo/x");
    expect_no_route("GET", "/api/probe/echo");
    expect_no_route("GET", "/api/probe");
    expect_no_route("POST", "/api/probe/echo/extra");
    expect_no_route("GET", "/api/probe/whoami/x");
}

static void test_empty_segments_do_not_match(void **state)
{
    (void)state;
    expect_no_route("GET", "/api/probe/echo/x/y/");
    expect_no_route("GET", "/api/probe//echo/x/y");
    expect_no_route("GET", "//api/probe/echo/x/y");
    expect_no_route("GET", "/api/probe/echo//y");
    expect_no_route("GET", "/api/probe/echo/x//");
    expect_no_route("GET", "/api/probe/whoami/");
    expect_no_route("GET", "api/probe/whoami");
    expect_no_route("GET", "/");
    expect_no_route("GET", "");
    /* far more segments than any route has */
    expect_no_route("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z");
}

static void test_literal_segments_match_exactly(void **state)
{
    (void)state;
    forum_route_match_t m;
    expect_no_route("GET", "/api/probe/Whoami");
    expect_no_route("GET", "/api/probe/whoam");
    expect_no_route("GET", "/api/probe/whoamii");
    expect_no_route("GET", "/api/probe/echx/x/y");
    assert_int_equal(route("GET", "/api/probe/whoami", &m), 1);
}

static void test_public_flag_is_kept(void **state)
{
    (void)state;
    forum_route_match_t m;
    assert_int_equal(route("GET", "/api/probe/whoami", &m), 1);
    assert_true(m.flags & FORUM_ROUTE_PUBLIC);
    assert_int_equal(m.num_params, 0);
    assert_int_equal(route("POST", "/api/probe/login", &m), 1);
    assert_true(m.flags & FORUM_ROUTE_PUBLIC);
    assert_int_equal(route("POST", "/api/probe/logout", &m), 1);
    assert_false(m.flags & FORUM_ROUTE_PUBLIC);
}

static void test_frame_type_is_found_by_its_exact_name(void **state)
{
    (void)state;
    forum_plugin_t *plugin = NULL;
    forum_route_match_t m;
    assert_non_null(forum_plugins_frame("probe.echo", strlen("probe.echo"), &plugin));
    assert_int_equal(route("GET", "/api/probe/whoami", &m), 1);
    assert_ptr_equal(plugin, m.plugin);

    plugin = NULL;
    assert_null(forum_plugins_frame("nope", 4, &plugin));
    assert_null(forum_plugins_frame("probe.ech", 9, &plugin));
    assert_null(forum_plugins_frame("probe.echo", 9, &plugin));
    assert_null(forum_plugins_frame("probe.echoo", 11, &plugin));
    assert_null(forum_plugins_frame("ping", 4, &plugin));
    assert_null(forum_plugins_frame("", 0, &plugin));
    assert_null(plugin);
}

static void late_frame(forum_ws_t *ws, yajl_val frame)
{
    (void)ws;
    (void)frame;
}

static void late_event(const forum_event_t *ev)
{
    (void)ev;
}

static void test_registration_outside_init_is_refused(void **state)
{
    (void)state;
    forum_route_match_t m;
    forum_plugin_t *plugin = NULL;
    assert_int_equal(route("GET", "/api/probe/whoami", &m), 1);
    assert_int_equal(forum_plugin_add_route(m.plugin, "GET", "/api/late", 0, m.fn), -1);
    assert_int_equal(forum_plugin_add_frame(m.plugin, "late.frame", late_frame), -1);
    assert_int_equal(forum_plugin_add_event(m.plugin, "ws.open", late_event), -1);
    assert_int_equal(forum_plugin_add_migration(m.plugin, 2, "CREATE TABLE late (x)"), -1);
    expect_no_route("GET", "/api/late");
    assert_null(forum_plugins_frame("late.frame", strlen("late.frame"), &plugin));
}

static void test_probe_migration_ran(void **state)
{
    (void)state;
    forum_stmt_t *s = forum_db_stmt("SELECT count(*) FROM forum_migrations WHERE owner = 'probe' AND number = 1");
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    assert_int_equal(forum_db_col_int(s, 0), 1);
    forum_db_reset_active();
    expect_status("probe", "1.0.0", 1);
}

static void test_wrong_abi_is_refused(void **state)
{
    (void)state;
    assert_int_equal(forum_plugins_load("wrong_abi"), -1);
    expect_status("probe", "1.0.0", 1);
}

static void test_no_descriptor_is_refused(void **state)
{
    (void)state;
    assert_int_equal(forum_plugins_load("no_descriptor"), -1);
    expect_status("probe", "1.0.0", 1);
}

static void test_failed_init_leaves_no_route(void **state)
{
    (void)state;
    forum_route_match_t m;
    assert_int_equal(forum_plugins_load("init_fails"), -1);
    expect_no_route("GET", "/api/init_fails");
    expect_status("probe", "1.0.0", 1);
    /* the plugins that were loaded keep serving */
    assert_int_equal(route("GET", "/api/probe/echo/x/y", &m), 1);
}

static void test_unlisted_or_missing_plugin_is_refused(void **state)
{
    fixture_t *f = *state;
    char path[PATH_MAX + 64];
    assert_int_equal(forum_plugins_load("not_in_config"), -1);
    snprintf(path, sizeof(path), "%s/init_fails.so", f->plugins);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(forum_plugins_load("init_fails"), -1);
    expect_status("probe", "1.0.0", 1);
}

static void test_reload_swaps_in_a_new_generation(void **state)
{
    (void)state;
    forum_route_match_t m;
    assert_int_equal(route("GET", "/api/probe/whoami", &m), 1);
    forum_plugin_t *first = m.plugin;
    assert_int_equal(forum_plugins_load("probe"), 0);
    forum_db_reset_active();
    expect_status("probe", "1.0.0", 2);
    /* the new generation's routes replace the old ones (no "already served" conflict with itself) */
    assert_int_equal(route("GET", "/api/probe/echo/1/2", &m), 1);
    assert_ptr_not_equal(m.plugin, first);
    expect_param(&m, 0, "a", "1");
    expect_param(&m, 1, "b", "2");
}

static void test_refused_swap_keeps_the_current_generation(void **state)
{
    fixture_t *f = *state;
    forum_route_match_t m;
    assert_int_equal(route("GET", "/api/probe/whoami", &m), 1);
    forum_plugin_t *current = m.plugin;

    /* another plugin's file lands under probe's name: its descriptor names another plugin */
    install_plugin(f, "init_fails", "probe");
    assert_int_equal(forum_plugins_load("probe"), -1);
    /* a file built for another ABI */
    install_plugin(f, "wrong_abi", "probe");
    assert_int_equal(forum_plugins_load("probe"), -1);

    expect_status("probe", "1.0.0", 1);
    assert_int_equal(route("GET", "/api/probe/echo/x/y", &m), 1);
    assert_ptr_equal(m.plugin, current);
    expect_no_route("GET", "/api/init_fails");
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_route_with_params_matches),
        TEST(test_route_without_params_matches),
        TEST(test_wrong_method_does_not_match),
        TEST(test_wrong_method_reports_the_path_exists),
        TEST(test_segment_count_must_match),
        TEST(test_empty_segments_do_not_match),
        TEST(test_literal_segments_match_exactly),
        TEST(test_public_flag_is_kept),
        TEST(test_frame_type_is_found_by_its_exact_name),
        TEST(test_registration_outside_init_is_refused),
        TEST(test_probe_migration_ran),
        TEST(test_wrong_abi_is_refused),
        TEST(test_no_descriptor_is_refused),
        TEST(test_failed_init_leaves_no_route),
        TEST(test_unlisted_or_missing_plugin_is_refused),
        TEST(test_reload_swaps_in_a_new_generation),
        TEST(test_refused_swap_keeps_the_current_generation),
    };
    forum_log_set_level(FORUM_LOG_WARN);
    return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
