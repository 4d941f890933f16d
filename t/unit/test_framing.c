/* handlers/framing.c: HTTP/1.x request heads whose framing a proxy and h2o could read differently. */
#include "unit.h"
#include "../../core/forum.h"

static int ambiguous(const char *head)
{
    return forum_http1_head_ambiguous(head, strlen(head));
}

static void test_plain_heads_pass(void **state)
{
    (void)state;
    assert_false(ambiguous("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_false(ambiguous("POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello"));
    assert_false(ambiguous("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    /* the same length twice is one length (RFC 9112 6.3) */
    assert_false(ambiguous("POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length:  5 \r\n\r\nhello"));
    /* empty lines before the request line, bare LF line ends */
    assert_false(ambiguous("\r\n\r\nGET / HTTP/1.1\nHost: a\n\n"));
    /* what follows the head is not read: a body or a pipelined request may say anything */
    assert_false(ambiguous("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\nHost: c\r\n\r\n"));
    /* names that only contain the words */
    assert_false(ambiguous("GET / HTTP/1.1\r\nHost: a\r\nX-Host: b\r\nX-Content-Length: 3\r\nContent-Length: 0\r\n\r\n"));
    /* no whole head: nothing to say */
    assert_false(ambiguous("GET / HTTP/1.1\r\nHost: a\r\nHost: b"));
}

static void test_ambiguous_heads_are_found(void **state)
{
    (void)state;
    assert_true(ambiguous("POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"));
    assert_true(ambiguous("POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 5\r\n\r\n"));
    assert_true(ambiguous("POST /x HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n"));
    assert_true(ambiguous("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
    assert_true(ambiguous("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"));
    assert_true(ambiguous("GET / HTTP/1.1\nHost: a\nX: 1\n\tfolded\n\n"));
    assert_true(ambiguous("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n Content-Length: 5\r\n\r\n"));
}

static void test_reads_only_len_bytes(void **state)
{
    (void)state;
    static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nHost: b\r\n\r\n";
    assert_false(forum_http1_head_ambiguous(head, 27));
    assert_false(forum_http1_head_ambiguous(head, 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_heads_pass),
        cmocka_unit_test(test_ambiguous_heads_are_found),
        cmocka_unit_test(test_reads_only_len_bytes),
    };
    return cmocka_run_group_tests_name("framing", tests, NULL, NULL);
}
