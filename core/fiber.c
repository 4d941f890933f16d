/*
 * Fibers: callbacks that may suspend. On PostgreSQL a data call sends its query and suspends the callback
 * that made it; the loop goes on serving everyone else, and the callback resumes where it stopped once
 * the answer is in. Every entry from the loop into code that may reach the database (a request, a frame,
 * a hub event, a completion, a timer) goes through forum_fiber_run, which runs it on a fiber of its own
 * when fibers are on, and directly when they are off (SQLite, whose calls never wait on the network).
 *
 * A fiber has its own stack (mapped, with a guard page below it); finished fibers are kept for reuse. Only
 * the loop resumes a fiber: a fiber that wakes another queues it, and the loop runs it as soon as the
 * waking fiber suspends or ends.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include "forum.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#endif

enum {
    STACK_SIZE = 256 * 1024, /* what one callback may use: plugins render JSON on the heap, not the stack */
    KEEP_FREE = 1024,        /* finished fibers kept for the next ones: one a connection whose sender waits, under a flood */
};

struct forum_fiber {
    ucontext_t ctx;
    char *map;   /* the mapping: a guard page, then the stack */
    size_t size; /* the stack's size */
    void (*fn)(void *);
    void *arg;
    int done;
    forum_fiber_t *next; /* the free list, or the queue of fibers woken from a fiber */
    forum_fiber_exit_fn on_exit;
    void *data;
#ifdef FIBER_ASAN
    void *fake_stack;
#endif
};

static int enabled;
static ucontext_t loop_ctx;
static forum_fiber_t *current;
static forum_fiber_t *free_list;
static size_t num_free, num_live, num_peak;
static forum_fiber_t *ready_head, *ready_tail;
static forum_fiber_exit_fn every_exit;
static size_t page_size;
#ifdef FIBER_ASAN
static const void *loop_stack_bottom;
static size_t loop_stack_size;
#endif

void forum_fiber_enable(int on)
{
    enabled = on;
}

int forum_fiber_enabled(void)
{
    return enabled;
}

forum_fiber_t *forum_fiber_self(void)
{
    return current;
}

void forum_fiber_on_exit(forum_fiber_exit_fn fn)
{
    if (current != NULL)
        current->on_exit = fn;
}

void forum_fiber_on_every_exit(forum_fiber_exit_fn fn)
{
    every_exit = fn;
}

static void arrived_in_fiber(forum_fiber_t *f)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &loop_stack_bottom, &loop_stack_size);
#else
    (void)f;
#endif
}

static void leave_fiber(forum_fiber_t *f)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(f->done ? NULL : &f->fake_stack, loop_stack_bottom, loop_stack_size);
#endif
    swapcontext(&f->ctx, &loop_ctx);
    arrived_in_fiber(f);
}

static void trampoline(void)
{
    forum_fiber_t *f = current;
    arrived_in_fiber(f);
    f->fn(f->arg);
    if (f->on_exit != NULL)
        f->on_exit(f);
    if (every_exit != NULL)
        every_exit(f);
    f->done = 1;
    leave_fiber(f); /* never returns: the context is made anew before the fiber runs again */
}

