/*
 * Reads forum.yaml with libyaml into forum_config_t. Every unknown key, wrong type and bad value is
 * reported as "FILE:LINE: message"; nothing is guessed.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "config.h"

typedef struct parse_ctx {
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    yaml_node_t **load_nodes; /* the plugins.load entries, for messages about their files */
} parse_ctx_t;

static int vfail_line(parse_ctx_t *pc, size_t line, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(pc->err, pc->errlen, "%s:%zu: %s", pc->path, line, msg);
    return -1;
}

static int fail(parse_ctx_t *pc, yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_line(pc, node != NULL ? node->start_mark.line + 1 : 1, fmt, ap);
    va_end(ap);
    return -1;
}

/* For what is checked once the whole file is read, when only the line is kept. */
static int fail_line(parse_ctx_t *pc, size_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_line(pc, line, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *scalar(yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static int get_string(parse_ctx_t *pc, yaml_node_t *node, const char *key, char **out)
{
    const char *s = scalar(node);
    if (s == NULL || *s == '\0')
        return fail(pc, node, "%s: expected a non-empty string", key);
    free(*out);
    *out = strdup(s);
    return 0;
}

static int get_bool(parse_ctx_t *pc, yaml_node_t *node, const char *key, int *out)
{
    const char *s = scalar(node);
    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "on") == 0 || strcmp(s, "yes") == 0)) {
        *out = 1;
        return 0;
    }
    if (s != NULL && (strcmp(s, "false") == 0 || strcmp(s, "off") == 0 || strcmp(s, "no") == 0)) {
        *out = 0;
        return 0;
    }
    return fail(pc, node, "%s: expected true or false", key);
}

/* A whole number in [min, max]. */
static int get_uint(parse_ctx_t *pc, yaml_node_t *node, const char *key, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    const char *s = scalar(node);
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return fail(pc, node, "%s: expected a whole number", key);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return fail(pc, node, "%s: expected a whole number", key);
    if (v < min || v > max)
        return fail(pc, node, "%s: must be between %llu and %llu", key, min, max);
    *out = v;
    return 0;
}

/* A size in bytes: a whole number, optionally followed by KiB or MiB. */
static int get_size(parse_ctx_t *pc, yaml_node_t *node, const char *key, size_t min, size_t max, size_t *out)
{
    const char *s = scalar(node);
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return fail(pc, node, "%s: expected a size such as 65536, 64KiB or 1MiB", key);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10), mult = 1;
    if (strcmp(end, "KiB") == 0)
        mult = 1024;
    else if (strcmp(end, "MiB") == 0)
        mult = 1024 * 1024;
    else if (*end != '\0')
        return fail(pc, node, "%s: expected a size such as 65536, 64KiB or 1MiB", key);
    if (errno != 0 || v > max / mult || v * mult < min || v * mult > max)
        return fail(pc, node, "%s: must be between %zu and %zu bytes", key, min, max);
    *out = (size_t)(v * mult);
    return 0;
}

/* A duration in seconds (decimals allowed), stored in milliseconds. */
static int get_seconds(parse_ctx_t *pc, yaml_node_t *node, const char *key, double min, double max, unsigned *out_ms)
{
    const char *s = scalar(node);
    char *end;
    if (s == NULL || ((*s < '0' || *s > '9') && *s != '.'))
        return fail(pc, node, "%s: expected a number of seconds", key);
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0')
        return fail(pc, node, "%s: expected a number of seconds", key);
    if (v < min || v > max)
        return fail(pc, node, "%s: must be between %g and %g seconds", key, min, max);
    *out_ms = (unsigned)(v * 1000 + 0.5);
    return 0;
}

#define FOREACH_PAIR(pc, node, pair)                                                                                              \
    for (yaml_node_pair_t *pair = (node)->data.mapping.pairs.start; pair < (node)->data.mapping.pairs.top; ++pair)
