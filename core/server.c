/*
 * The server: h2o configuration (paths and handlers, registered once before the context exists),
 * TLS contexts, listeners, signals and the graceful shutdown.
 */
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "forum.h"

typedef struct listener {
    uv_tcp_t tcp;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx;
    int open;
} listener_t;

forum_server_t forum_server;

static listener_t *listeners;
static size_t num_listeners;
static uv_signal_t sigterm, sigint, sighup;
static uv_timer_t drain_timer, purge_timer;
static int64_t drain_deadline_ms;

static const char *openssl_error(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (e == 0)
        return "unknown error";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

int forum_server_prepare_tls(forum_config_t *conf, char *err, size_t errlen)
{
    if (listeners == NULL) {
        listeners = calloc(conf->num_listen, sizeof(*listeners));
        num_listeners = conf->num_listen;
    }
    for (size_t i = 0; i != conf->num_listen; ++i) {
        forum_listen_conf_t *lc = conf->listen + i;
        SSL_CTX *ctx;
        if (lc->cert_file == NULL || listeners[i].ssl_ctx != NULL)
            continue;
        ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
        if (SSL_CTX_use_certificate_chain_file(ctx, lc->cert_file) != 1) {
            snprintf(err, errlen, "%s:%d: cannot load certificate-file %s: %s", conf->path, lc->line, lc->cert_file, openssl_error());
            goto Error;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, lc->key_file, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errlen, "%s:%d: cannot load key-file %s: %s", conf->path, lc->line, lc->key_file, openssl_error());
            goto Error;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "%s:%d: key-file %s does not match certificate-file %s", conf->path, lc->line, lc->key_file,
                     lc->cert_file);
            goto Error;
        }
        h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols);
        listeners[i].ssl_ctx = ctx;
        continue;
    Error:
        SSL_CTX_free(ctx);
        return -1;
    }
    return 0;
}

static void on_accept(uv_stream_t *server, int status)
{
    listener_t *l = server->data;

    if (status != 0)
        return;
    forum_conn_accept(server, &l->accept_ctx);
}

/*
 * The descriptor a supervisor such as start_server(1) passes for this listener, or -1. SERVER_STARTER_PORT
 * is "ADDR=FD;ADDR=FD..." where ADDR is "port" or "host:port".
 */
static int inherited_fd(const forum_listen_conf_t *lc)
{
    const char *env = getenv("SERVER_STARTER_PORT");
    char want_port[16], want_host[300];

    if (env == NULL)
        return -1;
    snprintf(want_port, sizeof(want_port), "%d", lc->port);
    snprintf(want_host, sizeof(want_host), "%s:%d", lc->host != NULL ? lc->host : "0.0.0.0", lc->port);
    for (const char *p = env; *p != '\0';) {
        const char *eq = strchr(p, '='), *end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        if (eq != NULL && eq < end) {
            size_t alen = (size_t)(eq - p);
            if ((alen == strlen(want_port) && memcmp(p, want_port, alen) == 0) ||
                (alen == strlen(want_host) && memcmp(p, want_host, alen) == 0))
                return atoi(eq + 1);
        }
        p = *end == ';' ? end + 1 : end;
    }
    return -1;
}

