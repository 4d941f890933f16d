/*
 * core/fiber.c: callbacks that may suspend. Each test records the order in which its pieces ran (a trace
 * of letters) and compares it with the order the contract promises: a fiber runs until it suspends, the
 * loop goes on, a wake from the loop resumes it at once, a wake from another fiber only once that fiber
 * has given the loop back; a nested run stays on its caller's fiber; on_exit runs when the function has
 * returned, not when it suspends; the data word is the fiber's own; with fibers off a run is a call.
 */
#include "unit.h"
#include "../../core/forum.h"

static char trace[64];
static size_t trace_len;

static void mark(char c)
{
    if (trace_len + 1 < sizeof(trace)) {
        trace[trace_len++] = c;
        trace[trace_len] = '\0';
    }
}

static forum_fiber_t *parked[128]; /* fibers that suspended, in order, for the test to wake */
static size_t num_parked;

static void park(void)
{
    parked[num_parked++] = forum_fiber_self();
    forum_fiber_suspend();
}

static int setup(void **state)
{
    (void)state;
    trace[0] = '\0';
    trace_len = 0;
    num_parked = 0;
    forum_fiber_enable(1);
    return 0;
}

static int teardown(void **state)
{
    size_t live, peak;
    (void)state;
    forum_fiber_enable(0);
    forum_fiber_stats(&live, &peak);
    /* every test wakes what it suspended: a fiber left alive would be a test that lost track of one */
    assert_int_equal(live, 0);
    return 0;
}

/* --- fibers off: a run is a plain call --- */

static forum_fiber_t *seen_self;

static void note_self(void *arg)
{
    seen_self = forum_fiber_self();
    ++*(int *)arg;
}

static void test_off_runs_the_function_directly(void **state)
{
    int calls = 0;
    size_t live, peak, peak_before;
    (void)state;
    forum_fiber_enable(0);
    assert_false(forum_fiber_enabled());
    forum_fiber_stats(&live, &peak_before);
    seen_self = (forum_fiber_t *)&calls; /* anything but NULL */
    forum_fiber_run(note_self, &calls);
    assert_int_equal(calls, 1);
    assert_null(seen_self); /* on the caller's own stack, not on a fiber */
    forum_fiber_stats(&live, &peak);
    assert_int_equal(live, 0);
    assert_int_equal(peak, peak_before); /* no fiber was made for it */
}

static void test_suspend_outside_a_fiber_is_ignored(void **state)
{
    (void)state;
    assert_null(forum_fiber_self());
    forum_fiber_suspend(); /* logged as a bug and ignored: it must return, not jump anywhere */
    mark('x');
    assert_string_equal(trace, "x");
}

/* --- run, suspend, wake --- */

static void suspends_once(void *arg)
{
    (void)arg;
    mark('a');
    park();
    mark('c');
}

static void test_run_returns_when_the_fiber_suspends_and_wake_resumes_it(void **state)
{
    size_t live, peak;
    (void)state;
    assert_true(forum_fiber_enabled());
    forum_fiber_run(suspends_once, NULL);
    mark('b'); /* the loop goes on while the fiber waits */
    assert_string_equal(trace, "ab");
    assert_int_equal(num_parked, 1);
    assert_non_null(parked[0]);
    forum_fiber_stats(&live, &peak);
    assert_int_equal(live, 1);
    assert_true(peak >= 1);
    forum_fiber_wake(parked[0]); /* from the loop: the fiber runs now, to its end */
    assert_string_equal(trace, "abc");
    forum_fiber_stats(&live, &peak);
    assert_int_equal(live, 0);
    assert_null(forum_fiber_self());
}

static void runs_to_the_end(void *arg)
{
    (void)arg;
    seen_self = forum_fiber_self();
    mark('r');
}

static void test_a_fiber_that_never_suspends_ends_within_run(void **state)
{
    (void)state;
    seen_self = NULL;
    forum_fiber_run(runs_to_the_end, NULL);
    assert_string_equal(trace, "r");
    assert_non_null(seen_self); /* it did run on a fiber */
    assert_null(forum_fiber_self());
}

static forum_fiber_t *by_letter[2]; /* where fiber 'a' and fiber 'b' last suspended */

static void suspends_three_times(void *arg)
{
    char c = *(const char *)arg;
    for (int i = 0; i != 3; ++i) {
        mark(c);
        by_letter[c - 'a'] = forum_fiber_self();
        forum_fiber_suspend();
    }
    mark((char)(c - 'a' + 'A'));
}

static void test_fibers_interleave_and_keep_their_own_stacks(void **state)
{
    static const char a = 'a', b = 'b';
    (void)state;
    forum_fiber_run(suspends_three_times, (void *)&a);
    forum_fiber_run(suspends_three_times, (void *)&b);
    assert_ptr_not_equal(by_letter[0], by_letter[1]);
    /* wake them in turns, b first: each resumes where it stopped, with its own loop counter */
    for (int turn = 0; turn != 3; ++turn) {
        forum_fiber_wake(by_letter[1]);
        forum_fiber_wake(by_letter[0]);
    }
    assert_string_equal(trace, "abbabaBA");
}