#define KEY(pc, pair) yaml_document_get_node((pc)->doc, (pair)->key)
#define VALUE(pc, pair) yaml_document_get_node((pc)->doc, (pair)->value)

static int expect_mapping(parse_ctx_t *pc, yaml_node_t *node, const char *what)
{
    if (node->type != YAML_MAPPING_NODE)
        return fail(pc, node, "%s: expected a mapping", what);
    return 0;
}

static int parse_listen_entry(parse_ctx_t *pc, yaml_node_t *node, forum_listen_conf_t *l)
{
    unsigned long long port;
    l->line = (int)node->start_mark.line + 1;
    if (node->type == YAML_SCALAR_NODE) {
        if (get_uint(pc, node, "listen", 1, 65535, &port) != 0)
            return -1;
        l->port = (int)port;
        return 0;
    }
    if (expect_mapping(pc, node, "listen entry") != 0)
        return -1;
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k);
        if (key == NULL)
            return fail(pc, k, "listen: keys must be strings");
        if (strcmp(key, "port") == 0) {
            if (get_uint(pc, v, "listen.port", 1, 65535, &port) != 0)
                return -1;
            l->port = (int)port;
        } else if (strcmp(key, "host") == 0) {
            if (get_string(pc, v, "listen.host", &l->host) != 0)
                return -1;
        } else if (strcmp(key, "ssl") == 0) {
            if (expect_mapping(pc, v, "listen.ssl") != 0)
                return -1;
            FOREACH_PAIR(pc, v, sp)
            {
                yaml_node_t *sk = KEY(pc, sp), *sv = VALUE(pc, sp);
                const char *skey = scalar(sk);
                if (skey != NULL && strcmp(skey, "certificate-file") == 0) {
                    if (get_string(pc, sv, "listen.ssl.certificate-file", &l->cert_file) != 0)
                        return -1;
                    if (access(l->cert_file, R_OK) != 0)
                        return fail(pc, sv, "listen.ssl.certificate-file: cannot read %s: %s", l->cert_file, strerror(errno));
                } else if (skey != NULL && strcmp(skey, "key-file") == 0) {
                    if (get_string(pc, sv, "listen.ssl.key-file", &l->key_file) != 0)
                        return -1;
                    if (access(l->key_file, R_OK) != 0)
                        return fail(pc, sv, "listen.ssl.key-file: cannot read %s: %s", l->key_file, strerror(errno));
                } else {
                    return fail(pc, sk, "listen.ssl: unknown key '%s'", skey != NULL ? skey : "?");
                }
            }
            if (l->cert_file == NULL || l->key_file == NULL)
                return fail(pc, v, "listen.ssl: both certificate-file and key-file are required");
        } else {
            return fail(pc, k, "listen: unknown key '%s'", key);
        }
    }
    if (l->port == 0)
        return fail(pc, node, "listen: port is required");
    return 0;
}

static int parse_listen(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        /* a single entry is accepted as a list of one */
        conf->listen = calloc(1, sizeof(*conf->listen));
        conf->num_listen = 1;
        return parse_listen_entry(pc, node, conf->listen);
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0)
        return fail(pc, node, "listen: at least one listener is required");
    conf->listen = calloc(n, sizeof(*conf->listen));
    conf->num_listen = n;
    for (size_t i = 0; i != n; ++i)
        if (parse_listen_entry(pc, yaml_document_get_node(pc->doc, node->data.sequence.items.start[i]), conf->listen + i) != 0)
            return -1;
    return 0;
}

