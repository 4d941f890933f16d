/*
 * scrypt runs on the thread pool, at most `running` at once, so that a burst of logins keeps its
 * hands off the cores the event loop and the rest of the pool need; up to `queued` more wait their
 * turn in arrival order, and past that the caller answers 503.
 */
#include <stdlib.h>
#include "auth.h"

auth_scrypt_t auth_scrypt_params = {32768, 8, 1};

static unsigned max_running, max_queued, num_running, num_queued;
static auth_hash_job_t *head, *tail;

int auth_hasher_init(unsigned running, unsigned queued)
{
    max_running = running != 0 ? running : 1;
    max_queued = queued;
    return 0;
}

static void run(void *arg)
{
    auth_hash_job_t *job = arg;
    job->work(job);
    job->ran = 1;
}

static int start(auth_hash_job_t *job);

static void finish(void *arg, forum_req_t *req)
{
    auth_hash_job_t *job = arg;
    job->done(job, req);
    --num_running;
    /* the next job starts before this one's generation pin is dropped, so a retired generation drains its queue */
    while (head != NULL && num_running < max_running) {
        auth_hash_job_t *next = head;
        head = next->next;
        if (head == NULL)
            tail = NULL;
        --num_queued;
        if (start(next) != 0)
            next->done(next, next->req); /* with ran == 0: it answers 503 */
        auth_api->req_release(next->req);
    }
}

static int start(auth_hash_job_t *job)
{
    if (auth_api->work_queue(auth_self, job->req, run, finish, job) != 0)
        return -1;
    ++num_running;
    return 0;
}

int auth_hasher_submit(auth_hash_job_t *job)
{
    if (num_running < max_running)
        return start(job);
    if (num_queued >= max_queued)
        return -1;
    auth_api->req_hold(job->req);
    job->next = NULL;
    if (tail != NULL)
        tail->next = job;
    else
        head = job;
    tail = job;
    ++num_queued;
    return 0;
}
