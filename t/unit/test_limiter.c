/*
 * plugins/auth/limiter.c: token buckets that are charged when an attempt is decided, refunded when
 * its outcome does not count, driven by the caller's clock (so a step of the wall clock cannot stall
 * them), in a table of fixed size that forgets the least recently used key.
 */
#include "unit.h"
#include "../../plugins/auth/auth.h"

/* the auth plugin's login default: 10 attempts a minute, one back every 6 s */
enum { BURST = 10, WINDOW_S = 60, STEP_MS = 6000 };
static const int64_t T0 = 1796000000000LL; /* any instant: the limiter only compares times */

static void exhaust(auth_limiter_t *l, const char *key, int64_t now)
{
    for (int i = 0; i != BURST; ++i)
        assert_int_equal(auth_limiter_reserve(l, key, now), 0);
}

static void test_reserve_allows_the_burst_then_refuses(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 100);
    exhaust(l, "acct:alice", T0);
    unsigned wait = auth_limiter_reserve(l, "acct:alice", T0);
    assert_int_equal(wait, 6); /* the next token is 6 s away */
    assert_int_equal(auth_limiter_reserve(l, "acct:alice", T0 + 1000), 5);
    assert_int_equal(auth_limiter_reserve(l, "acct:bob", T0), 0); /* another key is not touched */
    auth_limiter_free(l);
}

static void test_a_refused_reservation_takes_nothing(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 100);
    exhaust(l, "k", T0);
    for (int i = 0; i != 100; ++i)
        assert_int_not_equal(auth_limiter_reserve(l, "k", T0 + i), 0);
    /* refusals did not dig a hole: one step later exactly one attempt is back */
    assert_int_equal(auth_limiter_reserve(l, "k", T0 + STEP_MS), 0);
    assert_int_not_equal(auth_limiter_reserve(l, "k", T0 + STEP_MS), 0);
    auth_limiter_free(l);
}

static void test_refund_gives_the_attempt_back(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 100);
    for (int i = 0; i != 50; ++i) {
        assert_int_equal(auth_limiter_reserve(l, "k", T0), 0);
        auth_limiter_refund(l, "k", T0);
    }
    exhaust(l, "k", T0); /* fifty refunded attempts left the whole burst */
    assert_int_not_equal(auth_limiter_reserve(l, "k", T0), 0);
    auth_limiter_refund(l, "k", T0);
    auth_limiter_refund(l, "k", T0);
    assert_int_equal(auth_limiter_reserve(l, "k", T0), 0);
    auth_limiter_refund(l, "never-seen", T0); /* a key the table does not hold: nothing happens */
    assert_int_equal(auth_limiter_keys(l), 1);
    auth_limiter_free(l);
}

static void test_refund_never_exceeds_the_burst(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 100);
    assert_int_equal(auth_limiter_reserve(l, "k", T0), 0);
    for (int i = 0; i != 20; ++i)
        auth_limiter_refund(l, "k", T0);
    exhaust(l, "k", T0);
    assert_int_not_equal(auth_limiter_reserve(l, "k", T0), 0);
    auth_limiter_free(l);
}

static void test_tokens_come_back_evenly(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 100);
    exhaust(l, "k", T0);
    assert_int_not_equal(auth_limiter_reserve(l, "k", T0 + STEP_MS - 1), 0);
    assert_int_equal(auth_limiter_reserve(l, "k", T0 + STEP_MS), 0);
    /* a long pause refills to the burst, not beyond */
    exhaust(l, "k", T0 + 3600 * 1000);
    assert_int_not_equal(auth_limiter_reserve(l, "k", T0 + 3600 * 1000), 0);
    auth_limiter_free(l);
}

static void test_a_clock_stepping_back_does_not_stall_a_key(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 100);
    int64_t back = T0 - 3600 * 1000; /* an hour back, as a wall clock corrected by NTP may go */
    exhaust(l, "k", T0);
    unsigned wait = auth_limiter_reserve(l, "k", back);
    assert_in_range(wait, 1, 6); /* never "wait until the old time comes back" */
    /* time goes on from the new reading: a step later an attempt is back, a window later all */
    assert_int_equal(auth_limiter_reserve(l, "k", back + STEP_MS), 0);
    exhaust(l, "k", back + STEP_MS + WINDOW_S * 1000);
    /* and a step back gives nothing either */
    assert_int_not_equal(auth_limiter_reserve(l, "k", back - 10 * 3600 * 1000), 0);
    auth_limiter_free(l);
}

