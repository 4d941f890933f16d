/* core/session.c: sessions stored as the SHA-256 of their token, and the `sid` cookie parser. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <openssl/sha.h>
#include "unit_db.h"

enum { HOUR_MS = 3600 * 1000 };


static int64_t count_sessions(const char *where)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions WHERE %s", where);
    forum_stmt_t *s = forum_db_stmt(sql);
    assert_non_null(s);
    assert_int_equal(forum_db_step(s), FORUM_DB_ROW);
    int64_t n = forum_db_col_int(s, 0);
    forum_db_reset_active();
    return n;
}

static void create(int64_t user_id, int64_t lifetime_ms, char *token, forum_session_t *out)
{
    assert_int_equal(forum_session_create(user_id, lifetime_ms, token, out), 0);
    forum_db_reset_active();
}

static int find(const char *token, size_t len, forum_session_t *out)
{
    int ret = forum_session_find(token, len, out);
    forum_db_reset_active();
    return ret;
}

static void test_created_session_is_found_by_its_token(void **state)
{
    (void)state;
    char token[65], other[65];
    forum_session_t created, found, second;
    int64_t before = forum_now_ms();
    create(42, HOUR_MS, token, &created);
    int64_t after = forum_now_ms();

    assert_int_equal(strlen(token), 64);
    for (size_t i = 0; i != 64; ++i)
        assert_non_null(strchr("0123456789abcdef", token[i]));
    assert_int_equal(created.user_id, 42);
    assert_true(created.expires_ms >= before + HOUR_MS && created.expires_ms <= after + HOUR_MS);

    memset(&found, 0, sizeof(found));
    assert_int_equal(find(token, 64, &found), 0);
    assert_int_equal(found.user_id, 42);
    assert_true(found.expires_ms == created.expires_ms);
    assert_memory_equal(found.hash, created.hash, FORUM_SESSION_HASH_LEN);

    /* each session gets its own token */
    create(42, HOUR_MS, other, &second);
    assert_string_not_equal(token, other);
    assert_int_equal(find(other, 64, &found), 0);
    assert_int_equal(find(token, 64, &found), 0);
}

static void test_find_reads_only_len_bytes(void **state)
{
    (void)state;
    char token[65], cookie[128];
    forum_session_t s;
    create(5, HOUR_MS, token, &s);
    /* the token as it sits in a Cookie header, followed by more bytes */
    snprintf(cookie, sizeof(cookie), "%s; theme=dark", token);
    assert_int_equal(find(cookie, 64, &s), 0);
    assert_int_equal(s.user_id, 5);
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void test_database_keeps_only_the_hash(void **state)
{
    fixture_t *f = *state;
    char token[65], path[PATH_MAX + 8], upper[65];
    uint8_t raw[32], digest[32];
    forum_session_t s;
    create(3, HOUR_MS, token, &s);

    /* the stored key is SHA-256 of the token's 32 bytes */
    for (size_t i = 0; i != 32; ++i)
        raw[i] = (uint8_t)(hexval(token[2 * i]) << 4 | hexval(token[2 * i + 1]));
    SHA256(raw, sizeof(raw), digest);
    assert_memory_equal(s.hash, digest, 32);

    forum_stmt_t *st = forum_db_stmt("SELECT typeof(token_hash), length(token_hash), hex(token_hash), user_id FROM sessions");
    assert_int_equal(forum_db_step(st), FORUM_DB_ROW);
    assert_string_equal(forum_db_col_text(st, 0), "blob");
    assert_int_equal(forum_db_col_int(st, 1), 32);
    for (size_t i = 0; i != 64; ++i)
        upper[i] = (char)toupper((unsigned char)token[i]);
    upper[64] = '\0';
    assert_string_not_equal(forum_db_col_text(st, 2), upper);
    assert_int_equal(forum_db_col_int(st, 3), 3);
    assert_int_equal(forum_db_step(st), FORUM_DB_DONE);
    forum_db_reset_active();

    /* neither the token's text nor its bytes are anywhere in the files */
    forum_db_close();
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i != sizeof(suffixes) / sizeof(suffixes[0]); ++i) {
        size_t len;
        snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
        char *data = unit_slurp(path, &len);
        if (data == NULL)
            continue;
        int leaked = memmem(data, len, token, 64) != NULL || memmem(data, len, upper, 64) != NULL ||
                     memmem(data, len, raw, sizeof(raw)) != NULL;
        int has_hash = memmem(data, len, digest, sizeof(digest)) != NULL;
        free(data);
        if (leaked)
            unit_fail("the token is in %s", path);
        if (i == 0)
            assert_true(has_hash); /* the search would find it: the hash is there */
    }
}

