/*
 * core/config.c: forum.yaml read into forum_config_t. Each test writes its YAML into a scratch folder
 * that also holds the files a configuration may point at (certificates, plugins, public files).
 * "@DIR@" in a test's YAML stands for that folder.
 */
#include "unit.h"
#include "../../core/config.h"

typedef struct fixture {
    char dir[PATH_MAX];
    char yaml[PATH_MAX]; /* the configuration file of the test */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char path[PATH_MAX];
    unit_mkdtemp(f->dir, sizeof(f->dir));
    unit_path(f->yaml, sizeof(f->yaml), f->dir, "forum.yaml");
    mkdir(unit_path(path, sizeof(path), f->dir, "public"), 0700);
    mkdir(unit_path(path, sizeof(path), f->dir, "plugins"), 0700);
    unit_write(unit_path(path, sizeof(path), f->dir, "plugins/alpha.so"), "not really a shared object");
    unit_write(unit_path(path, sizeof(path), f->dir, "plugins/beta_2.so"), "nor this one");
    unit_write(unit_path(path, sizeof(path), f->dir, "cert.pem"), "any content: the parser only checks it can be read");
    unit_write(unit_path(path, sizeof(path), f->dir, "key.pem"), "any content");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    unit_rmtree(f->dir);
    free(f);
    return 0;
}

/* Writes `yaml` (with @DIR@ replaced) as the fixture's configuration file. */
static void write_conf(fixture_t *f, const char *yaml)
{
    size_t cap = strlen(yaml) * 2 + 16 * strlen(f->dir) + 1, n = 0;
    char *out = malloc(cap);
    for (const char *p = yaml; *p != '\0';) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            size_t len = strlen(f->dir);
            assert_true(n + len < cap);
            memcpy(out + n, f->dir, len);
            n += len;
            p += 5;
        } else {
            assert_true(n + 1 < cap);
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    unit_write(f->yaml, out);
    free(out);
}

static forum_config_t *load_ok(fixture_t *f, const char *yaml)
{
    char err[1024] = "";
    write_conf(f, yaml);
    forum_config_t *conf = forum_config_load(f->yaml, err, sizeof(err));
    if (conf == NULL)
        unit_fail("refused: %s", err);
    return conf;
}

/* The configuration must be refused with "FILE:LINE: ..." naming `line` and containing `fragment`. */
static void expect_error(fixture_t *f, const char *yaml, int line, const char *fragment)
{
    char err[1024] = "", prefix[PATH_MAX + 32];
    write_conf(f, yaml);
    forum_config_t *conf = forum_config_load(f->yaml, err, sizeof(err));
    if (conf != NULL) {
        forum_config_free(conf);
        unit_fail("accepted, expected an error at line %d containing \"%s\"", line, fragment);
    }
    snprintf(prefix, sizeof(prefix), "%s:%d: ", f->yaml, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err + strlen(prefix), fragment) == NULL)
        unit_fail("got \"%s\", expected \"%s...%s...\"", err, prefix, fragment);
}

static const char full_yaml[] = "listen:\n"                                /* 1 */
                                "  - 8080\n"                               /* 2 */
                                "  - host: 127.0.0.1\n"                    /* 3 */
                                "    port: 8443\n"                         /* 4 */
                                "    ssl:\n"                               /* 5 */
                                "      certificate-file: @DIR@/cert.pem\n" /* 6 */
                                "      key-file: @DIR@/key.pem\n"          /* 7 */
                                "  - host: '::1'\n"                        /* 8 */
                                "    port: 65535\n"                        /* 9 */
                                "database: @DIR@/forum.db\n"               /* 10 */
                                "public-dir: @DIR@/public\n"               /* 11 */
                                "plugins:\n"                               /* 12 */
                                "  dir: @DIR@/plugins\n"                   /* 13 */
                                "  load: [alpha, beta_2]\n"                /* 14 */
                                "  watch: yes\n"                           /* 15 */
                                "  settings:\n"                            /* 16 */
                                "    alpha:\n"                             /* 17 */
                                "      greeting: hello world\n"            /* 18 */
                                "      retries: 5\n"                       /* 19 */
                                "    beta_2:\n"                            /* 20 */
                                "      mode: fast\n"                       /* 21 */
                                "limits:\n"                                /* 22 */
                                "  body-size: 1MiB\n"                      /* 23 */
                                "  ws-message-size: 64KiB\n"               /* 24 */
                                "  ws-send-queue: 65536\n"                 /* 25 */
                                "  ws-ping-interval: 2.5\n"                /* 26 */
                                "  ws-idle-timeout: 7.25\n"                /* 27 */
                                "  ws-slow-grace: .5\n"                    /* 28 */
                                "  connections: 100\n"                     /* 29 */
                                "  session-lifetime: 3600\n"               /* 30 */
                                "  shutdown-timeout: 1.001\n"              /* 31 */
                                "status:\n"                                /* 32 */
                                "  allow-remote: true\n"                   /* 33 */
                                "access-log: off\n";                       /* 34 */