static int open_listener(listener_t *l, forum_listen_conf_t *lc, char *err, size_t errlen)
{
    int inherited = inherited_fd(lc);
    struct addrinfo hints = {0}, *res = NULL;
    char port[16], where[300];
    int r;

    snprintf(port, sizeof(port), "%d", lc->port);
    snprintf(where, sizeof(where), "%s%s%s:%d", lc->host != NULL && strchr(lc->host, ':') ? "[" : "",
             lc->host != NULL ? lc->host : "0.0.0.0", lc->host != NULL && strchr(lc->host, ':') ? "]" : "", lc->port);
    if (inherited >= 0) {
        /* a supervisor holds the socket across restarts: no connection is refused while we change hands */
        uv_tcp_init(forum_server.loop, &l->tcp);
        l->tcp.data = l;
        l->open = 1;
        if ((r = uv_tcp_open(&l->tcp, inherited)) == 0)
            r = uv_listen((uv_stream_t *)&l->tcp, 1024, on_accept);
        if (r != 0) {
            snprintf(err, errlen, "%s:%d: cannot use the inherited socket %d for %s: %s", forum_server.conf->path, lc->line, inherited,
                     where, uv_strerror(r));
            return -1;
        }
        goto Listening;
    }
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((r = getaddrinfo(lc->host != NULL ? lc->host : "0.0.0.0", port, &hints, &res)) != 0) {
        snprintf(err, errlen, "%s:%d: cannot resolve %s: %s", forum_server.conf->path, lc->line, where, gai_strerror(r));
        return -1;
    }
    uv_tcp_init(forum_server.loop, &l->tcp);
    l->tcp.data = l;
    l->open = 1;
    if ((r = uv_tcp_bind(&l->tcp, res->ai_addr, res->ai_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0)) == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, 1024, on_accept);
    freeaddrinfo(res);
    if (r != 0) {
        snprintf(err, errlen, "%s:%d: cannot listen on %s: %s", forum_server.conf->path, lc->line, where, uv_strerror(r));
        return -1;
    }
Listening:
    l->accept_ctx.ctx = &forum_server.h2o_ctx;
    l->accept_ctx.hosts = forum_server.h2o_config.hosts;
    l->accept_ctx.ssl_ctx = l->ssl_ctx;
    forum_log(FORUM_LOG_INFO, "listening on %s://%s%s", l->ssl_ctx != NULL ? "https" : "http", where,
              inherited >= 0 ? " (inherited socket)" : "");
    return 0;
}

static void close_listeners(void)
{
    for (size_t i = 0; i != num_listeners; ++i) {
        if (listeners[i].open) {
            uv_close((uv_handle_t *)&listeners[i].tcp, NULL);
            listeners[i].open = 0;
        }
    }
}

static void on_drain_check(uv_timer_t *timer)
{
    (void)timer;
    if ((forum_server.num_inflight == 0 && forum_hub_count() == 0) || forum_mono_ms() >= drain_deadline_ms) {
        if (forum_server.num_inflight != 0 || forum_hub_count() != 0)
            forum_log(FORUM_LOG_WARN, "shutdown timeout: %zu requests and %zu WebSockets still open", forum_server.num_inflight,
                      forum_hub_count());
        forum_bus_stop(); /* only now: what the requests in flight stored was published */
        uv_stop(forum_server.loop);
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)sig;
    if (forum_server.shutting_down) {
        forum_log(FORUM_LOG_WARN, "second signal: stopping now");
        uv_stop(forum_server.loop);
        return;
    }
    forum_log(FORUM_LOG_INFO, "%s: stopping (no new connections, draining requests, closing WebSockets)",
              signum == SIGTERM ? "SIGTERM" : "SIGINT");
    forum_server.shutting_down = 1;
    close_listeners();
    h2o_context_request_shutdown(&forum_server.h2o_ctx);
    forum_hub_shutdown();
    drain_deadline_ms = forum_mono_ms() + forum_server.conf->limits.shutdown_timeout_ms;
    uv_timer_start(&drain_timer, on_drain_check, 0, 20);
}

static void check_all_on_fiber(void *arg)
{
    (void)arg;
    forum_plugins_check_all();
}

static void on_sighup(uv_signal_t *sig, int signum)
{
    (void)sig;
    (void)signum;
    forum_log(FORUM_LOG_INFO, "SIGHUP: checking every plugin file");
    forum_fiber_run(check_all_on_fiber, NULL); /* a new generation's migrations reach the database */
}

static void purge_on_fiber(void *arg)
{
    (void)arg;
    forum_session_purge();
}

static void on_purge(uv_timer_t *timer)
{
    (void)timer;
    forum_fiber_run(purge_on_fiber, NULL);
}

