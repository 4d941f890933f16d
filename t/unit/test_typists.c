/*
 * plugins/util/typists.c when a relay suspends the callback that makes it (a data call on PostgreSQL, as
 * rooms' relay reads the room's members): the loop then runs other callbacks, which may send the same typing
 * state again or take the typist offline. A repeated state is still thinned, and nothing of the typist is
 * read or written after it is gone (the ASan build checks the latter).
 */
#include "unit.h"
#include "../../plugins/util/typists.h"

static pu_typists_t typists;
static forum_api_t api;
static int relays;
static int64_t relayed_from[16], relayed_target[16];
static int relayed_active[16];
static void (*while_suspended)(const pu_typist_t *t); /* what the loop runs during the next relay */

static int64_t fake_mono_ms(void)
{
    return 5000;
}

static void relay(const pu_typist_t *t, int64_t target, int active)
{
    void (*run)(const pu_typist_t *) = while_suspended;
    relayed_from[relays] = t->from;
    relayed_target[relays] = target;
    relayed_active[relays] = active;
    ++relays;
    while_suspended = NULL;
    if (run != NULL)
        run(t);
}

static int setup(void **state)
{
    (void)state;
    memset(&api, 0, sizeof(api));
    api.version = FORUM_API_VERSION;
    api.size = sizeof(api);
    api.mono_ms = fake_mono_ms;
    relays = 0;
    while_suspended = NULL;
    pu_typists_init(&typists, &api, 2, sizeof(pu_typist_t), relay);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pu_typists_fini(&typists);
    return 0;
}

/* the same frame again, from the same user, while the first one's relay is suspended */
static void type_again(const pu_typist_t *t)
{
    pu_typist_t *again = pu_typists_find(&typists, 7);
    (void)t;
    assert_non_null(again);
    pu_typists_update(&typists, again, 100, 1, 0);
}

static void test_a_repeat_during_a_relay_is_thinned(void **state)
{
    (void)state;
    pu_typist_t *t = pu_typists_add(&typists, 7);
    assert_non_null(t);
    while_suspended = type_again;
    pu_typists_update(&typists, t, 100, 1, 0);
    assert_int_equal(relays, 1);
}

static void go_offline(const pu_typist_t *t)
{
    (void)t;
    pu_typists_offline(&typists, 7);
}

/* The typist goes offline during the relay that tells its oldest target it stopped (its states are full). */
static void test_going_offline_during_a_relay(void **state)
{
    (void)state;
    pu_typist_t *t = pu_typists_add(&typists, 7);
    assert_non_null(t);
    pu_typists_update(&typists, t, 100, 1, 0);
    pu_typists_update(&typists, t, 200, 1, 0);
    assert_int_equal(relays, 2);
    while_suspended = go_offline;
    pu_typists_update(&typists, t, 300, 1, 0); /* 100 is pushed out: told it stopped, then 300 would be told */
    /* 100 stopped; offline tells 200 and 300 (already recorded) that 7 stopped; 300 is not told it types after that */
    assert_int_equal(relays, 5);
    assert_int_equal(relayed_target[2], 100);
    assert_int_equal(relayed_active[2], 0);
    assert_int_equal(relayed_target[4], 300);
    assert_int_equal(relayed_active[4], 0);
    for (int i = 0; i != relays; ++i)
        assert_int_equal(relayed_from[i], 7);
    assert_null(pu_typists_find(&typists, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_repeat_during_a_relay_is_thinned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_going_offline_during_a_relay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