static void test_full_config_gives_every_value(void **state)
{
    fixture_t *f = *state;
    char want[PATH_MAX];
    forum_config_t *conf = load_ok(f, full_yaml);

    assert_string_equal(conf->path, f->yaml);
    assert_int_equal(conf->num_listen, 3);
    assert_null(conf->listen[0].host);
    assert_int_equal(conf->listen[0].port, 8080);
    assert_null(conf->listen[0].cert_file);
    assert_null(conf->listen[0].key_file);
    assert_int_equal(conf->listen[0].line, 2);
    assert_string_equal(conf->listen[1].host, "127.0.0.1");
    assert_int_equal(conf->listen[1].port, 8443);
    assert_string_equal(conf->listen[1].cert_file, unit_path(want, sizeof(want), f->dir, "cert.pem"));
    assert_string_equal(conf->listen[1].key_file, unit_path(want, sizeof(want), f->dir, "key.pem"));
    assert_int_equal(conf->listen[1].line, 3);
    assert_string_equal(conf->listen[2].host, "::1");
    assert_int_equal(conf->listen[2].port, 65535);
    assert_null(conf->listen[2].cert_file);
    assert_int_equal(conf->listen[2].line, 8);

    assert_string_equal(conf->database, unit_path(want, sizeof(want), f->dir, "forum.db"));
    assert_string_equal(conf->public_dir, unit_path(want, sizeof(want), f->dir, "public"));

    assert_string_equal(conf->plugins.dir, unit_path(want, sizeof(want), f->dir, "plugins"));
    assert_int_equal(conf->plugins.num_load, 2);
    assert_string_equal(conf->plugins.load[0], "alpha");
    assert_string_equal(conf->plugins.load[1], "beta_2");
    assert_int_equal(conf->plugins.watch, 1);
    assert_int_equal(conf->plugins.num_settings, 3);
    assert_string_equal(conf->plugins.settings[0].plugin, "alpha");
    assert_string_equal(conf->plugins.settings[0].key, "greeting");
    assert_string_equal(conf->plugins.settings[0].value, "hello world");
    assert_string_equal(conf->plugins.settings[1].plugin, "alpha");
    assert_string_equal(conf->plugins.settings[1].key, "retries");
    assert_string_equal(conf->plugins.settings[1].value, "5");
    assert_string_equal(conf->plugins.settings[2].plugin, "beta_2");
    assert_string_equal(conf->plugins.settings[2].key, "mode");
    assert_string_equal(conf->plugins.settings[2].value, "fast");

    assert_int_equal(conf->limits.body_size, 1024 * 1024);
    assert_int_equal(conf->limits.ws_message_size, 64 * 1024);
    assert_int_equal(conf->limits.ws_send_queue, 65536);
    assert_int_equal(conf->limits.ws_ping_interval_ms, 2500);
    assert_int_equal(conf->limits.ws_idle_timeout_ms, 7250);
    assert_int_equal(conf->limits.ws_slow_grace_ms, 500);
    assert_int_equal(conf->limits.connections, 100);
    assert_int_equal(conf->limits.session_lifetime_s, 3600);
    assert_int_equal(conf->limits.shutdown_timeout_ms, 1001); /* rounded, not truncated */

    assert_int_equal(conf->status.allow_remote, 1);
    assert_int_equal(conf->access_log, 0);
    forum_config_free(conf);
}