/* --- a wake from a fiber waits for the waker to give the loop back --- */

static void sleeper(void *arg)
{
    (void)arg;
    mark('s');
    park();
    mark('S'); /* must come after everything the waker does before it suspends or ends */
}

static void waker_that_ends(void *arg)
{
    forum_fiber_t *target = arg;
    mark('w');
    forum_fiber_wake(target);
    mark('W'); /* still the waker's turn: the woken fiber has not run yet */
}

static void test_a_fiber_woken_from_a_fiber_runs_after_the_waker_ends(void **state)
{
    (void)state;
    forum_fiber_run(sleeper, NULL);
    forum_fiber_run(waker_that_ends, parked[0]);
    /* forum_fiber_run of the waker returned only after the woken fiber ran: the loop ran it */
    assert_string_equal(trace, "swWS");
}

static void waker_that_suspends(void *arg)
{
    forum_fiber_t *target = arg;
    mark('w');
    forum_fiber_wake(target);
    mark('W');
    park();
    mark('E');
}

static void test_a_fiber_woken_from_a_fiber_runs_when_the_waker_suspends(void **state)
{
    (void)state;
    forum_fiber_run(sleeper, NULL);
    forum_fiber_t *sleeping = parked[0];
    forum_fiber_run(waker_that_suspends, sleeping);
    assert_string_equal(trace, "swWS");
    assert_int_equal(num_parked, 2);
    forum_fiber_wake(parked[1]);
    assert_string_equal(trace, "swWSE");
}

static forum_fiber_t *wake_targets[2];

static void wakes_two(void *arg)
{
    (void)arg;
    mark('w');
    forum_fiber_wake(wake_targets[1]);
    forum_fiber_wake(wake_targets[0]);
    mark('W');
}

static void sleeper_named(void *arg)
{
    char c = *(const char *)arg;
    mark(c);
    park();
    mark((char)(c - 'a' + 'A'));
}

static void test_fibers_woken_from_a_fiber_run_in_the_order_woken(void **state)
{
    static const char p = 'p', q = 'q';
    (void)state;
    forum_fiber_run(sleeper_named, (void *)&p);
    forum_fiber_run(sleeper_named, (void *)&q);
    wake_targets[0] = parked[0];
    wake_targets[1] = parked[1];
    forum_fiber_run(wakes_two, NULL);
    assert_string_equal(trace, "pqwWQP");
}

/* a woken fiber that wakes another in its turn: the loop runs the chain, one fiber at a time */
static forum_fiber_t *chain_next;

static void chain_link(void *arg)
{
    (void)arg;
    mark('l');
    park();
    mark('L');
    if (chain_next != NULL) {
        forum_fiber_t *n = chain_next;
        chain_next = NULL;
        forum_fiber_wake(n);
        mark('M'); /* the next link has not run yet */
    }
}

static void test_a_woken_fiber_may_wake_another(void **state)
{
    (void)state;
    forum_fiber_run(chain_link, NULL);
    forum_fiber_run(chain_link, NULL);
    chain_next = parked[1];
    forum_fiber_run(waker_that_ends, parked[0]);
    assert_string_equal(trace, "llwWLML");
}

/* --- nested runs --- */

static forum_fiber_t *outer_self, *inner_self;

static void inner(void *arg)
{
    (void)arg;
    inner_self = forum_fiber_self();
    mark('i');
    park(); /* suspends the outer fiber with it: they share one stack */
    mark('I');
}

static void outer(void *arg)
{
    (void)arg;
    outer_self = forum_fiber_self();
    mark('o');
    forum_fiber_run(inner, NULL);
    mark('O'); /* only once the inner function has returned */
}

static void test_a_nested_run_runs_inline_on_the_callers_fiber(void **state)
{
    size_t live, peak;
    (void)state;
    forum_fiber_run(outer, NULL);
    assert_string_equal(trace, "oi");
    assert_non_null(outer_self);
    assert_ptr_equal(inner_self, outer_self);
    forum_fiber_stats(&live, &peak);
    assert_int_equal(live, 1); /* one fiber for both */
    assert_int_equal(num_parked, 1);
    assert_ptr_equal(parked[0], outer_self);
    forum_fiber_wake(parked[0]);
    assert_string_equal(trace, "oiIO");
}

/* --- on_exit --- */

static forum_fiber_t *exited;
static int exits;

static void on_exit_mark(forum_fiber_t *f)
{
    exited = f;
    ++exits;
    /* the data word is still readable: the data layer gives back the connection it names */
    if (forum_fiber_data(f) == &exits)
        mark('D');
    mark('X');
}

static void registers_on_exit_then_suspends(void *arg)
{
    (void)arg;
    forum_fiber_on_exit(on_exit_mark);
    forum_fiber_set_data(forum_fiber_self(), &exits);
    mark('a');
    park();
    mark('b');
}

