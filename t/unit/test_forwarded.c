/*
 * handlers/forwarded.c and core/ipaddr.c: which client a request is from, given its socket peer,
 * trusted-proxies and its X-Forwarded-* headers. The request is built by hand: a connection whose
 * peer the test chooses, and headers added as h2o would have parsed them.
 */
#include "unit.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include "../../core/forum.h"

static struct sockaddr_storage peer;

static socklen_t get_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    (void)conn;
    socklen_t len = peer.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    memcpy(sa, &peer, len);
    return len;
}

static void set_peer(const char *addr)
{
    memset(&peer, 0, sizeof(peer));
    if (strchr(addr, ':') == NULL) {
        peer.ss_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &((struct sockaddr_in *)&peer)->sin_addr), 1);
    } else {
        peer.ss_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&peer)->sin6_addr), 1);
    }
}

static forum_config_t conf;
static h2o_conn_callbacks_t callbacks = {.get_peername = get_peername};
static h2o_conn_t conn = {.callbacks = &callbacks};

static void trust(const char *const *blocks, size_t n)
{
    free(conf.trusted_proxies);
    conf.trusted_proxies = calloc(n + 1, sizeof(*conf.trusted_proxies));
    for (size_t i = 0; i != n; ++i)
        assert_int_equal(forum_cidr_parse(blocks[i], conf.trusted_proxies + i), 0);
    conf.num_trusted_proxies = n;
    forum_server.conf = &conf;
}

/* the client of a request from `from` with the headers given as name, value pairs (NULL-terminated) */
static void client_of(const char *from, forum_client_t *c, ...)
{
    h2o_req_t req;
    va_list ap;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    req.conn = &conn;
    req.scheme = &H2O_URL_SCHEME_HTTP;
    req.authority = h2o_iovec_init(H2O_STRLIT("backend:8080"));
    set_peer(from);
    va_start(ap, c);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        h2o_add_header_by_str(&req.pool, &req.headers, name, strlen(name), 1, NULL, value, strlen(value));
    }
    va_end(ap);
    forum_client_of(&req, c);
    /* the authority may point into the pool: keep a copy the caller can compare after the pool is gone */
    static char authority[300];
    snprintf(authority, sizeof(authority), "%.*s", (int)c->authority.len, c->authority.base);
    c->authority = h2o_iovec_init(authority, strlen(authority));
    h2o_mem_clear_pool(&req.pool);
}

static void test_cidr_blocks(void **state)
{
    (void)state;
    forum_cidr_t c;
    uint8_t a[16];
    assert_int_equal(forum_cidr_parse("127.0.0.1/8", &c), 0); /* host bits are cleared, not refused */
    assert_int_equal(forum_ip_parse(H2O_STRLIT("127.200.3.4"), a), 0);
    assert_true(forum_cidr_contains(&c, a));
    assert_int_equal(forum_ip_parse(H2O_STRLIT("128.0.0.1"), a), 0);
    assert_false(forum_cidr_contains(&c, a));
    assert_int_equal(forum_cidr_parse("10.1.2.3", &c), 0); /* one address is a /32 */
    assert_int_equal(forum_ip_parse(H2O_STRLIT("10.1.2.4"), a), 0);
    assert_false(forum_cidr_contains(&c, a));
    assert_int_equal(forum_cidr_parse("fd00::/8", &c), 0);
    assert_int_equal(forum_ip_parse(H2O_STRLIT("fdab::1"), a), 0);
    assert_true(forum_cidr_contains(&c, a));
    assert_int_equal(forum_ip_parse(H2O_STRLIT("10.1.2.3"), a), 0);
    assert_false(forum_cidr_contains(&c, a)); /* an IPv4 address is not in an IPv6 block that does not map it */
    assert_int_equal(forum_cidr_parse("0.0.0.0/0", &c), 0);
    assert_true(forum_cidr_contains(&c, a));
    assert_int_equal(forum_ip_parse(H2O_STRLIT("::1"), a), 0);
    assert_false(forum_cidr_contains(&c, a)); /* all of IPv4 is not all of IPv6 */
    static const char *bad[] = {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "localhost", "10.0.0",
                                "1.2.3.4/08 ", "10.0.0.0/0008"};
    for (size_t i = 0; i != FORUM_ARRAY_SIZE(bad); ++i)
        if (forum_cidr_parse(bad[i], &c) == 0)
            unit_fail("accepted \"%s\"", bad[i]);
}

static void test_untrusted_peer_is_the_client(void **state)
{
    (void)state;
    static const char *const blocks[] = {"10.0.0.1"};
    forum_client_t c;
    trust(blocks, 1);
    client_of("192.0.2.5", &c, "x-forwarded-for", "203.0.113.9", "x-forwarded-proto", "https", "x-forwarded-host", "evil.example",
              NULL);
    assert_false(c.via_proxy);
    assert_string_equal(c.text, "192.0.2.5");
    assert_ptr_equal(c.scheme, &H2O_URL_SCHEME_HTTP);
    assert_string_equal(c.authority.base, "backend:8080");
}