static void test_minimal_config_gives_the_defaults(void **state)
{
    fixture_t *f = *state;
    forum_config_t *conf = load_ok(f, "listen: 8080\n"
                                      "database: forum.db\n");
    assert_int_equal(conf->num_listen, 1);
    assert_null(conf->listen[0].host);
    assert_int_equal(conf->listen[0].port, 8080);
    assert_null(conf->listen[0].cert_file);
    assert_null(conf->listen[0].key_file);
    assert_int_equal(conf->listen[0].line, 1);
    assert_string_equal(conf->database, "forum.db");
    assert_string_equal(conf->public_dir, "public");
    assert_null(conf->plugins.dir);
    assert_int_equal(conf->plugins.num_load, 0);
    assert_int_equal(conf->plugins.watch, 0);
    assert_int_equal(conf->plugins.num_settings, 0);
    assert_int_equal(conf->limits.body_size, 64 * 1024);
    assert_int_equal(conf->limits.ws_message_size, 64 * 1024);
    assert_int_equal(conf->limits.ws_send_queue, 1024 * 1024);
    assert_int_equal(conf->limits.ws_ping_interval_ms, 30000);
    assert_int_equal(conf->limits.ws_idle_timeout_ms, 75000);
    assert_int_equal(conf->limits.ws_slow_grace_ms, 10000);
    assert_int_equal(conf->limits.connections, 60000);
    assert_int_equal(conf->limits.session_lifetime_s, 30 * 86400);
    assert_int_equal(conf->limits.shutdown_timeout_ms, 10000);
    assert_int_equal(conf->limits.header_timeout_ms, 10000);
    assert_int_equal(conf->status.allow_remote, 0);
    assert_int_equal(conf->access_log, 1);
    forum_config_free(conf);
}

static void test_single_listen_mapping_is_a_list_of_one(void **state)
{
    fixture_t *f = *state;
    forum_config_t *conf = load_ok(f, "database: forum.db\n"
                                      "listen:\n"
                                      "  host: localhost\n"
                                      "  port: 9000\n");
    assert_int_equal(conf->num_listen, 1);
    assert_string_equal(conf->listen[0].host, "localhost");
    assert_int_equal(conf->listen[0].port, 9000);
    assert_int_equal(conf->listen[0].line, 3);
    forum_config_free(conf);
}

static void test_booleans_accept_yes_no_on_off_true_false(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *word;
        int value;
    } words[] = {{"true", 1}, {"yes", 1}, {"on", 1}, {"false", 0}, {"no", 0}, {"off", 0}};
    for (size_t i = 0; i != sizeof(words) / sizeof(words[0]); ++i) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "listen: 80\ndatabase: x.db\naccess-log: %s\nstatus:\n  allow-remote: %s\n", words[i].word,
                 words[i].word);
        forum_config_t *conf = load_ok(f, yaml);
        assert_int_equal(conf->access_log, words[i].value);
        assert_int_equal(conf->status.allow_remote, words[i].value);
        forum_config_free(conf);
    }
}

static void test_unknown_top_level_key_is_refused(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "colour: blue\n",
                 3, "unknown key 'colour'");
}

static void test_unknown_key_in_listen_is_refused(void **state)
{
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - 8080\n"
                 "  - port: 8081\n"
                 "    hots: localhost\n",
                 5, "listen: unknown key 'hots'");
}

static void test_unknown_key_in_limits_is_refused(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  body-size: 1MiB\n"
                 "  bodysize: 2MiB\n",
                 5, "limits: unknown key 'bodysize'");
}

static void test_unknown_key_in_plugins_is_refused(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  watch: on\n"
                 "  directory: plugins\n",
                 5, "plugins: unknown key 'directory'");
}

