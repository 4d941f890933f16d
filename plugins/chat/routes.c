/* HTTP: GET /api/messages/:user_id, POST /api/messages/:user_id/read, and the route of GET /api/users (users.c). */
#include "chat.h"

#define api chat_api

/* The other user of a conversation route; 0 after answering 404. */
static int64_t other_user(forum_req_t *req)
{
    int64_t other = pu_parse_id(api->req_param(req, "user_id"));
    if (other == 0 || other == api->req_user(req) || !chat_user_exists(other)) {
        api->res_error(req, 404, "not_found", "no such user", NULL);
        return 0;
    }
    return other;
}

/* The newest `limit` messages older than `before`, oldest first. */
static int history_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), other, limit, before, ids[51], n = 0;
    int has_more = 0;

    if ((other = other_user(req)) == 0)
        return 0;
    if ((limit = pu_query_int(api, req, "limit", 1, 50, 10)) < 0 || (before = pu_query_int(api, req, "before", 1, INT64_MAX, INT64_MAX)) < 0)
        return 0;
    forum_stmt_t *s = api->db_stmt("SELECT id FROM messages WHERE user_lo = MIN(?1, ?2) AND user_hi = MAX(?1, ?2) AND id < ?3 "
                                   "ORDER BY id DESC LIMIT ?4");
    api->db_bind_int(s, 1, me);
    api->db_bind_int(s, 2, other);
    api->db_bind_int(s, 3, before);
    api->db_bind_int(s, 4, limit + 1);
    while (api->db_step(s) == FORUM_DB_ROW) {
        if (n == limit) {
            has_more = 1;
            break;
        }
        ids[n++] = api->db_col_int(s, 0);
    }
    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    pu_str(g, "messages");
    yajl_gen_array_open(g);
    while (n > 0)
        chat_write_message(g, ids[--n], me);
    yajl_gen_array_close(g);
    pu_str(g, "has_more");
    yajl_gen_bool(g, has_more);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

static int read_route(forum_req_t *req)
{
    const char *path[] = {"up_to", NULL};
    yajl_val body = api->req_body(req), up_to;
    int64_t other;

    if ((other = other_user(req)) == 0)
        return 0;
    up_to = body != NULL ? yajl_tree_get(body, path, yajl_t_any) : NULL;
    if (up_to == NULL || !YAJL_IS_INTEGER(up_to) || YAJL_GET_INTEGER(up_to) < 0) {
        api->res_error(req, up_to == NULL ? 422 : 400, up_to == NULL ? "validation" : "bad_request",
                       "up_to must be a message id", "up_to");
        return 0;
    }
    if (!chat_mark_read(api->req_user(req), other, YAJL_GET_INTEGER(up_to))) {
        api->res_db_error(req, "the read mark could not be stored");
        return 0;
    }
    api->res_empty(req, 204);
    return 0;
}

int chat_routes_init(forum_plugin_t *p)
{
    return api->route(p, "GET", "/api/users", 0, chat_users_route) || api->route(p, "GET", "/api/messages/:user_id", 0, history_route) ||
           api->route(p, "POST", "/api/messages/:user_id/read", 0, read_route);
}