static void register_paths(forum_config_t *conf)
{
    h2o_hostconf_t *host = h2o_config_register_host(&forum_server.h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    struct {
        const char *path;
        void (*add)(h2o_pathconf_t *);
    } paths[] = {{"/api", forum_api_handler_register}, {"/ws", forum_ws_handler_register}, {"/_status", forum_status_handler_register},
                 {"/", NULL}};

    /* paths match by prefix, first registered first: "/" last */
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(paths); ++i) {
        h2o_pathconf_t *pc = h2o_config_register_path(host, paths[i].path, 0);
        forum_common_register(pc, conf->access_log);
        if (paths[i].add != NULL)
            paths[i].add(pc);
        else
            forum_files_register(pc, conf->public_dir);
    }
}

int forum_server_run(forum_config_t *conf)
{
    char err[1024];

    forum_server.conf = conf;
    forum_server.loop = uv_default_loop();
    forum_server.started_ms = forum_now_ms();
    signal(SIGPIPE, SIG_IGN);

    if (forum_server_prepare_tls(conf, err, sizeof(err)) != 0)
        goto Error;
    if (forum_db_open_conf(conf, forum_server.loop, err, sizeof(err)) != 0)
        goto Error;
    if (forum_bus_start(forum_server.loop, conf, err, sizeof(err)) != 0)
        goto Error;
    forum_session_purge();
    uv_timer_init(forum_server.loop, &purge_timer);
    uv_timer_start(&purge_timer, on_purge, 600000, 600000);
    uv_unref((uv_handle_t *)&purge_timer);
    forum_hub_init(forum_server.loop, conf);

    h2o_config_init(&forum_server.h2o_config);
    forum_server.h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("forumd"));
    forum_server.h2o_config.max_request_entity_size = conf->limits.body_size;
    forum_server.h2o_config.http2.max_concurrent_requests_per_connection = conf->limits.h2_concurrent_streams;
    register_paths(conf);
    forum_conn_init(forum_server.loop, conf, &forum_server.h2o_config);
    h2o_context_init(&forum_server.h2o_ctx, forum_server.loop, &forum_server.h2o_config);
    forum_conn_limits_start(); /* every HTTP/2 connection is watched from the first, not from the first request */

    if (forum_plugins_init(conf) != 0) {
        snprintf(err, sizeof(err), "cannot prepare the plugin host (see above)");
        goto Error;
    }
    for (size_t i = 0; i != conf->plugins.num_load; ++i) {
        if (forum_plugins_load(conf->plugins.load[i]) != 0) {
            snprintf(err, sizeof(err), "%s: plugin %s could not be loaded (see above)", conf->path, conf->plugins.load[i]);
            goto Error;
        }
    }
    if (forum_plugins_watch(forum_server.loop) != 0) {
        snprintf(err, sizeof(err), "%s: plugins.watch: cannot watch %s", conf->path, conf->plugins.dir);
        goto Error;
    }
    for (size_t i = 0; i != num_listeners; ++i)
        if (open_listener(listeners + i, conf->listen + i, err, sizeof(err)) != 0)
            goto Error;

    uv_signal_init(forum_server.loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(forum_server.loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(forum_server.loop, &sighup);
    uv_signal_start(&sighup, on_sighup, SIGHUP);
    uv_timer_init(forum_server.loop, &drain_timer);
    if (conf->pg_conninfo != NULL)
        forum_log(FORUM_LOG_INFO, "forumd %s ready (database PostgreSQL, %u connections%s%s)", FORUM_VERSION, conf->pg_connections,
                  forum_bus_enabled() ? ", node " : "", forum_bus_enabled() ? forum_bus_node() : "");
    else
        forum_log(FORUM_LOG_INFO, "forumd %s ready (database %s)", FORUM_VERSION, conf->database);

    forum_db_serving();
    uv_run(forum_server.loop, UV_RUN_DEFAULT);

    forum_db_serving_end();
    forum_plugins_shutdown();
    forum_db_close();
    for (size_t i = 0; i != num_listeners; ++i)
        if (listeners[i].ssl_ctx != NULL)
            SSL_CTX_free(listeners[i].ssl_ctx);
    forum_log(FORUM_LOG_INFO, "stopped");
    return 0;

Error:
    fprintf(stderr, "%s\n", err);
    return 1;
}