static void test_unknown_key_in_ssl_is_refused(void **state)
{
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - port: 8443\n"
                 "    ssl:\n"
                 "      certificate-file: @DIR@/cert.pem\n"
                 "      key-file: @DIR@/key.pem\n"
                 "      chain-file: @DIR@/cert.pem\n",
                 7, "listen.ssl: unknown key 'chain-file'");
}

static void test_unknown_key_in_status_is_refused(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "status:\n"
                 "  allow_remote: true\n",
                 4, "status: unknown key 'allow_remote'");
}

static void test_port_must_be_a_number(void **state)
{
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - port: abc\n",
                 3, "listen.port: expected a whole number");
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - port: -1\n",
                 3, "listen.port: expected a whole number");
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - 80abc\n",
                 3, "listen: expected a whole number");
}

static void test_port_must_be_in_range(void **state)
{
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - 8080\n"
                 "  - port: 70000\n",
                 4, "listen.port: must be between 1 and 65535");
    expect_error(*state,
                 "database: forum.db\n"
                 "listen: 0\n",
                 2, "must be between 1 and 65535");
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - host: localhost\n",
                 3, "listen: port is required");
}

static void test_body_size_must_be_a_size(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  body-size: lots\n",
                 4, "limits.body-size: expected a size");
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  body-size: 1GiB\n",
                 4, "limits.body-size: expected a size");
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  body-size: 65MiB\n",
                 4, "limits.body-size: must be between");
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  ws-message-size: 99999999999999999999KiB\n",
                 4, "limits.ws-message-size: must be between");
}

static void test_seconds_must_be_a_number(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  shutdown-timeout: soon\n",
                 4, "limits.shutdown-timeout: expected a number of seconds");
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  ws-slow-grace: 2s\n",
                 4, "limits.ws-slow-grace: expected a number of seconds");
}

static void test_header_timeout_is_seconds_in_range(void **state)
{
    forum_config_t *conf = load_ok(*state, "listen: 8080\n"
                                           "database: forum.db\n"
                                           "limits:\n"
                                           "  header-timeout: 2.5\n");
    assert_int_equal(conf->limits.header_timeout_ms, 2500);
    forum_config_free(conf);
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  header-timeout: 0\n",
                 4, "limits.header-timeout: must be between 0.1 and 3600 seconds");
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  header-timeout: 10s\n",
                 4, "limits.header-timeout: expected a number of seconds");
}

static void test_watch_must_be_a_boolean(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  dir: @DIR@/plugins\n"
                 "  watch: maybe\n",
                 5, "plugins.watch: expected true or false");
}

static void test_database_is_required(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "access-log: on\n",
                 1, "database: required");
}

static void test_database_folder_must_exist(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: @DIR@/no/such/folder/forum.db\n",
                 2, "database:");
}

static void test_database_mapping_names_postgresql(void **state)
{
    fixture_t *f = *state;
    forum_config_t *conf = load_ok(f, "listen: 8080\n"
                                      "database:\n"
                                      "  postgres: \"host=127.0.0.1 port=5432 dbname=forum user=forum\"\n"
                                      "  connections: 8\n"
                                      "  statement-timeout: 2.5\n");
    assert_null(conf->database);
    assert_string_equal(conf->pg_conninfo, "host=127.0.0.1 port=5432 dbname=forum user=forum");
    assert_int_equal(conf->pg_connections, 8);
    assert_int_equal(conf->pg_statement_timeout_ms, 2500);
    forum_config_free(conf);

    conf = load_ok(f, "listen: 8080\n"
                      "database: {postgres: \"dbname=forum\"}\n");
    assert_int_equal(conf->pg_connections, 4);
    assert_int_equal(conf->pg_statement_timeout_ms, 5000);
    forum_config_free(conf);
}

