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
/**
 * Answers {"messages": [...], "has_more": bool} from one statement `s` that reads the page's messages, oldest
 * first, each row written by `write_row` for `for_user`: bind its first PU_HISTORY_LIMIT_MAX parameters with
 * pu_history_bind_ids (a page is two queries, the ids and their rows, however long it is). A read that fails is
 * answered with res_db_error, never as a shorter page.
 */
void pu_history_answer_rows(const forum_api_t *api, forum_req_t *req, const pu_history_t *h, forum_stmt_t *s,
                            void (*write_row)(yajl_gen g, forum_stmt_t *s, int64_t for_user), int64_t for_user);
/** Binds the page's ids to parameters 1..PU_HISTORY_LIMIT_MAX of `s` (`id IN (?, ...)`), the rest to 0, which no message has. */
void pu_history_bind_ids(const forum_api_t *api, forum_stmt_t *s, const pu_history_t *h);
/** PU_HISTORY_LIMIT_MAX (50) parameters, for `id IN (` PU_HISTORY_IDS `)`. */
#define PU_HISTORY_IDS10 "?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
#define PU_HISTORY_IDS PU_HISTORY_IDS10 ", " PU_HISTORY_IDS10 ", " PU_HISTORY_IDS10 ", " PU_HISTORY_IDS10 ", " PU_HISTORY_IDS10
/** The `up_to` of a read mark's body, a message id; -1 after answering 422 (absent) or 400. */
int64_t pu_body_up_to(const forum_api_t *api, forum_req_t *req);

#endif
