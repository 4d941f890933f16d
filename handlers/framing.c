/*
 * Requests whose framing or target two HTTP implementations could read differently are refused before any
 * route sees them: behind a proxy, the bytes one of them takes for a body the other takes for a second request
 * (RFC 9112 6.3, 11.2). h2o 2.2 keeps only the Content-Length, Transfer-Encoding and Host it used and drops the
 * others while parsing, so an HTTP/1.x request's head is read again from the connection's input buffer, where it
 * still begins while the request is being handled. An empty HTTP/2 :path ends here too.
 */
#include <string.h>
#include "../core/forum.h"

static int name_is(const char *name, size_t len, const char *want)
{
    size_t wlen = strlen(want);
    return len == wlen && h2o_lcstris(name, len, want, wlen);
}

static h2o_iovec_t trimmed(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        ++p;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        --end;
    return h2o_iovec_init(p, (size_t)(end - p));
}

int forum_http1_head_ambiguous(const char *head, size_t len)
{
    const char *p = head, *end = head + len;
    size_t hosts = 0, transfer_encodings = 0, lengths = 0;
    h2o_iovec_t length = {NULL, 0};

    while (p < end && (*p == '\r' || *p == '\n')) /* empty lines before the request line are allowed */
        ++p;
    const char *eol = memchr(p, '\n', (size_t)(end - p)); /* the request line */
    if (eol == NULL)
        return 0;
    for (p = eol + 1; p < end; p = eol + 1) {
        if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
            return 0; /* not a whole head: h2o would not have parsed it */
        const char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (line_end == p)
            break; /* the empty line that ends the head */
        if (*p == ' ' || *p == '\t')
            return 1; /* obsolete line folding: a header's value that parsers split differently (RFC 9112 5.2) */
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon == NULL)
            continue;
        size_t name_len = (size_t)(colon - p);
        if (name_is(p, name_len, "host")) {
            ++hosts;
        } else if (name_is(p, name_len, "transfer-encoding")) {
            ++transfer_encodings;
        } else if (name_is(p, name_len, "content-length")) {
            h2o_iovec_t v = trimmed(colon + 1, line_end);
            /* the same length repeated is one length (RFC 9112 6.3); two different ones are no length at all */
            if (lengths++ != 0 && !h2o_memis(v.base, v.len, length.base, length.len))
                return 1;
            length = v;
        }
    }
    return hosts > 1 || (transfer_encodings != 0 && lengths != 0);
}

/* The request's head when it came over HTTP/1.x: the start of its connection's input buffer, checked to begin
 * with this request's method and target (an HTTP/2 connection's buffer, h2c included, holds frames). */
static h2o_iovec_t http1_head(h2o_req_t *req)
{
    h2o_socket_t *sock;
    const char *p, *end;
    if (req->version >= 0x200 || (sock = req->conn->callbacks->get_socket(req->conn)) == NULL || sock->input == NULL)
        return h2o_iovec_init(NULL, 0);
    p = sock->input->bytes;
    end = p + sock->input->size;
    while (p < end && (*p == '\r' || *p == '\n'))
        ++p;
    h2o_iovec_t method = req->input.method, path = req->input.path;
    if ((size_t)(end - p) < method.len + 1 + path.len || memcmp(p, method.base, method.len) != 0 || p[method.len] != ' ' ||
        memcmp(p + method.len + 1, path.base, path.len) != 0)
        return h2o_iovec_init(NULL, 0);
    return h2o_iovec_init(sock->input->bytes, sock->input->size);
}

int forum_request_refused(h2o_req_t *req)
{
    h2o_iovec_t head;
    if (req->input.path.len == 0) {
        /* an HTTP/2 :path may be empty, and h2o would serve it as "/" (RFC 9113 8.3.1 makes it malformed) */
        forum_send_error(req, 400, "bad_request", "the request has no path", NULL);
        return 1;
    }
    if ((head = http1_head(req)).base != NULL && forum_http1_head_ambiguous(head.base, head.len)) {
        /* nothing after it on this connection can be trusted to start where h2o thinks it does */
        req->http1_is_persistent = 0;
        forum_send_error(req, 400, "bad_request",
                         "ambiguous message framing: Content-Length with Transfer-Encoding, two different Content-Length values, "
                         "two Host headers or a folded header line",
                         NULL);
        return 1;
    }
    return 0;
}