static void test_database_mapping_is_checked(void **state)
{
    fixture_t *f = *state;
    expect_error(f, "listen: 8080\ndatabase:\n  connections: 2\n", 3, "database.postgres: required");
    expect_error(f, "listen: 8080\ndatabase:\n  postgres: \"dbname=forum\"\n  pool: 2\n", 4, "database: unknown key 'pool'");
    expect_error(f, "listen: 8080\ndatabase:\n  postgres: \"dbname=forum\"\n  connections: 0\n", 4,
                 "database.connections: must be between 1 and 64");
    expect_error(f, "listen: 8080\ndatabase:\n  postgres: \"dbname=forum\"\n  connections: 65\n", 4,
                 "database.connections: must be between 1 and 64");
    expect_error(f, "listen: 8080\ndatabase:\n  postgres: \"dbname=forum\"\n  statement-timeout: soon\n", 4,
                 "database.statement-timeout: expected a number of seconds");
    /* libpq's own parser says what is wrong with the string, before any server is asked */
    expect_error(f, "listen: 8080\ndatabase:\n  postgres: \"host=127.0.0.1 dbname='unterminated\"\n", 3,
                 "database.postgres: not a libpq connection string");
    expect_error(f, "listen: 8080\ndatabase:\n  postgres: \"colour=blue\"\n", 3, "database.postgres: not a libpq connection string");
    expect_error(f, "listen: 8080\ndatabase: [a, b]\n", 2, "database: expected a SQLite file's path or a mapping");
    expect_error(f, "listen: 8080\ndatabase: forum.db\ndatabase: {postgres: \"dbname=forum\"}\n", 3, "database: given twice");
}

static void test_listen_is_required(void **state)
{
    expect_error(*state, "database: forum.db\n", 1, "listen: at least one listener is required");
}

static void test_loaded_plugin_file_must_exist(void **state)
{
    fixture_t *f = *state;
    expect_error(f,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  dir: @DIR@/plugins\n"
                 "  load:\n"
                 "    - alpha\n"
                 "    - ghost\n",
                 7, "ghost.so");
}

static void test_plugin_listed_twice_is_refused(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  dir: @DIR@/plugins\n"
                 "  load:\n"
                 "    - alpha\n"
                 "    - beta_2\n"
                 "    - alpha\n",
                 8, "'alpha' is listed twice");
}

static void test_plugin_names_are_checked(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  dir: @DIR@/plugins\n"
                 "  load: [alpha, ../etc/evil]\n",
                 5, "plugins.load: a plugin name is");
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  load: [alpha]\n",
                 4, "plugins.dir: required");
}

static void test_unreadable_certificate_is_refused(void **state)
{
    fixture_t *f = *state;
    char err[1024], missing[PATH_MAX];
    expect_error(f,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - port: 8443\n"
                 "    ssl:\n"
                 "      certificate-file: @DIR@/missing-cert.pem\n"
                 "      key-file: @DIR@/key.pem\n",
                 5, "listen.ssl.certificate-file: cannot read");
    /* the message names the file */
    write_conf(f, "database: forum.db\n"
                  "listen:\n"
                  "  - port: 8443\n"
                  "    ssl:\n"
                  "      certificate-file: @DIR@/missing-cert.pem\n"
                  "      key-file: @DIR@/key.pem\n");
    assert_null(forum_config_load(f->yaml, err, sizeof(err)));
    assert_non_null(strstr(err, unit_path(missing, sizeof(missing), f->dir, "missing-cert.pem")));
}

static void test_unreadable_key_points_at_its_line(void **state)
{
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - port: 8443\n"
                 "    ssl:\n"
                 "      certificate-file: @DIR@/cert.pem\n"
                 "      key-file: @DIR@/missing-key.pem\n",
                 6, "listen.ssl.key-file: cannot read");
}

static void test_ssl_needs_both_files(void **state)
{
    expect_error(*state,
                 "database: forum.db\n"
                 "listen:\n"
                 "  - port: 8443\n"
                 "    ssl:\n"
                 "      certificate-file: @DIR@/cert.pem\n",
                 5, "listen.ssl: both certificate-file and key-file are required");
}

static void test_yaml_syntax_error_names_its_line(void **state)
{
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "access-log: on: off\n"
                 "status:\n"
                 "  allow-remote: no\n",
                 3, "mapping values are not allowed");
}

static void test_empty_file_is_refused(void **state)
{
    expect_error(*state, "", 1, "the file is empty");
    expect_error(*state, "# only a comment\n\n", 1, "the file is empty");
}