static int valid_plugin_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 64)
        return 0;
    for (; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int parse_settings(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    if (expect_mapping(pc, node, "plugins.settings") != 0)
        return -1;
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *plugin = scalar(k);
        if (plugin == NULL || !valid_plugin_name(plugin))
            return fail(pc, k, "plugins.settings: keys are plugin names");
        if (expect_mapping(pc, v, "plugins.settings entry") != 0)
            return -1;
        FOREACH_PAIR(pc, v, sp)
        {
            yaml_node_t *sk = KEY(pc, sp), *sv = VALUE(pc, sp);
            if (scalar(sk) == NULL || scalar(sv) == NULL)
                return fail(pc, sk, "plugins.settings.%s: each setting is a key and a scalar value", plugin);
            for (size_t i = 0; i != conf->plugins.num_settings; ++i)
                if (strcmp(conf->plugins.settings[i].plugin, plugin) == 0 && strcmp(conf->plugins.settings[i].key, scalar(sk)) == 0)
                    return fail(pc, sk, "plugins.settings.%s.%s: given twice (also on line %d)", plugin, scalar(sk),
                                conf->plugins.settings[i].line);
            conf->plugins.settings = realloc(conf->plugins.settings, (conf->plugins.num_settings + 1) * sizeof(forum_setting_t));
            forum_setting_t *s = conf->plugins.settings + conf->plugins.num_settings++;
            s->plugin = strdup(plugin);
            s->key = strdup(scalar(sk));
            s->value = strdup(scalar(sv));
            s->line = (int)sk->start_mark.line + 1;
        }
    }
    return 0;
}

static int parse_plugins(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    if (expect_mapping(pc, node, "plugins") != 0)
        return -1;
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k);
        if (key != NULL && strcmp(key, "dir") == 0) {
            if (get_string(pc, v, "plugins.dir", &conf->plugins.dir) != 0)
                return -1;
        } else if (key != NULL && strcmp(key, "watch") == 0) {
            if (get_bool(pc, v, "plugins.watch", &conf->plugins.watch) != 0)
                return -1;
        } else if (key != NULL && strcmp(key, "settings") == 0) {
            if (parse_settings(pc, v, conf) != 0)
                return -1;
        } else if (key != NULL && strcmp(key, "load") == 0) {
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(pc, v, "plugins.load: expected a list of plugin names");
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (conf->plugins.load != NULL)
                return fail(pc, k, "plugins.load: given twice");
            conf->plugins.load = calloc(n + 1, sizeof(char *));
            conf->plugins.load_lines = calloc(n + 1, sizeof(int));
            free(pc->load_nodes);
            pc->load_nodes = calloc(n + 1, sizeof(yaml_node_t *));
            for (size_t i = 0; i != n; ++i) {
                yaml_node_t *item = yaml_document_get_node(pc->doc, v->data.sequence.items.start[i]);
                const char *name = scalar(item);
                if (name == NULL || !valid_plugin_name(name))
                    return fail(pc, item, "plugins.load: a plugin name is lower-case letters, digits and _");
                for (size_t j = 0; j != i; ++j)
                    if (strcmp(conf->plugins.load[j], name) == 0)
                        return fail(pc, item, "plugins.load: '%s' is listed twice", name);
                conf->plugins.load[i] = strdup(name);
                conf->plugins.load_lines[i] = (int)item->start_mark.line + 1;
                pc->load_nodes[i] = item;
                conf->plugins.num_load = i + 1;
            }
        } else {
            return fail(pc, k, "plugins: unknown key '%s'", key != NULL ? key : "?");
        }
    }
    return 0;
}

