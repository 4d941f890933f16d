/*
 * Blocking work on the libuv thread pool. A job pins its plugin generation and its request until
 * its completion has run, so that a swap or a vanished client never frees what the job still uses.
 */
#define _GNU_SOURCE /* SCHED_IDLE */
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "forum.h"

/*
 * Pool threads run under SCHED_IDLE (Linux, per thread, no privilege needed): they get a core only
 * when the event loop does not want it, and the loop preempts them as soon as it wakes. Hashing then
 * costs the loop nothing even when it shares the loop's core; under a saturated loop it waits, and
 * auth's bounded queue answers 503 meanwhile. (Checkpoints have a thread of their own: core/db_checkpoint.c.)
 */
static void run_in_background(void)
{
    static __thread int lowered;
    struct sched_param param = {0};
    if (lowered)
        return;
    lowered = 1;
    if (sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_IDLE, &param) != 0)
        forum_log(FORUM_LOG_WARN, "thread pool: cannot lower the priority of a worker thread");
}

typedef struct job {
    uv_work_t uv;
    forum_plugin_t *plugin;
    forum_req_t *req;
    forum_work_fn work;
    forum_done_fn done;
    void *arg;
} job_t;

static void run(uv_work_t *uv)
{
    job_t *job = (job_t *)uv;
    run_in_background();
    job->work(job->arg);
}

static void finish_on_fiber(void *arg)
{
    job_t *job = arg;
    job->done(job->arg, job->req);
    if (job->req != NULL)
        forum_req_release(job->req);
    forum_plugin_unpin(job->plugin);
    free(job);
}

/* The completion may reach the database: on a fiber of its own (PostgreSQL) */
static void finish(uv_work_t *uv, int status)
{
    (void)status; /* UV_ECANCELED cannot happen: jobs are never cancelled */
    forum_fiber_run(finish_on_fiber, uv);
}

typedef struct deferred {
    uv_timer_t timer;
    forum_plugin_t *plugin;
    forum_timer_fn fn;
    void *arg;
} deferred_t;

static void deferred_closed(uv_handle_t *h)
{
    deferred_t *d = (deferred_t *)h;
    forum_plugin_unpin(d->plugin);
    free(d);
}

static void deferred_on_fiber(void *arg)
{
    deferred_t *d = arg;
    d->fn(d->arg);
    uv_close((uv_handle_t *)&d->timer, deferred_closed);
}

static void deferred_fire(uv_timer_t *t)
{
    forum_fiber_run(deferred_on_fiber, t);
}

int forum_work_defer(forum_plugin_t *p, unsigned ms, forum_timer_fn fn, void *arg)
{
    deferred_t *d;
    if (p == NULL || fn == NULL || !forum_plugin_may_queue(p) || (d = calloc(1, sizeof(*d))) == NULL)
        return -1;
    d->plugin = p;
    d->fn = fn;
    d->arg = arg;
    uv_timer_init(forum_server.loop, &d->timer);
    uv_timer_start(&d->timer, deferred_fire, ms, 0);
    forum_plugin_pin(p);
    return 0;
}

int forum_work_queue(forum_plugin_t *p, forum_req_t *req, forum_work_fn work, forum_done_fn done, void *arg)
{
    job_t *job;
    if (p == NULL || work == NULL || done == NULL || !forum_plugin_may_queue(p) || (job = calloc(1, sizeof(*job))) == NULL)
        return -1;
    job->plugin = p;
    job->req = req;
    job->work = work;
    job->done = done;
    job->arg = arg;
    if (uv_queue_work(forum_server.loop, &job->uv, run, finish) != 0) {
        free(job);
        return -1;
    }
    forum_plugin_pin(p);
    if (req != NULL)
        forum_req_hold(req);
    return 0;
}
