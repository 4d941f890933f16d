/* forumd configuration: one YAML file read into one typed struct (core/config.c). */
#ifndef FORUM_CONFIG_H
#define FORUM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "ipaddr.h"

typedef struct forum_listen_conf {
    char *host; /* NULL: every address */
    int port;
    char *cert_file; /* both NULL on a plain listener */
    char *key_file;
    int line; /* where the entry stands, for error messages */
} forum_listen_conf_t;

typedef struct forum_setting {
    char *plugin;
    char *key;
    char *value;
    int line; /* where the key stands, for messages about it */
} forum_setting_t;

typedef struct forum_config {
    char *path;
    forum_listen_conf_t *listen;
    size_t num_listen;
    char *database; /* the SQLite file; NULL when pg_conninfo is set */
    /* database: {postgres: CONNINFO, connections: N, statement-timeout: S}: the PostgreSQL backend */
    char *pg_conninfo;
    unsigned pg_connections;
    unsigned pg_statement_timeout_ms;
    /* bus: {redis: "HOST:PORT"}: events between the nodes of one forum (core/bus.c); NULL on a single node */
    char *bus_redis_host;
    unsigned bus_redis_port;
    char *node; /* node: this node's name in logs and /_status; NULL: host name and pid */
    char *public_dir;
    struct {
        char *dir;
        char **load;
        int *load_lines; /* where each plugins.load entry stands */
        size_t num_load;
        int watch;
        forum_setting_t *settings; /* plugins.settings.NAME.KEY: scalar */
        size_t num_settings;
    } plugins;
    struct {
        size_t body_size;        /* bytes of one request body */
        size_t ws_message_size;  /* bytes of one WebSocket message */
        size_t ws_send_queue;    /* bytes pending to one WebSocket before it counts as slow */
        unsigned ws_ping_interval_ms;
        unsigned ws_idle_timeout_ms;
        unsigned ws_slow_grace_ms; /* how long a connection may stay over ws_send_queue */
        unsigned connections;      /* open TCP connections at once */
        unsigned session_lifetime_s;
        unsigned shutdown_timeout_ms;
        unsigned header_timeout_ms; /* how long a connection may take to deliver its next complete request */

        /* one connection's hold on the server (core/conn_limits.c) */
        unsigned h2_concurrent_streams; /* HTTP/2 requests of one connection being answered at once */
        size_t conn_pending;            /* bytes of answers generated for one connection and not yet sent */
        unsigned send_timeout_ms;       /* how long pending answers may go without a byte written */
        unsigned h2_stream_rate;        /* HTTP/2 streams one connection may open per second, sustained */
        unsigned h2_stream_burst;       /* ... and at once */
    } limits;
    struct {
        int allow_remote; /* GET /_status answers every peer, not only loopback */
    } status;
    int access_log;
    /* peers whose X-Forwarded-* headers are believed (handlers/forwarded.c); none by default */
    forum_cidr_t *trusted_proxies;
    size_t num_trusted_proxies;
} forum_config_t;

/**
 * Reads and checks `path`. On failure returns NULL and writes "FILE:LINE: message" (or a message naming
 * the file) into `err`.
 */
forum_config_t *forum_config_load(const char *path, char *err, size_t errlen);
/** forum_config_load for `len` bytes of YAML in memory, reported as `path` in messages (the fuzz harness's door). */
forum_config_t *forum_config_parse(const char *path, const char *yaml, size_t len, char *err, size_t errlen);
void forum_config_free(forum_config_t *conf);
/** Checks a libpq connection string's syntax (core/pg.c): 0, or -1 with why in `err`. */
int forum_pg_check_conninfo(const char *conninfo, char *err, size_t errlen);

#endif