static int parse_limits(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    unsigned long long n;
    yaml_node_t *idle = NULL, *ping = NULL;
    if (expect_mapping(pc, node, "limits") != 0)
        return -1;
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k);
        int ret;
        if (key == NULL)
            return fail(pc, k, "limits: keys must be strings");
        if (strcmp(key, "body-size") == 0) {
            ret = get_size(pc, v, "limits.body-size", 1024, 64 * 1024 * 1024, &conf->limits.body_size);
        } else if (strcmp(key, "ws-message-size") == 0) {
            ret = get_size(pc, v, "limits.ws-message-size", 1024, 16 * 1024 * 1024, &conf->limits.ws_message_size);
        } else if (strcmp(key, "ws-send-queue") == 0) {
            ret = get_size(pc, v, "limits.ws-send-queue", 4096, 256 * 1024 * 1024, &conf->limits.ws_send_queue);
        } else if (strcmp(key, "ws-ping-interval") == 0) {
            ping = v;
            ret = get_seconds(pc, v, "limits.ws-ping-interval", 0.05, 3600, &conf->limits.ws_ping_interval_ms);
        } else if (strcmp(key, "ws-idle-timeout") == 0) {
            idle = v;
            ret = get_seconds(pc, v, "limits.ws-idle-timeout", 0.1, 86400, &conf->limits.ws_idle_timeout_ms);
        } else if (strcmp(key, "ws-slow-grace") == 0) {
            ret = get_seconds(pc, v, "limits.ws-slow-grace", 0, 3600, &conf->limits.ws_slow_grace_ms);
        } else if (strcmp(key, "shutdown-timeout") == 0) {
            ret = get_seconds(pc, v, "limits.shutdown-timeout", 0, 3600, &conf->limits.shutdown_timeout_ms);
        } else if (strcmp(key, "header-timeout") == 0) {
            ret = get_seconds(pc, v, "limits.header-timeout", 0.1, 3600, &conf->limits.header_timeout_ms);
        } else if (strcmp(key, "connections") == 0) {
            if ((ret = get_uint(pc, v, "limits.connections", 1, 10000000, &n)) == 0)
                conf->limits.connections = (unsigned)n;
        } else if (strcmp(key, "session-lifetime") == 0) {
            if ((ret = get_uint(pc, v, "limits.session-lifetime", 60, 10LL * 365 * 86400, &n)) == 0)
                conf->limits.session_lifetime_s = (unsigned)n;
        } else if (strcmp(key, "h2-concurrent-streams") == 0) {
            if ((ret = get_uint(pc, v, "limits.h2-concurrent-streams", 1, 100, &n)) == 0)
                conf->limits.h2_concurrent_streams = (unsigned)n;
        } else if (strcmp(key, "conn-pending") == 0) {
            ret = get_size(pc, v, "limits.conn-pending", 4096, 1024 * 1024 * 1024, &conf->limits.conn_pending);
        } else if (strcmp(key, "send-timeout") == 0) {
            ret = get_seconds(pc, v, "limits.send-timeout", 0.1, 3600, &conf->limits.send_timeout_ms);
        } else if (strcmp(key, "h2-stream-rate") == 0) {
            if ((ret = get_uint(pc, v, "limits.h2-stream-rate", 1, 1000000, &n)) == 0)
                conf->limits.h2_stream_rate = (unsigned)n;
        } else if (strcmp(key, "h2-stream-burst") == 0) {
            if ((ret = get_uint(pc, v, "limits.h2-stream-burst", 1, 1000000, &n)) == 0)
                conf->limits.h2_stream_burst = (unsigned)n;
        } else {
            return fail(pc, k, "limits: unknown key '%s'", key);
        }
        if (ret != 0)
            return -1;
    }
    if (conf->limits.ws_idle_timeout_ms <= conf->limits.ws_ping_interval_ms)
        return fail(pc, idle != NULL ? idle : ping, "limits: ws-idle-timeout must be longer than ws-ping-interval");
    return 0;
}

static int parse_status(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    if (expect_mapping(pc, node, "status") != 0)
        return -1;
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k);
        if (key != NULL && strcmp(key, "allow-remote") == 0) {
            if (get_bool(pc, v, "status.allow-remote", &conf->status.allow_remote) != 0)
                return -1;
        } else {
            return fail(pc, k, "status: unknown key '%s'", key != NULL ? key : "?");
        }
    }
    return 0;
}

