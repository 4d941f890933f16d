/*
 * Who a request really comes from. Behind a TLS-terminating proxy the socket's peer is the proxy and the
 * request looks like plain http to the proxy's own host; the proxy says what the client used in
 * X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host. Those headers are believed only when the
 * socket's peer is in trusted-proxies: from anyone else they are the client's own words.
 *
 * Only the X-Forwarded-* family is read, not Forwarded (RFC 7239). A proxy manages one family and passes
 * a client's copy of the other through untouched; believing both would let a client write its own
 * address into the family its proxy does not manage. X-Forwarded-* is what HAProxy's `option forwardfor`,
 * nginx and most proxies write by default.
 */
#include <string.h>
#include "../core/forum.h"

static int is_trusted(const uint8_t addr[16])
{
    const forum_config_t *conf = forum_server.conf;
    for (size_t i = 0; i != conf->num_trusted_proxies; ++i)
        if (forum_cidr_contains(conf->trusted_proxies + i, addr))
            return 1;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* One element of X-Forwarded-For: an address, "[v6]" with an optional ":port", or "v4:port" (some proxies add the port). */
static int parse_element(const char *s, size_t len, uint8_t out[16])
{
    const char *colon;
    if (len != 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        return close != NULL ? forum_ip_parse(s + 1, (size_t)(close - s - 1), out) : -1;
    }
    if (forum_ip_parse(s, len, out) == 0)
        return 0;
    if ((colon = memchr(s, ':', len)) != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL)
        return forum_ip_parse(s, (size_t)(colon - s), out);
    return -1;
}

/*
 * Walks X-Forwarded-For from the right: every proxy appends the address it received the request from, so
 * the right-most entries were written by our own proxies and everything left of the first one that is
 * not a trusted proxy was written by the client (and may be anything). That first untrusted address is
 * the client; when all are trusted proxies, the left-most is. An element that is not an address stops
 * the walk where it is: nothing left of it can be vouched for. Returns 1 when an address was found.
 */
static int forwarded_for(h2o_req_t *req, uint8_t addr[16])
{
    int found = 0;
    for (size_t h = req->headers.size; h-- != 0;) {
        const h2o_header_t *hd = req->headers.entries + h;
        if (!h2o_lcstris(hd->name->base, hd->name->len, H2O_STRLIT("x-forwarded-for")))
            continue;
        const char *base = hd->value.base;
        size_t end = hd->value.len;
        for (;;) {
            size_t start = end;
            while (start != 0 && base[start - 1] != ',')
                --start;
            size_t b = start, e = end;
            while (b < e && is_space(base[b]))
                ++b;
            while (e > b && is_space(base[e - 1]))
                --e;
            uint8_t a[16];
            if (parse_element(base + b, e - b, a) != 0)
                return found;
            memcpy(addr, a, 16);
            found = 1;
            if (!is_trusted(a))
                return 1;
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    return found;
}

/* The right-most element of the last header `name`, trimmed: the value our nearest proxy set. */
static h2o_iovec_t last_value(h2o_req_t *req, const char *name, size_t name_len)
{
    for (size_t h = req->headers.size; h-- != 0;) {
        const h2o_header_t *hd = req->headers.entries + h;
        if (!h2o_lcstris(hd->name->base, hd->name->len, name, name_len))
            continue;
        const char *v = hd->value.base;
        size_t b = hd->value.len, e = hd->value.len;
        while (b != 0 && v[b - 1] != ',')
            --b;
        while (b < e && is_space(v[b]))
            ++b;
        while (e > b && is_space(v[e - 1]))
            --e;
        return h2o_iovec_init(v + b, e - b);
    }
    return h2o_iovec_init(NULL, 0);
}

/* A host as an Origin header would spell it: name or address, optional port; nothing that could end it early. */
static int valid_host(h2o_iovec_t h)
{
    if (h.len == 0 || h.len > 255)
        return 0;
    for (size_t i = 0; i != h.len; ++i) {
        char c = h.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
              c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

void forum_client_of(h2o_req_t *req, forum_client_t *c)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);

    c->has_addr = len != 0 && forum_ip_of_sockaddr((struct sockaddr *)&ss, c->addr) == 0;
    c->via_proxy = 0;
    c->scheme = req->scheme;
    c->authority = req->authority;
    if (c->has_addr && is_trusted(c->addr)) {
        c->via_proxy = 1;
        forwarded_for(req, c->addr);
        h2o_iovec_t proto = last_value(req, H2O_STRLIT("x-forwarded-proto"));
        if (h2o_lcstris(proto.base, proto.len, H2O_STRLIT("https")))
            c->scheme = &H2O_URL_SCHEME_HTTPS;
        else if (h2o_lcstris(proto.base, proto.len, H2O_STRLIT("http")))
            c->scheme = &H2O_URL_SCHEME_HTTP;
        h2o_iovec_t host = last_value(req, H2O_STRLIT("x-forwarded-host"));
        if (valid_host(host))
            c->authority = host;
    }
    if (c->has_addr)
        forum_ip_format(c->addr, c->text, sizeof(c->text));
    else
        strcpy(c->text, "unknown");
}
