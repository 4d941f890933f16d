/* Answers shared by every handler: API.md's JSON bodies, the origin check, query parameters. */
#include <stdlib.h>
#include <string.h>
#include "../core/forum.h"

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Internal Server Error";
    }
}

void forum_send_json_bytes(h2o_req_t *req, int status, const char *json, size_t len)
{
    size_t fixed_len;
    char *fixed = forum_utf8_repair(json, len, &fixed_len);
    if (fixed != NULL) {
        /* what slipped past the input gate (rows stored before it) leaves as U+FFFD, never as bytes that are not UTF-8 */
        forum_log(FORUM_LOG_WARN, "a JSON response was not UTF-8: sent with U+FFFD in place of the bad bytes");
        json = h2o_strdup(&req->pool, fixed, fixed_len).base;
        len = fixed_len;
        free(fixed);
    }
    if (forum_conn_reserve(req, len) != 0) {
        /* the connection holds too many answers its client has not read: this one is not added to them */
        static const char busy[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"this connection has too many answers waiting to be read\"}}";
        status = 503;
        json = busy;
        len = sizeof(busy) - 1;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    }
    req->res.status = status;
    req->res.reason = reason_of(status);
    /* framed by its length: without one, h2o sends a 200 chunked and anything else with Connection: close,
     * which drops every request pipelined behind an error */
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, json, len);
}

void forum_send_json(h2o_req_t *req, int status, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;

    yajl_gen_get_buf(g, &buf, &len);
    forum_send_json_bytes(req, status, (const char *)buf, len);
}

void forum_send_error(h2o_req_t *req, int status, const char *code, const char *message, const char *field)
{
    yajl_gen g = forum_json_gen();
    yajl_gen_map_open(g);
    forum_json_str(g, "error");
    yajl_gen_map_open(g);
    forum_json_error_members(g, code, message, field);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    forum_send_json(req, status, g);
    yajl_gen_free(g);
}

int forum_same_origin(h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i == -1)
        return 1;
    h2o_iovec_t origin = req->headers.entries[i].value;
    /* behind a trusted proxy the browser's origin is the proxy's scheme and host, not the hop to forumd */
    forum_client_t client;
    forum_client_of(req, &client);
    const h2o_url_scheme_t *scheme = client.scheme;
    h2o_iovec_t authority = client.authority;
    size_t slen = scheme->name.len;
    /* Origin is scheme "://" host [":" port], compared case-insensitively with the request's own */
    return origin.len == slen + 3 + authority.len && h2o_lcstris(origin.base, slen, scheme->name.base, slen) &&
           memcmp(origin.base + slen, "://", 3) == 0 &&
           h2o_lcstris(origin.base + slen + 3, authority.len, authority.base, authority.len);
}

/* Decodes %XX and '+' into a NUL-terminated string from the pool; NULL for a bad escape, a NUL or invalid UTF-8. */
static const char *decode(h2o_mem_pool_t *pool, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *d = out;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return NULL;
            if ((hi = forum_hex_digit(s[i + 1])) < 0 || (lo = forum_hex_digit(s[i + 2])) < 0 || (hi == 0 && lo == 0))
                return NULL;
            *d++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *d++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *d = '\0';
    return forum_utf8_valid(out, (size_t)(d - out)) ? out : NULL;
}

const char *forum_query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *kend = eq != NULL ? eq : pe;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            /* a value that does not decode is returned empty, so that validation refuses it rather than defaulting */
            const char *v = decode(&req->pool, eq != NULL ? eq + 1 : pe, eq != NULL ? (size_t)(pe - eq - 1) : 0);
            return v != NULL ? v : "";
        }
        p = pe + 1;
    }
    return NULL;
}

int forum_query_check(h2o_req_t *req, const char **field)
{
    *field = NULL;
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *kend = eq != NULL ? eq : pe;
        const char *key = decode(&req->pool, p, (size_t)(kend - p));
        if (key == NULL)
            return -1;
        if (eq != NULL && decode(&req->pool, eq + 1, (size_t)(pe - eq - 1)) == NULL) {
            *field = key;
            return -1;
        }
        p = pe + 1;
    }
    return 0;
}