/* trusted-proxies: one address or block, or a list of them; an empty list trusts no one, like no key */
static int parse_trusted_proxies(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    size_t n = 1;
    if (node->type == YAML_SEQUENCE_NODE)
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    else if (node->type != YAML_SCALAR_NODE)
        return fail(pc, node, "trusted-proxies: expected an address, a CIDR block or a list of them");
    conf->trusted_proxies = calloc(n != 0 ? n : 1, sizeof(*conf->trusted_proxies));
    for (size_t i = 0; i != n; ++i) {
        yaml_node_t *e = node->type == YAML_SEQUENCE_NODE ? yaml_document_get_node(pc->doc, node->data.sequence.items.start[i]) : node;
        const char *s = scalar(e);
        if (s == NULL || forum_cidr_parse(s, conf->trusted_proxies + i) != 0)
            return fail(pc, e, "trusted-proxies: '%s' is not an IP address or CIDR block (like 127.0.0.1/8 or ::1)",
                        s != NULL ? s : "?");
        conf->num_trusted_proxies = i + 1;
    }
    return 0;
}

static int check_dir(parse_ctx_t *pc, yaml_node_t *node, const char *key, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return fail(pc, node, "%s: %s: %s", key, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(pc, node, "%s: %s is not a directory", key, dir);
    return 0;
}

/* database: a SQLite file's path, or {postgres: CONNINFO, connections: N, statement-timeout: SECONDS}. */
static int parse_database(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    char err[200];
    unsigned long long n;
    if (node->type == YAML_SCALAR_NODE)
        return get_string(pc, node, "database", &conf->database);
    if (node->type != YAML_MAPPING_NODE)
        return fail(pc, node, "database: expected a SQLite file's path or a mapping with postgres: CONNINFO");
    conf->pg_connections = 4;
    conf->pg_statement_timeout_ms = 5000;
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k);
        if (key == NULL)
            return fail(pc, k, "keys must be strings");
        if (strcmp(key, "postgres") == 0) {
            if (get_string(pc, v, "database.postgres", &conf->pg_conninfo) != 0)
                return -1;
            /* the syntax is checked here (forumd -t too); whether the server answers is known at start */
            if (forum_pg_check_conninfo(conf->pg_conninfo, err, sizeof(err)) != 0)
                return fail(pc, v, "database.postgres: %s", err);
        } else if (strcmp(key, "connections") == 0) {
            if (get_uint(pc, v, "database.connections", 1, 64, &n) != 0)
                return -1;
            conf->pg_connections = (unsigned)n;
        } else if (strcmp(key, "statement-timeout") == 0) {
            if (get_seconds(pc, v, "database.statement-timeout", 0.1, 3600, &conf->pg_statement_timeout_ms) != 0)
                return -1;
        } else {
            return fail(pc, k, "database: unknown key '%s' (postgres, connections, statement-timeout)", key);
        }
    }
    if (conf->pg_conninfo == NULL)
        return fail(pc, node, "database.postgres: required (a libpq connection string such as \"host=127.0.0.1 dbname=forum\")");
    return 0;
}

/*
 * bus: {redis: "HOST:PORT"}. The host is a name or an address (IPv6 in brackets); the port is required, so
 * that a node never reaches a Redis it was not pointed at.
 */