static void test_malformed_tokens_are_refused(void **state)
{
    (void)state;
    char token[65], bad[80];
    forum_session_t s;
    create(8, HOUR_MS, token, &s);

    assert_int_equal(find(token, 63, &s), -1);
    assert_int_equal(find(token, 0, &s), -1);
    snprintf(bad, sizeof(bad), "%s0", token);
    assert_int_equal(find(bad, 65, &s), -1);

    /* a non-hex character */
    memcpy(bad, token, 65);
    bad[17] = 'g';
    assert_int_equal(find(bad, 64, &s), -1);
    bad[17] = ' ';
    assert_int_equal(find(bad, 64, &s), -1);

    /* upper-case hex is another token */
    for (size_t i = 0; i != 64; ++i)
        bad[i] = (char)toupper((unsigned char)token[i]);
    bad[64] = '\0';
    assert_string_not_equal(bad, token); /* 64 digits and no letter: as likely as winning the lottery twice */
    assert_int_equal(find(bad, 64, &s), -1);

    /* a well-formed token nobody was given */
    memcpy(bad, token, 65);
    bad[0] = bad[0] == '0' ? '1' : '0';
    assert_int_equal(find(bad, 64, &s), -1);

    /* and the real one still works */
    assert_int_equal(find(token, 64, &s), 0);
}

static void test_expired_session_is_not_found(void **state)
{
    (void)state;
    char token[65], now_token[65];
    forum_session_t s;
    create(9, -1000, token, &s);
    assert_int_equal(find(token, 64, &s), -1);
    /* a lifetime of zero expires at once */
    create(9, 0, now_token, &s);
    assert_int_equal(find(now_token, 64, &s), -1);
}

static void test_delete_removes_the_session(void **state)
{
    (void)state;
    char token[65], kept[65];
    forum_session_t s, other;
    create(11, HOUR_MS, token, &s);
    create(11, HOUR_MS, kept, &other);
    forum_session_delete(s.hash);
    forum_db_reset_active();
    assert_int_equal(find(token, 64, &s), -1);
    /* the user's other session stays */
    assert_int_equal(find(kept, 64, &other), 0);
    assert_int_equal(count_sessions("1"), 1);
}

/* The cookie value `header` yields, or NULL when it has no sid. */
static void expect_cookie(const char *header, const char *want)
{
    const char *value = NULL;
    size_t len = forum_session_cookie(header, strlen(header), &value);
    if (want == NULL) {
        if (len != 0)
            unit_fail("\"%s\": found \"%.*s\", expected no sid", header, (int)len, value);
        return;
    }
    if (len != strlen(want) || value == NULL || memcmp(value, want, len) != 0)
        unit_fail("\"%s\": found \"%.*s\", expected \"%s\"", header, (int)len, value != NULL ? value : "", want);
}

static void test_cookie_finds_sid_among_others(void **state)
{
    (void)state;
    expect_cookie("a=b; sid=XYZ; c=d", "XYZ");
    expect_cookie("sid=XYZ", "XYZ");
    expect_cookie("sid=XYZ;", "XYZ");
    expect_cookie("theme=dark;sid=abc123", "abc123");
    expect_cookie("xsid=1; sid=real", "real");
    expect_cookie("a=sid=1; sid=2", "2");
}

static void test_cookie_trims_white_space(void **state)
{
    (void)state;
    expect_cookie(" sid = XYZ ", "XYZ");
    expect_cookie("a=b;\tsid=XYZ\t; c=d", "XYZ");
}

