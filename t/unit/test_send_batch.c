/*
 * plugins/util/send_batch.c when its data calls suspend it (PostgreSQL): the loop then runs other callbacks
 * in the middle of a pass, which queue more sends and fire the batch's own timer. Every send must still be
 * stored once, answered once, and answered only once stored, in order.
 *
 * The api here is a stand-in: its timer is run by hand, and its data calls (db_commit) run what the test
 * says another callback would do while the pass is suspended.
 */
#include "unit.h"
#include "../../plugins/util/send_batch.h"

typedef struct item {
    pu_queued_t q;
    int n;      /* the send's number, in the order queued */
    int stored; /* stored by the transaction that holds it (0 after a rollback) */
} item_t;

static item_t items[PU_SEND_BATCH_MAX];
static pu_send_batch_t batch;
static forum_api_t api;
static forum_timer_fn timer_fn;
static void *timer_arg;
static int queued_count, stores[512], answers[512], answer_order[512], num_answers, answered_unstored;
static void (*while_suspended)(void); /* what the loop runs while the pass waits for db_commit's answer */
static int whole_result, whole_calls, begins, rollbacks, waits, wakes;

static int fake_defer(forum_plugin_t *p, unsigned ms, forum_timer_fn fn, void *arg)
{
    (void)p;
    (void)ms;
    timer_fn = fn;
    timer_arg = arg;
    return 0;
}

static int fake_begin(void)
{
    ++begins;
    return 0;
}

static int fake_commit(void)
{
    void (*run)(void) = while_suspended;
    while_suspended = NULL; /* once */
    if (run != NULL)
        run();
    return 0;
}

static void fake_rollback(void)
{
    ++rollbacks;
}

static int fake_wait(const void *key)
{
    assert_ptr_equal(key, &batch);
    ++waits;
    return -1; /* no fiber to suspend here: the sender is answered as before */
}

static void fake_wake(const void *key, size_t max)
{
    assert_ptr_equal(key, &batch);
    /* as many as there is room for; all when the database is unavailable (they queue, or are told so) */
    assert_true(max == SIZE_MAX || max == PU_SEND_BATCH_MAX - pu_send_batch_count(&batch));
    ++wakes;
}

static int fake_failure(void)
{
    return FORUM_DB_ERROR;
}

static int64_t fake_mono_ms(void)
{
    return 0;
}

static void fake_ws_error(forum_ws_t *ws, const char *code, const char *message, const char *ref)
{
    (void)ws;
    (void)code;
    (void)message;
    (void)ref;
}

static void fake_ws_db_error(forum_ws_t *ws, const char *message, const char *ref)
{
    (void)ws;
    (void)message;
    (void)ref;
}

static int store_one(void *arg)
{
    item_t *it = arg;
    ++stores[it->n];
    it->stored = 1;
    return 1;
}

static void unstore_one(void *arg)
{
    ((item_t *)arg)->stored = 0;
}

static void answer_one(void *arg)
{
    item_t *it = arg;
    answered_unstored += !it->stored;
    ++answers[it->n];
    answer_order[num_answers++] = it->n;
}

static void free_one(void *arg)
{
    (void)arg;
}


/* store_all: marks every item stored, then answers as the test says (1 stored, 0 failed, -1 one by one) */
static int store_all(const pu_send_batch_t *b, size_t num)
{
    ++whole_calls;
    for (size_t i = 0; i != num; ++i)
        ((item_t *)pu_send_batch_item(b, i))->stored = 1;
    return whole_result;
}

static const pu_send_ops_t ops = {store_one, unstore_one, answer_one, free_one, NULL};
static const pu_send_ops_t whole_ops = {store_one, unstore_one, answer_one, free_one, store_all};

/* Queues one send, as a frame callback does. */
static void queue_one(void)
{
    item_t *it = pu_send_batch_slot(&batch, (forum_ws_t *)&batch, "cid");
    assert_non_null(it);
    it->n = queued_count++;
    pu_send_batch_queue(&batch, (forum_ws_t *)&batch, "cid");
}

/* Runs the batch's timer as the loop would, if one is set. */
static void run_timer(void)
{
    forum_timer_fn fn = timer_fn;
    timer_fn = NULL;
    if (fn != NULL)
        fn(timer_arg);
}

static int setup(void **state)
{
    (void)state;
    memset(&api, 0, sizeof(api));
    api.version = FORUM_API_VERSION;
    api.size = sizeof(api);
    api.defer = fake_defer;
    api.db_begin = fake_begin;
    api.db_commit = fake_commit;
    api.db_rollback = fake_rollback;
    api.db_failure = fake_failure;
    api.mono_ms = fake_mono_ms;
    api.ws_error = fake_ws_error;
    api.ws_db_error = fake_ws_db_error;
    api.wait = fake_wait;
    api.wake = fake_wake;
    whole_result = 1;
    whole_calls = begins = rollbacks = waits = wakes = 0;
    timer_fn = NULL;
    while_suspended = NULL;
    queued_count = num_answers = answered_unstored = 0;
    memset(stores, 0, sizeof(stores));
    memset(answers, 0, sizeof(answers));
    pu_send_batch_init(&batch, &api, NULL, &ops, items, sizeof(items[0]));
    return 0;
}