static int parse_bus(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    if (node->type != YAML_MAPPING_NODE)
        return fail(pc, node, "bus: expected a mapping with redis: \"HOST:PORT\"");
    FOREACH_PAIR(pc, node, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k), *s;
        if (key == NULL || strcmp(key, "redis") != 0)
            return fail(pc, k, "bus: unknown key '%s' (redis)", key != NULL ? key : "?");
        if ((s = scalar(v)) == NULL)
            return fail(pc, v, "bus.redis: expected \"HOST:PORT\"");
        const char *colon = strrchr(s, ':'), *host = s;
        size_t host_len = colon != NULL ? (size_t)(colon - s) : 0;
        char *end;
        unsigned long port = colon != NULL ? strtoul(colon + 1, &end, 10) : 0;
        int bracketed = host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']';
        if (bracketed)
            ++host, host_len -= 2;
        if (colon == NULL || host_len == 0 || colon[1] < '0' || colon[1] > '9' || *end != '\0' || port == 0 || port > 65535 ||
            (!bracketed && memchr(host, ':', host_len) != NULL))
            return fail(pc, v, "bus.redis: '%s' is not HOST:PORT (like 127.0.0.1:6379 or [::1]:6379)", s);
        free(conf->bus_redis_host);
        conf->bus_redis_host = strndup(host, host_len);
        conf->bus_redis_port = (unsigned)port;
    }
    if (conf->bus_redis_host == NULL)
        return fail(pc, node, "bus.redis: required (\"HOST:PORT\" of the Redis every node of the forum shares)");
    return 0;
}

/* node: a name of letters, digits and . _ - (it goes into logs, /_status and the bus's keys) */
static int parse_node(parse_ctx_t *pc, yaml_node_t *node, forum_config_t *conf)
{
    const char *s = scalar(node);
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
        return fail(pc, node, "node: expected a name of 1 to 64 letters, digits, '.', '_' or '-'");
    conf->node = strdup(s);
    return 0;
}

static int parse_root(parse_ctx_t *pc, yaml_node_t *root, forum_config_t *conf)
{
    yaml_node_t *seen_public = NULL, *seen_plugins = NULL, *seen_database = NULL, *seen_bus = NULL;
    if (root == NULL)
        return fail(pc, NULL, "the file is empty");
    if (expect_mapping(pc, root, "the top level") != 0)
        return -1;
    FOREACH_PAIR(pc, root, pair)
    {
        yaml_node_t *k = KEY(pc, pair), *v = VALUE(pc, pair);
        const char *key = scalar(k);
        int ret;
        if (key == NULL)
            return fail(pc, k, "keys must be strings");
        if (strcmp(key, "listen") == 0) {
            ret = conf->listen != NULL ? fail(pc, k, "listen: given twice") : parse_listen(pc, v, conf);
        } else if (strcmp(key, "database") == 0) {
            if (conf->database != NULL || conf->pg_conninfo != NULL)
                return fail(pc, k, "database: given twice");
            ret = parse_database(pc, v, conf);
            seen_database = conf->database != NULL ? v : NULL;
        } else if (strcmp(key, "public-dir") == 0) {
            ret = get_string(pc, v, "public-dir", &conf->public_dir);
            seen_public = v;
        } else if (strcmp(key, "plugins") == 0) {
            ret = parse_plugins(pc, v, conf);
            seen_plugins = v;
        } else if (strcmp(key, "limits") == 0) {
            ret = parse_limits(pc, v, conf);
        } else if (strcmp(key, "status") == 0) {
            ret = parse_status(pc, v, conf);
        } else if (strcmp(key, "bus") == 0) {
            ret = seen_bus != NULL ? fail(pc, k, "bus: given twice") : parse_bus(pc, v, conf);
            seen_bus = k;
        } else if (strcmp(key, "node") == 0) {
            ret = conf->node != NULL ? fail(pc, k, "node: given twice") : parse_node(pc, v, conf);
        } else if (strcmp(key, "access-log") == 0) {
            ret = get_bool(pc, v, "access-log", &conf->access_log);
        } else if (strcmp(key, "trusted-proxies") == 0) {
            ret = conf->trusted_proxies != NULL ? fail(pc, k, "trusted-proxies: given twice") : parse_trusted_proxies(pc, v, conf);
        } else {
            return fail(pc, k, "unknown key '%s'", key);
        }
        if (ret != 0)
            return -1;
    }
    if (conf->listen == NULL)
        return fail(pc, root, "listen: at least one listener is required");
    if (conf->database == NULL && conf->pg_conninfo == NULL)
        return fail(pc, root, "database: required");
    if (seen_bus != NULL && conf->pg_conninfo == NULL)
        return fail(pc, seen_bus, "bus: the nodes of one forum share its database: bus needs database.postgres, not a SQLite file");
    if (seen_database != NULL) {
        /* the folder that will hold the database must exist; the file itself is created */
        char *dir = strdup(conf->database), *slash = strrchr(dir, '/');
        int ret = 0;
        if (slash != NULL) {
            *slash = '\0';
            ret = check_dir(pc, seen_database, "database", *dir != '\0' ? dir : "/");
        }
        free(dir);
        if (ret != 0)
            return -1;
    }
    if (seen_public != NULL && check_dir(pc, seen_public, "public-dir", conf->public_dir) != 0)
        return -1;
    if (conf->plugins.dir == NULL) {
        if (conf->plugins.num_load != 0)
            return fail(pc, seen_plugins, "plugins.dir: required when plugins.load names plugins");
    } else {
        if (check_dir(pc, seen_plugins, "plugins.dir", conf->plugins.dir) != 0)
            return -1;
        for (size_t i = 0; i != conf->plugins.num_load; ++i) {
            char file[PATH_MAX];
            snprintf(file, sizeof(file), "%s/%s.so", conf->plugins.dir, conf->plugins.load[i]);
            if (access(file, R_OK) != 0)
                return fail(pc, pc->load_nodes[i], "plugins.load: cannot read %s: %s", file, strerror(errno));
        }
    }
    /* each plugin checks its own settings when it loads (core/plugin_settings.c); those of no plugin nobody would */
    for (size_t i = 0; i != conf->plugins.num_settings; ++i) {
        const forum_setting_t *s = conf->plugins.settings + i;
        size_t j = 0;
        while (j != conf->plugins.num_load && strcmp(conf->plugins.load[j], s->plugin) != 0)
            ++j;
        if (j == conf->plugins.num_load)
            return fail_line(pc, (size_t)s->line, "plugins.settings.%s.%s: plugin %s is not in plugins.load, so nothing would read it",
                             s->plugin, s->key, s->plugin);
    }
    return 0;
}

