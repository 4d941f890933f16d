/*
 * How a failed database call is answered. A lock held by another process, a database server that cannot
 * be reached, a statement past its time limit, or a full disk is the server's passing trouble, not a bug and not the client's fault: 503 "unavailable" with Retry-After,
 * and nothing was written, so the client may send the same request again. Anything else is a bug or
 * worse: 500 "internal", logged where it happened. Every answer that reports a write says whether it
 * happened: nothing is ever answered as done when its write failed.
 */
#include <stdio.h>
#include "forum.h"

enum { RETRY_BUSY_S = 1, RETRY_FULL_S = 30 };

void forum_db_describe(int failure, const char *what, forum_db_answer_t *out)
{
    switch (failure) {
    case FORUM_DB_BUSY:
        out->status = 503;
        out->code = "unavailable";
        out->retry_after_s = RETRY_BUSY_S;
        snprintf(out->message, sizeof(out->message), "%s: the database is busy; try again shortly", what);
        break;
    case FORUM_DB_UNAVAILABLE:
        out->status = 503;
        out->code = "unavailable";
        out->retry_after_s = RETRY_BUSY_S;
        snprintf(out->message, sizeof(out->message), "%s: the database cannot be reached; try again shortly", what);
        break;
    case FORUM_DB_FULL:
        out->status = 503;
        out->code = "unavailable";
        out->retry_after_s = RETRY_FULL_S;
        snprintf(out->message, sizeof(out->message), "%s: the server's storage is full; try again later", what);
        break;
    default:
        out->status = 500;
        out->code = "internal";
        out->retry_after_s = 0;
        snprintf(out->message, sizeof(out->message), "%s", what);
        break;
    }
}

void forum_send_db_error(h2o_req_t *req, const char *what)
{
    forum_db_answer_t a;
    forum_db_describe(forum_db_failure(), what, &a);
    if (a.retry_after_s != 0) {
        char v[16];
        int n = snprintf(v, sizeof(v), "%u", a.retry_after_s);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, v, (size_t)n).base, (size_t)n);
    }
    forum_send_error(req, a.status, a.code, a.message, NULL);
}

void forum_res_db_error(forum_req_t *req, const char *what)
{
    forum_db_answer_t a;
    /* a brief SQLite lock is waited out off the loop: the route runs again a little later (PostgreSQL's busy
     * is a statement past its time or a pool that stayed full for as long: waited out already) */
    if (forum_db_failure() == FORUM_DB_BUSY && forum_db_backend() == FORUM_DB_SQLITE && forum_req_retry(req))
        return;
    forum_db_describe(forum_db_failure(), what, &a);
    if (a.retry_after_s != 0) {
        char v[16];
        snprintf(v, sizeof(v), "%u", a.retry_after_s);
        forum_res_header(req, "retry-after", v);
    }
    forum_res_error(req, a.status, a.code, a.message, NULL);
}

void forum_ws_db_error(forum_ws_t *ws, const char *what, const char *ref)
{
    forum_db_answer_t a;
    forum_db_describe(forum_db_failure(), what, &a);
    forum_hub_send_error(ws, a.code, a.message, ref);
}