static void test_the_table_never_holds_more_than_its_size(void **state)
{
    (void)state;
    char key[64];
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 1000);
    for (int i = 0; i != 50000; ++i) {
        snprintf(key, sizeof(key), "addr:10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        assert_int_equal(auth_limiter_reserve(l, key, T0 + i), 0);
        assert_true(auth_limiter_keys(l) <= 1000);
    }
    assert_int_equal(auth_limiter_keys(l), 1000);
    /* the last thousand are the ones kept, each with its own count */
    for (int i = 49000; i != 50000; ++i) {
        snprintf(key, sizeof(key), "addr:10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        for (int j = 1; j != BURST; ++j)
            assert_int_equal(auth_limiter_reserve(l, key, T0 + 50000), 0);
        assert_int_not_equal(auth_limiter_reserve(l, key, T0 + 50000), 0);
    }
    assert_int_equal(auth_limiter_keys(l), 1000);
    auth_limiter_free(l);
}

static void test_the_least_recently_used_key_goes_first(void **state)
{
    (void)state;
    auth_limiter_t *l = auth_limiter_new(BURST, WINDOW_S, 3);
    exhaust(l, "acct:victim", T0); /* oldest, then kept alive by use */
    exhaust(l, "addr:a", T0 + 1);
    exhaust(l, "addr:b", T0 + 2);
    assert_int_not_equal(auth_limiter_reserve(l, "acct:victim", T0 + 3), 0); /* refused, but used: now the newest */
    assert_int_equal(auth_limiter_reserve(l, "addr:c", T0 + 4), 0);          /* full: addr:a, the oldest, goes */
    assert_int_equal(auth_limiter_keys(l), 3);
    assert_int_not_equal(auth_limiter_reserve(l, "acct:victim", T0 + 5), 0); /* still limited */
    assert_int_not_equal(auth_limiter_reserve(l, "addr:b", T0 + 6), 0);      /* kept as well */
    /* addr:a was forgotten: it starts again with a full burst (and pushes out addr:c, now the oldest) */
    exhaust(l, "addr:a", T0 + 7);
    assert_int_not_equal(auth_limiter_reserve(l, "acct:victim", T0 + 8), 0);
    assert_int_equal(auth_limiter_reserve(l, "addr:c", T0 + 9), 0);
    auth_limiter_free(l);
}

static void test_long_and_similar_keys_are_told_apart(void **state)
{
    (void)state;
    char key[1200];
    auth_limiter_t *l = auth_limiter_new(1, WINDOW_S, 5000);
    for (int i = 0; i != 4000; ++i) {
        memset(key, 'x', 1100);
        snprintf(key + 1100, sizeof(key) - 1100, "%d", i);
        assert_int_equal(auth_limiter_reserve(l, key, T0), 0);
    }
    for (int i = 0; i != 4000; ++i) {
        memset(key, 'x', 1100);
        snprintf(key + 1100, sizeof(key) - 1100, "%d", i);
        assert_int_not_equal(auth_limiter_reserve(l, key, T0), 0);
    }
    auth_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_allows_the_burst_then_refuses),
        cmocka_unit_test(test_a_refused_reservation_takes_nothing),
        cmocka_unit_test(test_refund_gives_the_attempt_back),
        cmocka_unit_test(test_refund_never_exceeds_the_burst),
        cmocka_unit_test(test_tokens_come_back_evenly),
        cmocka_unit_test(test_a_clock_stepping_back_does_not_stall_a_key),
        cmocka_unit_test(test_the_table_never_holds_more_than_its_size),
        cmocka_unit_test(test_the_least_recently_used_key_goes_first),
        cmocka_unit_test(test_long_and_similar_keys_are_told_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
