/*
 * What every path shares: a first handler that counts the request as in flight until h2o disposes
 * it (graceful shutdown waits for the count to reach zero), a filter that adds the security
 * headers to every response, and the access log.
 */
#include <unistd.h>
#include "../core/forum.h"

static h2o_logconf_t *logconf;

static void on_request_disposed(void *p)
{
    (void)p;
    --forum_server.num_inflight;
}

/* --- the connection's limits (core/conn_limits.c): streams opened per second, answers not yet sent --- */
static int edge_limits(h2o_req_t *req)
{
    return forum_conn_admit(req);
}
/* --- end of the connection's limits --- */

static int count_request(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ++forum_server.num_inflight;
    h2o_mem_alloc_shared(&req->pool, 1, on_request_disposed);
    if (edge_limits(req) != 0)
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
    if (req->scheme == &H2O_URL_SCHEME_HTTPS)
        h2o_add_header_by_str(&req->pool, h, H2O_STRLIT("strict-transport-security"), 0, NULL, H2O_STRLIT("max-age=31536000"));
    h2o_setup_next_ostream(req, slot);
}

/* One line per request on stderr, written with one write(2) on the server's own descriptor. */
static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    char buf[4096], *line;
    size_t len = sizeof(buf); /* in: the buffer's size; out: the line's length */
    (void)self;
    line = h2o_log_request(logconf, req, &len, buf);
    if (write(2, line, len) < 0) {
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
        if (logconf == NULL && (logconf = h2o_logconf_compile("%h %t \"%r\" %s %b %{duration}x %H", H2O_LOGCONF_ESCAPE_APACHE, err)) == NULL)
            forum_log(FORUM_LOG_ERROR, "access log: %s", err);
        if (logconf != NULL)
            h2o_create_logger(pathconf, sizeof(h2o_logger_t))->log_access = log_access;
    }
}