static void test_nonexistent_config_file_is_named(void **state)
{
    fixture_t *f = *state;
    char err[1024] = "", path[PATH_MAX];
    unit_path(path, sizeof(path), f->dir, "absent.yaml");
    assert_null(forum_config_load(path, err, sizeof(err)));
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_idle_timeout_must_exceed_ping_interval(void **state)
{
    fixture_t *f = *state;
    expect_error(f,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  ws-idle-timeout: 10\n"
                 "  ws-ping-interval: 10\n",
                 4, "ws-idle-timeout must be longer than ws-ping-interval");
    expect_error(f,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  ws-idle-timeout: 5\n"
                 "  ws-ping-interval: 10\n",
                 4, "ws-idle-timeout must be longer than ws-ping-interval");
    /* against the default idle timeout (75 s) */
    expect_error(f,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "limits:\n"
                 "  ws-ping-interval: 80\n",
                 4, "ws-idle-timeout must be longer than ws-ping-interval");

    forum_config_t *conf = load_ok(f, "listen: 8080\n"
                                      "database: forum.db\n"
                                      "limits:\n"
                                      "  ws-ping-interval: 10\n"
                                      "  ws-idle-timeout: 10.001\n");
    assert_int_equal(conf->limits.ws_ping_interval_ms, 10000);
    assert_int_equal(conf->limits.ws_idle_timeout_ms, 10001);
    forum_config_free(conf);
}

static void test_repeated_load_list_is_refused(void **state)
{
    /* YAML forbids a repeated key but libyaml accepts it: forumd refuses it, and nothing leaks (LSan run) */
    fixture_t *f = *state;
    expect_error(f,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "plugins:\n"
                 "  dir: @DIR@/plugins\n"
                 "  load: [alpha]\n"
                 "  load: [beta_2]\n",
                 6, "plugins.load: given twice");
}

/* A growing buffer of YAML text for the tests that need large files. */
typedef struct text {
    char *s;
    size_t len, cap;
} text_t;

static void text_add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (t->s != NULL && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n + 64;
        t->s = realloc(t->s, t->cap);
    }
}

static void test_deep_nesting_is_refused_where_it_passes_the_bound(void **state)
{
    fixture_t *f = *state;
    text_t t = {0};
    /* 100,000 nested flow sequences: refused as soon as the 33rd opens, not after building them all */
    text_add(&t, "listen: ");
    for (int i = 0; i != 100000; ++i)
        text_add(&t, "[");
    for (int i = 0; i != 100000; ++i)
        text_add(&t, "]");
    text_add(&t, "\n");
    expect_error(f, t.s, 1, "nested more than 32 levels deep");
    free(t.s);

    /* block mappings, one level a line: the mapping that starts on line 33 is the 33rd level */
    memset(&t, 0, sizeof(t));
    for (int i = 0; i != 40; ++i)
        text_add(&t, "%*sk:\n", 2 * i, "");
    expect_error(f, t.s, 33, "nested more than 32 levels deep");
    free(t.s);

    /* 32 levels are within the bound: what is refused then is the unknown key */
    memset(&t, 0, sizeof(t));
    for (int i = 0; i != 32; ++i)
        text_add(&t, "%*sk:\n", 2 * i, "");
    text_add(&t, "%*sv\n", 2 * 32, "");
    expect_error(f, t.s, 1, "unknown key 'k'");
    free(t.s);
}

static void test_too_many_values_are_refused(void **state)
{
    fixture_t *f = *state;
    char head[] = "listen: 8080\n"
                  "database: forum.db\n"
                  "plugins:\n"
                  "  dir: @DIR@/plugins\n"
                  "  load: [alpha]\n"
                  "  settings:\n"
                  "    alpha:\n"; /* 16 values: 4 mappings, a sequence and 11 scalars */
    text_t t = {0};

    /* 16 + 2 * 4992 = 10,000 values pass */
    text_add(&t, "%s", head);
    for (int i = 1; i <= 4992; ++i)
        text_add(&t, "      k%d: v\n", i);
    forum_config_t *conf = load_ok(f, t.s);
    assert_int_equal(conf->plugins.num_settings, 4992);
    forum_config_free(conf);
    /* the 10,001st value is the key of setting 4993, on line 7 + 4993 */
    text_add(&t, "      k4993: v\n");
    expect_error(f, t.s, 5000, "more than 10000 values");
    free(t.s);

    /* an alias costs nothing in the file but is a value like any other */
    memset(&t, 0, sizeof(t));
    text_add(&t, "%s      k0: &v value\n", head);
    for (int i = 1; i <= 10000; ++i)
        text_add(&t, "      k%d: *v\n", i);
    expect_error(f, t.s, 5000, "more than 10000 values"); /* k4992's key, on line 8 + 4992 */
    free(t.s);
}

