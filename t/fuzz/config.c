/*
 * Fuzzes core/config.c through forum_config_parse (the YAML in memory, named "fuzz.yaml"). Invariants: a
 * refusal is "fuzz.yaml:LINE: message" with a line the input has (or names the file); an accepted
 * configuration passes the checks the loader promises: listeners with ports and both TLS files or
 * neither, a database, plugin names that are valid and unique, every limit within its documented range.
 * Paths in the input are only stat'ed and access'ed by the loader, never opened for writing.
 */
#include <string.h>
#include "../../core/config.h"
#include "fuzz.h"

#define NAME "fuzz.yaml"

/*
 * The most lines libyaml can count in the input: it breaks lines at LF, CR, NEL, LS and PS, and the end
 * of a stream whose last line has no break is one more (a syntax error there names the line after).
 */
static size_t max_lines(const uint8_t *p, size_t len)
{
    size_t n = 2;
    for (size_t i = 0; i != len; ++i)
        if (p[i] == '\n' || p[i] == '\r' || p[i] == 0x85 || p[i] == 0xe2)
            ++n;
    return n;
}

static void check_refusal(const char *err, const uint8_t *data, size_t size)
{
    const char *p = err + strlen(NAME);
    char *end;
    FUZZ_CHECK(strncmp(err, NAME, strlen(NAME)) == 0);
    if (*p == ':' && p[1] >= '0' && p[1] <= '9') {
        unsigned long line = strtoul(p + 1, &end, 10);
        FUZZ_CHECK(line >= 1 && line <= max_lines(data, size));
        FUZZ_CHECK(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
    } else {
        FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0'); /* about the whole file */
    }
}

static int valid_plugin_name(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");
    return n != 0 && n <= 64 && s[n] == '\0';
}

static void check_config(const forum_config_t *c)
{
    FUZZ_CHECK(strcmp(c->path, NAME) == 0);
    FUZZ_CHECK(c->num_listen >= 1 && c->listen != NULL);
    for (size_t i = 0; i != c->num_listen; ++i) {
        const forum_listen_conf_t *l = c->listen + i;
        FUZZ_CHECK(l->port >= 1 && l->port <= 65535);
        FUZZ_CHECK((l->cert_file == NULL) == (l->key_file == NULL));
        FUZZ_CHECK(l->host == NULL || *l->host != '\0');
        FUZZ_CHECK(l->line >= 1);
    }
    FUZZ_CHECK(c->database != NULL && *c->database != '\0');
    FUZZ_CHECK(c->public_dir != NULL && *c->public_dir != '\0');
    FUZZ_CHECK(c->plugins.num_load == 0 || c->plugins.dir != NULL);
    for (size_t i = 0; i != c->plugins.num_load; ++i) {
        FUZZ_CHECK(valid_plugin_name(c->plugins.load[i]));
        for (size_t j = 0; j != i; ++j)
            FUZZ_CHECK(strcmp(c->plugins.load[i], c->plugins.load[j]) != 0);
    }
    FUZZ_CHECK(c->plugins.load == NULL || c->plugins.load[c->plugins.num_load] == NULL);
    for (size_t i = 0; i != c->plugins.num_settings; ++i) {
        const forum_setting_t *s = c->plugins.settings + i;
        FUZZ_CHECK(s->plugin != NULL && valid_plugin_name(s->plugin) && s->key != NULL && s->value != NULL);
    }
    FUZZ_CHECK(c->plugins.watch == 0 || c->plugins.watch == 1);
    FUZZ_CHECK(c->status.allow_remote == 0 || c->status.allow_remote == 1);
    FUZZ_CHECK(c->access_log == 0 || c->access_log == 1);
    FUZZ_CHECK(c->limits.body_size >= 1024 && c->limits.body_size <= 64 * 1024 * 1024);
    FUZZ_CHECK(c->limits.ws_message_size >= 1024 && c->limits.ws_message_size <= 16 * 1024 * 1024);
    FUZZ_CHECK(c->limits.ws_send_queue >= 4096 && c->limits.ws_send_queue <= 256 * 1024 * 1024);
    FUZZ_CHECK(c->limits.ws_ping_interval_ms >= 50 && c->limits.ws_ping_interval_ms <= 3600 * 1000);
    FUZZ_CHECK(c->limits.ws_idle_timeout_ms >= 100 && c->limits.ws_idle_timeout_ms <= 86400 * 1000);
    FUZZ_CHECK(c->limits.ws_idle_timeout_ms > c->limits.ws_ping_interval_ms);
    FUZZ_CHECK(c->limits.ws_slow_grace_ms <= 3600 * 1000);
    FUZZ_CHECK(c->limits.shutdown_timeout_ms <= 3600 * 1000);
    FUZZ_CHECK(c->limits.connections >= 1 && c->limits.connections <= 10000000);
    FUZZ_CHECK(c->limits.session_lifetime_s >= 60 && c->limits.session_lifetime_s <= 10u * 365 * 86400);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";
    forum_config_t *conf = forum_config_parse(NAME, (const char *)data, size, err, sizeof(err));

    if (conf == NULL) {
        check_refusal(err, data, size);
        return 0;
    }
    check_config(conf);
    forum_config_free(conf);
    return 0;
}
