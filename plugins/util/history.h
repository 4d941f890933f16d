/*
 * The parts of a message history's HTTP routes that chat's conversations and rooms share: a page of
 * messages before an id (`?before=&limit=`, newest `limit`, answered oldest first with has_more) and the
 * body of a read mark (`{"up_to": ID}`).
 */
#ifndef PU_HISTORY_H
#define PU_HISTORY_H

#include <stdint.h>
#include "../forum_plugin.h"

enum { PU_HISTORY_LIMIT_MAX = 50, PU_HISTORY_LIMIT_DEFAULT = 10 };

typedef struct pu_history {
    int64_t limit, before; /* from the query */
    int64_t ids[PU_HISTORY_LIMIT_MAX]; /* newest first */
    int64_t n;
    int has_more;
} pu_history_t;

/** Reads `?limit=` (1..50, 10 when absent) and `?before=` (an id, none when absent); false after answering 400. */
int pu_history_query(const forum_api_t *api, forum_req_t *req, pu_history_t *h);
/**
 * Reads the page's ids from `s`, which selects ids newest first, below h->before, with LIMIT h->limit + 1: the
 * extra row only says there are more. Returns the last step's result (FORUM_DB_ROW or FORUM_DB_DONE when read).
 */
int pu_history_read(const forum_api_t *api, forum_stmt_t *s, pu_history_t *h);
/** Answers {"messages": [...], "has_more": bool}, oldest first, each written by `write` for `for_user`. */
void pu_history_answer(const forum_api_t *api, forum_req_t *req, const pu_history_t *h,
                       int (*write)(yajl_gen g, int64_t id, int64_t for_user), int64_t for_user);
/** The `up_to` of a read mark's body, a message id; -1 after answering 422 (absent) or 400. */
int64_t pu_body_up_to(const forum_api_t *api, forum_req_t *req);

#endif