static void test_on_exit_runs_when_the_function_returns_not_when_it_suspends(void **state)
{
    (void)state;
    exited = NULL;
    exits = 0;
    forum_fiber_run(registers_on_exit_then_suspends, NULL);
    assert_string_equal(trace, "a");
    assert_int_equal(exits, 0);
    forum_fiber_t *f = parked[0];
    forum_fiber_wake(f);
    assert_string_equal(trace, "abDX");
    assert_int_equal(exits, 1);
    assert_ptr_equal(exited, f);
}

static void plain(void *arg)
{
    (void)arg;
    mark('p');
}

static void test_on_exit_is_not_inherited_by_the_next_fiber(void **state)
{
    (void)state;
    exits = 0;
    forum_fiber_run(registers_on_exit_then_suspends, NULL);
    forum_fiber_wake(parked[0]);
    assert_int_equal(exits, 1);
    /* the finished fiber is kept for reuse: the next one must start with no on_exit and no data */
    forum_fiber_run(plain, NULL);
    assert_int_equal(exits, 1);
    assert_string_equal(trace, "abDXp");
}

static void test_on_exit_off_any_fiber_is_ignored(void **state)
{
    (void)state;
    exits = 0;
    forum_fiber_on_exit(on_exit_mark); /* on the loop: nothing to attach it to */
    forum_fiber_run(plain, NULL);
    assert_int_equal(exits, 0);
}

/* --- the data word --- */

static void data_keeper(void *arg)
{
    forum_fiber_t *self = forum_fiber_self();
    assert_null(forum_fiber_data(self)); /* NULL at first, also on a reused fiber */
    forum_fiber_set_data(self, arg);
    park();
    /* another fiber ran and set its own word meanwhile: this one kept its own */
    assert_ptr_equal(forum_fiber_data(self), arg);
    mark(*(const char *)arg);
}

static void test_the_data_word_is_each_fibers_own(void **state)
{
    static const char one = '1', two = '2';
    (void)state;
    forum_fiber_run(data_keeper, (void *)&one);
    forum_fiber_run(data_keeper, (void *)&two);
    assert_ptr_equal(forum_fiber_data(parked[0]), &one);
    assert_ptr_equal(forum_fiber_data(parked[1]), &two);
    forum_fiber_wake(parked[1]);
    forum_fiber_wake(parked[0]);
    assert_string_equal(trace, "21");
    /* reused fibers start with NULL again */
    num_parked = 0;
    forum_fiber_run(data_keeper, (void *)&one);
    forum_fiber_wake(parked[0]);
    assert_string_equal(trace, "211");
}

/* --- many at once, and a stack that is used --- */

static void deep(void *arg)
{
    /* a callback may use a good part of its stack (the fiber's is 256 KiB) */
    volatile char buf[96 * 1024];
    size_t n = (size_t)(uintptr_t)arg;
    memset((char *)buf, (int)(n & 0xff), sizeof(buf));
    park();
    for (size_t i = 0; i < sizeof(buf); i += 4096)
        if (buf[i] != (char)(n & 0xff))
            fail(); /* another fiber's stack ran over this one */
}

static void test_more_fibers_than_are_kept_for_reuse(void **state)
{
    size_t live, peak;
    enum { N = 100 }; /* more than fiber.c keeps on its free list */
    (void)state;
    for (size_t i = 0; i != N; ++i)
        forum_fiber_run(deep, (void *)(uintptr_t)i);
    forum_fiber_stats(&live, &peak);
    assert_int_equal(live, N);
    assert_true(peak >= N);
    assert_int_equal(num_parked, N);
    for (size_t i = N; i-- != 0;)
        forum_fiber_wake(parked[i]);
    forum_fiber_stats(&live, &peak);
    assert_int_equal(live, 0);
    /* and again, from the kept ones and new ones */
    num_parked = 0;
    for (size_t i = 0; i != N; ++i)
        forum_fiber_run(deep, (void *)(uintptr_t)(i + 7));
    for (size_t i = 0; i != N; ++i)
        forum_fiber_wake(parked[i]);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_off_runs_the_function_directly),
        TEST(test_suspend_outside_a_fiber_is_ignored),
        TEST(test_run_returns_when_the_fiber_suspends_and_wake_resumes_it),
        TEST(test_a_fiber_that_never_suspends_ends_within_run),
        TEST(test_fibers_interleave_and_keep_their_own_stacks),
        TEST(test_a_fiber_woken_from_a_fiber_runs_after_the_waker_ends),
        TEST(test_a_fiber_woken_from_a_fiber_runs_when_the_waker_suspends),
        TEST(test_fibers_woken_from_a_fiber_run_in_the_order_woken),
        TEST(test_a_woken_fiber_may_wake_another),
        TEST(test_a_nested_run_runs_inline_on_the_callers_fiber),
        TEST(test_on_exit_runs_when_the_function_returns_not_when_it_suspends),
        TEST(test_on_exit_is_not_inherited_by_the_next_fiber),
        TEST(test_on_exit_off_any_fiber_is_ignored),
        TEST(test_the_data_word_is_each_fibers_own),
        TEST(test_more_fibers_than_are_kept_for_reuse),
    };
    forum_log_set_level(FORUM_LOG_WARN);
    return cmocka_run_group_tests_name("fiber", tests, NULL, NULL);
}