/*
 * What a configuration may hold. libyaml builds documents of any depth and size, and its scanner slows
 * down with every open flow level (a file of 100,000 nested '[' took 24 s to refuse); an alias repeats a
 * value at no cost in the file. A forum.yaml needs 4 levels and a few dozen values.
 */
enum {
    MAX_FILE_SIZE = 1024 * 1024, /* and in the messages below */
    MAX_DEPTH = 32,
    MAX_NODES = 10000, /* scalars, aliases, sequences and mappings */
    MAX_SCALAR = 4096,
};

static void syntax_error(const char *path, const yaml_parser_t *parser, char *err, size_t errlen)
{
    const char *problem = parser->problem != NULL ? parser->problem : "syntax error";
    snprintf(err, errlen, "%s:%zu: %s", path, parser->problem_mark.line + 1, problem);
}

/*
 * One pass over the parser's events that refuses a file past the bounds above as soon as a bound is
 * passed, before the document is built; also refuses a second document, which the loader would ignore.
 */
static int check_bounds(const char *path, const char *yaml, size_t len, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_event_t event;
    size_t depth = 0, nodes = 0, documents = 0;
    int ret = -1;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &event)) {
            syntax_error(path, &parser, err, errlen);
            goto Exit;
        }
        size_t line = event.start_mark.line + 1;
        const char *problem = NULL;
        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&event);
            ret = 0;
            goto Exit;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                problem = "a second YAML document: the configuration is one";
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > MAX_DEPTH)
                problem = "nested more than 32 levels deep";
            else if (++nodes > MAX_NODES)
                problem = "more than 10000 values";
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            --depth;
            break;
        case YAML_SCALAR_EVENT:
            if (event.data.scalar.length > MAX_SCALAR)
                problem = "a value longer than 4096 bytes";
            /* fall through */
        case YAML_ALIAS_EVENT:
            if (problem == NULL && ++nodes > MAX_NODES)
                problem = "more than 10000 values";
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
        if (problem != NULL) {
            snprintf(err, errlen, "%s:%zu: %s", path, line, problem);
            goto Exit;
        }
    }