static void assert_each_once_in_order(int count)
{
    assert_int_equal(pu_send_batch_count(&batch), 0);
    assert_int_equal(num_answers, count);
    for (int i = 0; i != count; ++i) {
        assert_int_equal(stores[i], 1);
        assert_int_equal(answers[i], 1);
        assert_int_equal(answer_order[i], i);
    }
    assert_int_equal(answered_unstored, 0);
}

static void queue_two(void)
{
    queue_one();
    queue_one();
}

/* Frames queue sends while the pass waits for its commit: they are not part of that transaction. */
static void test_sends_queued_during_a_pass_are_stored_by_the_next(void **state)
{
    (void)state;
    queue_one();
    while_suspended = queue_two;
    run_timer();
    assert_int_equal(num_answers, 1);
    assert_int_equal(answered_unstored, 0);
    run_timer(); /* the pass scheduled the next one */
    assert_each_once_in_order(3);
}

static void queue_and_fire(void)
{
    queue_one();
    run_timer(); /* the timer the new send set fires while the first pass is suspended */
}

/* The batch's timer fires while a pass is suspended: no second pass over the same sends. */
static void test_no_second_pass_while_one_is_suspended(void **state)
{
    (void)state;
    queue_one();
    queue_one();
    while_suspended = queue_and_fire;
    run_timer();
    run_timer();
    assert_each_once_in_order(3);
}

/* Without a timer the pass under way stores what was queued meanwhile, once it is done. */
static int no_defer(forum_plugin_t *p, unsigned ms, forum_timer_fn fn, void *arg)
{
    (void)p;
    (void)ms;
    (void)fn;
    (void)arg;
    return -1;
}

static void test_without_timers_what_came_meanwhile_is_stored_after(void **state)
{
    (void)state;
    api.defer = no_defer;
    while_suspended = queue_two;
    queue_one(); /* stored at once: no timer */
    assert_each_once_in_order(3);
}

static int setup_whole(void **state)
{
    setup(state);
    pu_send_batch_init(&batch, &api, NULL, &whole_ops, items, sizeof(items[0]));
    return 0;
}

/* store_all takes the whole pass: one call, no store of each, every send answered once in order */
static void test_a_whole_store_stores_the_pass_at_once(void **state)
{
    (void)state;
    for (int i = 0; i != 5; ++i)
        queue_one();
    run_timer();
    assert_int_equal(whole_calls, 1);
    assert_int_equal(begins, 1);
    assert_int_equal(num_answers, 5);
    for (int i = 0; i != 5; ++i) {
        assert_int_equal(stores[i], 0);
        assert_int_equal(answer_order[i], i);
    }
    assert_int_equal(answered_unstored, 0);
}

/* -1: what store_all did is rolled back and forgotten, and each send is stored on its own in a new transaction */
static void test_a_batch_that_cannot_go_whole_goes_one_by_one(void **state)
{
    (void)state;
    whole_result = -1;
    for (int i = 0; i != 4; ++i)
        queue_one();
    run_timer();
    assert_int_equal(whole_calls, 1);
    assert_int_equal(rollbacks, 1);
    assert_int_equal(begins, 2);
    assert_each_once_in_order(4);
}

/* 0: a failure, told apart send by send as any failed batch is */
static void test_a_failed_whole_store_is_told_apart_send_by_send(void **state)
{
    (void)state;
    whole_result = 0;
    for (int i = 0; i != 3; ++i)
        queue_one();
    run_timer();
    assert_int_equal(whole_calls, 1);
    assert_each_once_in_order(3);
}

/* A full queue behind a pass under way: the sender waits for the pass (where it can), and the pass wakes it */
static void fill_the_queue(void)
{
    while (pu_send_batch_count(&batch) != PU_SEND_BATCH_MAX)
        queue_one();
    item_t *it = pu_send_batch_slot(&batch, (forum_ws_t *)&batch, "cid");
    assert_null(it); /* this stand-in cannot suspend: the sender is told to send again */
    assert_int_equal(waits, 1);
}

static void test_a_full_queue_waits_for_the_pass_under_way(void **state)
{
    (void)state;
    queue_one();
    while_suspended = fill_the_queue;
    run_timer();
    assert_true(wakes >= 1);
    int after_first = wakes;
    run_timer();
    assert_true(wakes > after_first);
    assert_each_once_in_order(PU_SEND_BATCH_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sends_queued_during_a_pass_are_stored_by_the_next, setup),
        cmocka_unit_test_setup(test_no_second_pass_while_one_is_suspended, setup),
        cmocka_unit_test_setup(test_without_timers_what_came_meanwhile_is_stored_after, setup),
        cmocka_unit_test_setup(test_a_whole_store_stores_the_pass_at_once, setup_whole),
        cmocka_unit_test_setup(test_a_batch_that_cannot_go_whole_goes_one_by_one, setup_whole),
        cmocka_unit_test_setup(test_a_failed_whole_store_is_told_apart_send_by_send, setup_whole),
        cmocka_unit_test_setup(test_a_full_queue_waits_for_the_pass_under_way, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
