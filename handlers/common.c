/*
 * What every path shares: a first handler that counts the request as in flight until h2o disposes
 * it (graceful shutdown waits for the count to reach zero), a filter that adds the security
 * headers to every response, and the access log.
 */
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>
#include "../core/forum.h"

static h2o_logconf_t *logconf;

static void on_request_disposed(void *p)
{
    (void)p;
    --forum_server.num_inflight;
}

static int count_request(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ++forum_server.num_inflight;
    h2o_mem_alloc_shared(&req->pool, 1, on_request_disposed);
    forum_conn_request_begin(req);
    /* ambiguous framing first (handlers/framing.c), then the connection's limits (core/conn_limits.c) */
    if (forum_request_refused(req) || forum_conn_admit(req) != 0)
        return 0;
    return -1; /* let the path's own handler answer */
}

static void add_security_headers(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                              "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
    h2o_headers_t *h = &req->res.headers;
    (void)self;
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("content-security-policy"), 0, NULL, H2O_STRLIT(csp));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("referrer-policy"), 0, NULL, H2O_STRLIT("same-origin"));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("x-frame-options"), 0, NULL, H2O_STRLIT("DENY"));
    h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("cross-origin-opener-policy"), 0, NULL, H2O_STRLIT("same-origin"));
    forum_client_t client;
    forum_client_of(req, &client); /* behind a TLS-terminating proxy the client used https all the same */
    if (client.scheme == &H2O_URL_SCHEME_HTTPS)
        h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("strict-transport-security"), 0, NULL, H2O_STRLIT("max-age=31536000"));
    h2o_setup_next_ostream(req, slot);
}

/*
 * One line per request on stderr, written with one writev(2) on the server's own descriptor. The line
 * starts with the client's address (forwarded by a trusted proxy, else the peer's), which h2o's %h
 * cannot know, so it is written ahead of h2o's part.
 */
static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    char buf[4096], *line, addr[80];
    size_t len = sizeof(buf); /* in: the buffer's size; out: the line's length */
    forum_client_t client;
    (void)self;
    forum_client_of(req, &client);
    line = h2o_log_request(logconf, req, &len, buf);
    struct iovec iov[2] = {{addr, (size_t)snprintf(addr, sizeof(addr), "%s ", client.text)}, {line, len}};
    if (writev(2, iov, 2) < 0) {
        /* nothing sensible to do when stderr is gone */
    }
    if (line != buf)
        free(line);
}

void forum_common_register(h2o_pathconf_t *pathconf, int access_log)
{
    h2o_handler_t *counter = h2o_create_handler(pathconf, sizeof(*counter));
    counter->on_req = count_request;
    h2o_filter_t *filter = h2o_create_filter(pathconf, sizeof(*filter));
    filter->on_setup_ostream = add_security_headers;
    if (access_log) {
        char err[256];
        if (logconf == NULL && (logconf = h2o_logconf_compile("%t \"%r\" %s %b %{duration}x %H", H2O_LOGCONF_ESCAPE_APACHE, err)) == NULL)
            forum_log(FORUM_LOG_ERROR, "access log: %s", err);
        if (logconf != NULL)
            h2o_create_logger(pathconf, sizeof(h2o_logger_t))->log_access = log_access;
    }
}