static forum_fiber_t *fiber_new(void)
{
    forum_fiber_t *f;
    if (free_list != NULL) {
        f = free_list;
        free_list = f->next;
        --num_free;
    } else {
        if (page_size == 0)
            page_size = (size_t)sysconf(_SC_PAGESIZE);
        if ((f = calloc(1, sizeof(*f))) == NULL)
            return NULL;
        f->size = STACK_SIZE;
        f->map = mmap(NULL, f->size + page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (f->map == MAP_FAILED) {
            free(f);
            return NULL;
        }
        /* an overflow faults on the guard page instead of writing over another fiber's stack */
        mprotect(f->map, page_size, PROT_NONE);
    }
    if (++num_live > num_peak)
        num_peak = num_live;
    return f;
}

static void fiber_free(forum_fiber_t *f)
{
    --num_live;
    if (num_free < KEEP_FREE) {
        f->next = free_list;
        free_list = f;
        ++num_free;
        return;
    }
    munmap(f->map, f->size + page_size);
    free(f);
}

/* Runs `f` from the loop until it suspends or ends, then every fiber it (or they) woke. */
static void resume(forum_fiber_t *f)
{
    for (;;) {
        current = f;
#ifdef FIBER_ASAN
        void *loop_fake = NULL;
        __sanitizer_start_switch_fiber(&loop_fake, f->map + page_size, f->size);
#endif
        swapcontext(&loop_ctx, &f->ctx);
#ifdef FIBER_ASAN
        __sanitizer_finish_switch_fiber(loop_fake, NULL, NULL);
#endif
        current = NULL;
        if (f->done)
            fiber_free(f);
        if ((f = ready_head) == NULL)
            return;
        if ((ready_head = f->next) == NULL)
            ready_tail = NULL;
        f->next = NULL;
    }
}

void forum_fiber_run(void (*fn)(void *), void *arg)
{
    forum_fiber_t *f;
    /* off, already on a fiber (a nested entry runs on its caller's), or no memory for one: run here */
    if (!enabled || current != NULL || (f = fiber_new()) == NULL) {
        fn(arg);
        return;
    }
    f->fn = fn;
    f->arg = arg;
    f->done = 0;
    f->next = NULL;
    f->on_exit = NULL;
    f->data = NULL;
#ifdef FIBER_ASAN
    f->fake_stack = NULL; /* a reused fiber's last one went with its end */
#endif
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->map + page_size;
    f->ctx.uc_stack.ss_size = f->size;
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, trampoline, 0);
    resume(f);
}

void forum_fiber_suspend(void)
{
    forum_fiber_t *f = current;
    if (f == NULL) {
        forum_log(FORUM_LOG_ERROR, "fiber: suspend outside a fiber (a bug): ignored");
        return;
    }
    leave_fiber(f);
}

void forum_fiber_wake(forum_fiber_t *f)
{
    if (current == NULL) {
        resume(f);
        return;
    }
    /* a fiber never runs another from its own stack: the loop does, once this one has given it back */
    f->next = NULL;
    if (ready_tail != NULL)
        ready_tail->next = f;
    else
        ready_head = f;
    ready_tail = f;
}

/* Fibers waiting for forum_fiber_wake_waiting of their key, oldest first; each entry lives on its fiber's stack. */
typedef struct fiber_wait {
    const void *key;
    forum_fiber_t *fiber;
    struct fiber_wait *next;
} fiber_wait_t;
static fiber_wait_t *waits, **waits_end = &waits;

int forum_fiber_wait(const void *key)
{
    if (current == NULL)
        return -1;
    fiber_wait_t w = {key, current, NULL};
    *waits_end = &w;
    waits_end = &w.next;
    leave_fiber(current);
    return 0;
}

void forum_fiber_wake_waiting(const void *key, size_t max)
{
    fiber_wait_t *woken = NULL, **woken_end = &woken, **p = &waits;
    /* taken off the list first: a fiber resumed from here may wait again, on the same key */
    while (*p != NULL && max != 0) {
        fiber_wait_t *w = *p;
        if (w->key != key) {
            p = &w->next;
            continue;
        }
        if ((*p = w->next) == NULL)
            waits_end = p;
        w->next = NULL;
        *woken_end = w;
        woken_end = &w->next;
        --max;
    }
    while (woken != NULL) {
        forum_fiber_t *f = woken->fiber;
        woken = woken->next; /* read before its fiber runs again and the entry is gone */
        forum_fiber_wake(f);
    }
}

void *forum_fiber_data(forum_fiber_t *f)
{
    return f->data;
}

void forum_fiber_set_data(forum_fiber_t *f, void *data)
{
    f->data = data;
}

void forum_fiber_stats(size_t *live, size_t *peak)
{
    *live = num_live;
    *peak = num_peak;
}