static void test_rightmost_untrusted_address(void **state)
{
    (void)state;
    static const char *const blocks[] = {"10.0.0.0/8", "::1"};
    forum_client_t c;
    trust(blocks, 2);
    /* what a client wrote itself stands left of what our proxies appended */
    client_of("10.0.0.1", &c, "x-forwarded-for", "127.0.0.1, 198.51.100.1,203.0.113.9 , 10.0.0.2", NULL);
    assert_true(c.via_proxy);
    assert_string_equal(c.text, "203.0.113.9");
    /* several headers are one list, in order */
    client_of("::1", &c, "x-forwarded-for", "198.51.100.1", "x-forwarded-for", "203.0.113.9", "x-forwarded-for", "10.9.9.9", NULL);
    assert_string_equal(c.text, "203.0.113.9");
    /* all trusted: the left-most */
    client_of("10.0.0.1", &c, "x-forwarded-for", "10.0.0.3, 10.0.0.2", NULL);
    assert_string_equal(c.text, "10.0.0.3");
    /* brackets and ports, as some proxies write them */
    client_of("10.0.0.1", &c, "x-forwarded-for", "[2001:db8::7]:4711", NULL);
    assert_string_equal(c.text, "2001:db8::7");
    client_of("10.0.0.1", &c, "x-forwarded-for", "2001:db8::8", NULL);
    assert_string_equal(c.text, "2001:db8::8");
    client_of("10.0.0.1", &c, "x-forwarded-for", "198.51.100.3:80", NULL);
    assert_string_equal(c.text, "198.51.100.3");
    /* what is not an address stops the walk: nothing left of it is vouched for */
    client_of("10.0.0.1", &c, "x-forwarded-for", "203.0.113.9, unknown, 10.0.0.2", NULL);
    assert_string_equal(c.text, "10.0.0.2");
    client_of("10.0.0.1", &c, "x-forwarded-for", "203.0.113.9, ", NULL);
    assert_string_equal(c.text, "10.0.0.1");
    client_of("10.0.0.1", &c, NULL);
    assert_string_equal(c.text, "10.0.0.1");
    /* Forwarded (RFC 7239) is not read: the proxy that manages X-Forwarded-* would pass a client's copy */
    client_of("10.0.0.1", &c, "forwarded", "for=203.0.113.9;proto=https", NULL);
    assert_string_equal(c.text, "10.0.0.1");
    assert_ptr_equal(c.scheme, &H2O_URL_SCHEME_HTTP);
}

static void test_proto_and_host(void **state)
{
    (void)state;
    static const char *const blocks[] = {"127.0.0.1/8"};
    forum_client_t c;
    trust(blocks, 1);
    client_of("127.0.0.1", &c, "x-forwarded-proto", "HTTPS", "x-forwarded-host", "forum.example:8443", NULL);
    assert_ptr_equal(c.scheme, &H2O_URL_SCHEME_HTTPS);
    assert_string_equal(c.authority.base, "forum.example:8443");
    /* the nearest proxy's value is the right-most */
    client_of("127.0.0.1", &c, "x-forwarded-proto", "https, http", NULL);
    assert_ptr_equal(c.scheme, &H2O_URL_SCHEME_HTTP);
    /* what is neither scheme, or no host, changes nothing */
    client_of("127.0.0.1", &c, "x-forwarded-proto", "gopher", "x-forwarded-host", "a/b", NULL);
    assert_ptr_equal(c.scheme, &H2O_URL_SCHEME_HTTP);
    assert_string_equal(c.authority.base, "backend:8080");
    client_of("127.0.0.1", &c, "x-forwarded-host", "", NULL);
    assert_string_equal(c.authority.base, "backend:8080");
}

static void test_no_trusted_proxies(void **state)
{
    (void)state;
    forum_client_t c;
    trust(NULL, 0);
    client_of("127.0.0.1", &c, "x-forwarded-for", "203.0.113.9", "x-forwarded-proto", "https", NULL);
    assert_false(c.via_proxy);
    assert_string_equal(c.text, "127.0.0.1");
    assert_ptr_equal(c.scheme, &H2O_URL_SCHEME_HTTP);
    assert_true(forum_ip_is_loopback(c.addr));
    free(conf.trusted_proxies);
    conf.trusted_proxies = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_blocks),
        cmocka_unit_test(test_untrusted_peer_is_the_client),
        cmocka_unit_test(test_rightmost_untrusted_address),
        cmocka_unit_test(test_proto_and_host),
        cmocka_unit_test(test_no_trusted_proxies),
    };
    return cmocka_run_group_tests_name("forwarded", tests, NULL, NULL);
}