static void test_cookie_without_sid_gives_0(void **state)
{
    (void)state;
    expect_cookie("", NULL);
    expect_cookie("a=b; c=d", NULL);
    expect_cookie("xsid=1", NULL);
    expect_cookie("sidx=1", NULL);
    expect_cookie("SID=1", NULL);
    expect_cookie("a=sid=1", NULL);
    expect_cookie("sid", NULL);
    expect_cookie("sid;", NULL);
    expect_cookie(";;;", NULL);
}

static void test_cookie_reads_only_len_bytes(void **state)
{
    (void)state;
    static const char header[] = "sid=XYZ; more=1";
    const char *value = NULL;
    assert_int_equal(forum_session_cookie(header, 7, &value), 3);
    assert_memory_equal(value, "XYZ", 3);
    assert_int_equal(forum_session_cookie(header, 4, &value), 0);
    assert_int_equal(forum_session_cookie("a=1; sid=2", 4, &value), 0);
}

static void test_purge_removes_expired_rows(void **state)
{
    (void)state;
    char token[65], live[65];
    forum_session_t s;
    create(1, -1, token, &s);
    create(2, -HOUR_MS, token, &s);
    create(3, HOUR_MS, live, &s);
    assert_int_equal(count_sessions("1"), 3);
    forum_session_purge();
    forum_db_reset_active();
    assert_int_equal(count_sessions("1"), 1);
    assert_int_equal(find(live, 64, &s), 0);
    assert_int_equal(s.user_id, 3);
}

static void test_purge_works_in_bounded_batches(void **state)
{
    (void)state;
    char token[65], live[65];
    forum_session_t s;
    assert_int_equal(forum_db_begin(), 0);
    for (int i = 0; i != 1001; ++i)
        create(i + 1, -HOUR_MS, token, &s);
    assert_int_equal(forum_db_commit(), 0);
    create(5000, HOUR_MS, live, &s);

    /* one call removes some, but not an unbounded number (session.c: at most 1000) */
    forum_session_purge();
    forum_db_reset_active();
    int64_t left = count_sessions("user_id != 5000");
    assert_true(left >= 1 && left <= 1000);
    /* repeated calls get through them all and keep the live one */
    for (int i = 0; i != 1001 && left != 0; ++i) {
        forum_session_purge();
        forum_db_reset_active();
        left = count_sessions("user_id != 5000");
    }
    assert_int_equal(left, 0);
    assert_int_equal(find(live, 64, &s), 0);
}

static void test_purge_returns_how_many_went(void **state)
{
    (void)state;
    char token[65];
    forum_session_t s;
    create(1, -1, token, &s);
    create(2, -1, token, &s);
    create(3, HOUR_MS, token, &s);
    assert_int_equal(forum_session_purge(), 2);
    forum_db_reset_active();
    assert_int_equal(forum_session_purge(), 0);
    forum_db_reset_active();
}

/* A request whose headers are the given Cookie values, from `pool`. */
static void cookie_request(h2o_req_t *req, h2o_mem_pool_t *pool, const char **cookies, size_t n)
{
    memset(req, 0, sizeof(*req));
    for (size_t i = 0; i != n; ++i)
        h2o_add_header(pool, &req->headers, H2O_TOKEN_COOKIE, NULL, cookies[i], strlen(cookies[i]));
}

static void test_sids_are_collected_in_order_up_to_max(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_req_t req;
    h2o_iovec_t sids[8];
    const char *cookies[] = {"a=1; sid=one; sid=two", "theme=dark", "sid=three; sid=four; sid=five"};
    h2o_mem_init_pool(&pool);
    cookie_request(&req, &pool, cookies, 3);
    assert_int_equal(forum_session_sids(&req.headers, sids, 8), 5);
    assert_true(h2o_memis(sids[0].base, sids[0].len, H2O_STRLIT("one")));
    assert_true(h2o_memis(sids[2].base, sids[2].len, H2O_STRLIT("three")));
    assert_true(h2o_memis(sids[4].base, sids[4].len, H2O_STRLIT("five")));
    assert_int_equal(forum_session_sids(&req.headers, sids, 2), 2);
    assert_true(h2o_memis(sids[1].base, sids[1].len, H2O_STRLIT("two")));
    h2o_mem_clear_pool(&pool);
}