static void test_long_values_and_large_files_are_refused(void **state)
{
    fixture_t *f = *state;
    char err[1024] = "";
    text_t t = {0};

    char *name = malloc(4098);
    memset(name, 'd', 4097);
    name[4097] = '\0';

    /* a value of 4096 bytes is within the bound */
    text_add(&t, "listen: 8080\ndatabase: %.4096s\n", name);
    forum_config_t *conf = load_ok(f, t.s);
    assert_int_equal(strlen(conf->database), 4096);
    forum_config_free(conf);
    free(t.s);

    memset(&t, 0, sizeof(t));
    text_add(&t, "listen: 8080\ndatabase: %s\n", name);
    expect_error(f, t.s, 2, "a value longer than 4096 bytes");
    free(t.s);
    free(name);

    /* a file of more than 1 MiB is refused before it is parsed */
    memset(&t, 0, sizeof(t));
    text_add(&t, "listen: 8080\ndatabase: forum.db\n");
    while (t.len <= 1024 * 1024)
        text_add(&t, "# a comment line to make the file large\n");
    write_conf(f, t.s);
    assert_null(forum_config_load(f->yaml, err, sizeof(err)));
    assert_int_equal(strncmp(err, f->yaml, strlen(f->yaml)), 0);
    assert_non_null(strstr(err, ": larger than 1 MiB"));
    free(t.s);
}

static void test_a_second_document_is_refused(void **state)
{
    /* libyaml's loader reads the first document only: what follows would be ignored without a word */
    expect_error(*state,
                 "listen: 8080\n"
                 "database: forum.db\n"
                 "---\n"
                 "access-log: off\n",
                 3, "a second YAML document");
}

static void test_parse_from_memory_is_load_from_a_file(void **state)
{
    fixture_t *f = *state;
    const char yaml[] = "listen: 8080\n"
                        "database: forum.db\n"
                        "limits:\n"
                        "  body-size: 1MiB\n";
    char err[1024] = "";
    forum_config_t *conf = forum_config_parse("memory.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err));
    if (conf == NULL)
        unit_fail("refused: %s", err);
    assert_string_equal(conf->path, "memory.yaml");
    assert_int_equal(conf->listen[0].port, 8080);
    assert_int_equal(conf->limits.body_size, 1024 * 1024);
    forum_config_free(conf);
    /* the length is the length: what follows it is not read */
    assert_null(forum_config_parse("memory.yaml", yaml, strlen("listen: 8080\n"), err, sizeof(err)));
    assert_string_equal(err, "memory.yaml:1: database: required");
    (void)f;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_config_gives_every_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimal_config_gives_the_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_listen_mapping_is_a_list_of_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_booleans_accept_yes_no_on_off_true_false, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_top_level_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_in_listen_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_in_limits_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_in_plugins_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_in_ssl_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_in_status_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_must_be_a_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_must_be_in_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_size_must_be_a_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seconds_must_be_a_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_timeout_is_seconds_in_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_must_be_a_boolean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_is_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_mapping_names_postgresql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_mapping_is_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_folder_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_is_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loaded_plugin_file_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_listed_twice_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_names_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_certificate_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_key_points_at_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssl_needs_both_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_syntax_error_names_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonexistent_config_file_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_must_exceed_ping_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_load_list_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_nesting_is_refused_where_it_passes_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_values_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_values_and_large_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_second_document_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_from_memory_is_load_from_a_file, setup, teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