Exit:
    yaml_parser_delete(&parser);
    return ret;
}

forum_config_t *forum_config_parse(const char *path, const char *yaml, size_t len, char *err, size_t errlen)
{
    forum_config_t *conf = calloc(1, sizeof(*conf));
    parse_ctx_t pc = {path, NULL, err, errlen, NULL};
    yaml_parser_t parser;
    yaml_document_t doc;
    int ok = 0;

    conf->path = strdup(path);
    conf->public_dir = strdup("public");
    conf->limits.body_size = 64 * 1024;
    conf->limits.ws_message_size = 64 * 1024;
    conf->limits.ws_send_queue = 1024 * 1024;
    conf->limits.ws_ping_interval_ms = 30000;
    conf->limits.ws_idle_timeout_ms = 75000;
    conf->limits.ws_slow_grace_ms = 10000;
    conf->limits.connections = 60000;
    conf->limits.session_lifetime_s = 30 * 86400;
    conf->limits.shutdown_timeout_ms = 10000;
    conf->limits.header_timeout_ms = 10000;
    conf->limits.h2_concurrent_streams = 32;
    conf->limits.conn_pending = 4 * 1024 * 1024;
    conf->limits.send_timeout_ms = 30000;
    conf->limits.h2_stream_rate = 100;
    conf->limits.h2_stream_burst = 500;
    conf->access_log = 1;

    if (len > MAX_FILE_SIZE) {
        snprintf(err, errlen, "%s: larger than 1 MiB", path);
        goto Exit;
    }
    if (check_bounds(path, yaml, len, err, errlen) != 0)
        goto Exit;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(path, &parser, err, errlen);
    } else {
        pc.doc = &doc;
        ok = parse_root(&pc, yaml_document_get_root_node(&doc), conf) == 0;
        free(pc.load_nodes);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
Exit:
    if (!ok) {
        forum_config_free(conf);
        return NULL;
    }
    return conf;
}

forum_config_t *forum_config_load(const char *path, char *err, size_t errlen)
{
    forum_config_t *conf = NULL;
    FILE *fp;
    char *buf;
    size_t len;

    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* one byte more than the bound, to tell a file at the bound from a larger one */
    buf = malloc(MAX_FILE_SIZE + 1);
    len = fread(buf, 1, MAX_FILE_SIZE + 1, fp);
    if (ferror(fp))
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    else
        conf = forum_config_parse(path, buf, len, err, errlen);
    free(buf);
    fclose(fp);
    return conf;
}

void forum_config_free(forum_config_t *conf)
{
    if (conf == NULL)
        return;
    for (size_t i = 0; i != conf->num_listen; ++i) {
        free(conf->listen[i].host);
        free(conf->listen[i].cert_file);
        free(conf->listen[i].key_file);
    }
    free(conf->listen);
    for (size_t i = 0; i != conf->plugins.num_load; ++i)
        free(conf->plugins.load[i]);
    free(conf->plugins.load);
    free(conf->plugins.load_lines);
    for (size_t i = 0; i != conf->plugins.num_settings; ++i) {
        free(conf->plugins.settings[i].plugin);
        free(conf->plugins.settings[i].key);
        free(conf->plugins.settings[i].value);
    }
    free(conf->plugins.settings);
    free(conf->plugins.dir);
    free(conf->database);
    free(conf->pg_conninfo);
    free(conf->bus_redis_host);
    free(conf->node);
    free(conf->public_dir);
    free(conf->trusted_proxies);
    free(conf->path);
    free(conf);
}