/* The HTTP/2 "cookie bomb": thousands of Cookie headers of thousands of sids yield no more than the bound. */
static void test_sids_of_a_cookie_bomb_are_bounded(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_req_t req;
    static h2o_iovec_t sids[100000];
    char *bomb = malloc(58 * 70 + 1), *p = bomb;
    for (int i = 0; i != 58; ++i)
        p += sprintf(p, "sid=%064d; ", i);
    const char **cookies = malloc(16000 * sizeof(*cookies));
    for (int i = 0; i != 16000; ++i)
        cookies[i] = bomb;
    h2o_mem_init_pool(&pool);
    cookie_request(&req, &pool, cookies, 16000);
    /* even when the caller would take them all, the scan stops at its byte and header bounds */
    size_t n = forum_session_sids(&req.headers, sids, FORUM_ARRAY_SIZE(sids));
    assert_true(n > 0 && n <= FORUM_SESSION_COOKIE_BYTES_MAX / 70 + 1);
    assert_int_equal(forum_session_sids(&req.headers, sids, FORUM_SESSION_SIDS_MAX), FORUM_SESSION_SIDS_MAX);
    h2o_mem_clear_pool(&pool);
    free(cookies);
    free(bomb);
}

/* A live sid among the first few is found behind stale ones; one after the bound is not looked up. */
static void test_request_session_looks_at_the_first_sids_only(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_req_t req;
    forum_session_t s;
    char token[65], stale[FORUM_SESSION_SIDS_MAX][80], live_cookie[80];
    const char *cookies[FORUM_SESSION_SIDS_MAX + 1];
    create(7, HOUR_MS, token, &s);
    for (int i = 0; i != FORUM_SESSION_SIDS_MAX; ++i) {
        snprintf(stale[i], sizeof(stale[i]), "sid=%064d", i);
        cookies[i] = stale[i];
    }
    snprintf(live_cookie, sizeof(live_cookie), "sid=%s", token);
    h2o_mem_init_pool(&pool);

    cookies[FORUM_SESSION_SIDS_MAX - 1] = live_cookie; /* the last one looked at */
    cookie_request(&req, &pool, cookies, FORUM_SESSION_SIDS_MAX);
    memset(&s, 0, sizeof(s));
    assert_int_equal(forum_session_of_request(&req, &s), 0);
    forum_db_reset_active();
    assert_int_equal(s.user_id, 7);

    cookies[FORUM_SESSION_SIDS_MAX - 1] = stale[FORUM_SESSION_SIDS_MAX - 1];
    cookies[FORUM_SESSION_SIDS_MAX] = live_cookie; /* one past the bound */
    cookie_request(&req, &pool, cookies, FORUM_SESSION_SIDS_MAX + 1);
    assert_int_equal(forum_session_of_request(&req, &s), -1);
    forum_db_reset_active();
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_created_session_is_found_by_its_token, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_find_reads_only_len_bytes, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_database_keeps_only_the_hash, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_tokens_are_refused, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_expired_session_is_not_found, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_delete_removes_the_session, unit_db_setup, unit_db_teardown),
        cmocka_unit_test(test_cookie_finds_sid_among_others),
        cmocka_unit_test(test_cookie_trims_white_space),
        cmocka_unit_test(test_cookie_without_sid_gives_0),
        cmocka_unit_test(test_cookie_reads_only_len_bytes),
        cmocka_unit_test(test_sids_are_collected_in_order_up_to_max),
        cmocka_unit_test(test_sids_of_a_cookie_bomb_are_bounded),
        cmocka_unit_test_setup_teardown(test_request_session_looks_at_the_first_sids_only, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_purge_removes_expired_rows, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_purge_works_in_bounded_batches, unit_db_setup, unit_db_teardown),
        cmocka_unit_test_setup_teardown(test_purge_returns_how_many_went, unit_db_setup, unit_db_teardown),
    };
    forum_log_set_level(FORUM_LOG_WARN);
    return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
