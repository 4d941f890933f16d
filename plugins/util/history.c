/* A page of message history and a read mark's body (see history.h). */
#include "history.h"
#include "plugin_util.h"

int pu_history_query(const forum_api_t *api, forum_req_t *req, pu_history_t *h)
{
    h->n = 0;
    h->has_more = 0;
    return (h->limit = pu_query_int(api, req, "limit", 1, PU_HISTORY_LIMIT_MAX, PU_HISTORY_LIMIT_DEFAULT)) >= 0 &&
           (h->before = pu_query_int(api, req, "before", 1, INT64_MAX, INT64_MAX)) >= 0;
}

int pu_history_read(const forum_api_t *api, forum_stmt_t *s, pu_history_t *h)
{
    int rc;
    while ((rc = api->db_step(s)) == FORUM_DB_ROW) {
        if (h->n == h->limit) {
            h->has_more = 1;
            break;
        }
        h->ids[h->n++] = api->db_col_int(s, 0);
    }
    return rc;
}

void pu_history_bind_ids(const forum_api_t *api, forum_stmt_t *s, const pu_history_t *h)
{
    for (int64_t i = 0; i != PU_HISTORY_LIMIT_MAX; ++i)
        api->db_bind_int(s, (int)i + 1, i < h->n ? h->ids[i] : 0);
}

void pu_history_answer_rows(const forum_api_t *api, forum_req_t *req, const pu_history_t *h, forum_stmt_t *s,
                            void (*write_row)(yajl_gen g, forum_stmt_t *s, int64_t for_user), int64_t for_user)
{
    int rc = FORUM_DB_DONE;
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    pu_str(g, "messages");
    yajl_gen_array_open(g);
    if (h->n != 0)
        while ((rc = api->db_step(s)) == FORUM_DB_ROW)
            write_row(g, s, for_user);
    if (rc != FORUM_DB_DONE) {
        /* never a page that looks shorter than it is */
        api->res_db_error(req, "the messages could not be read");
        return;
    }
    yajl_gen_array_close(g);
    pu_str(g, "has_more");
    yajl_gen_bool(g, h->has_more);
    yajl_gen_map_close(g);
    api->res_json_end(req);
}

int64_t pu_body_up_to(const forum_api_t *api, forum_req_t *req)
{
    const char *path[] = {"up_to", NULL};
    yajl_val body = api->req_body(req);
    yajl_val up_to = body != NULL ? yajl_tree_get(body, path, yajl_t_any) : NULL;
    if (up_to == NULL || !YAJL_IS_INTEGER(up_to) || YAJL_GET_INTEGER(up_to) < 0) {
        api->res_error(req, up_to == NULL ? 422 : 400, up_to == NULL ? "validation" : "bad_request", "up_to must be a message id",
                       "up_to");
        return -1;
    }
    return YAJL_GET_INTEGER(up_to);
}
