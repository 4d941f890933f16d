/* HTTP: GET /api/messages/:user_id, POST /api/messages/:user_id/read, and the route of GET /api/users (users.c). */
#include "chat.h"
#include "../util/history.h"

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

static void write_row(yajl_gen g, forum_stmt_t *s, int64_t for_user)
{
    chat_message_t m = {api->db_col_int(s, 0), api->db_col_int(s, 1), api->db_col_int(s, 2), api->db_col_text(s, 3),
                        api->db_col_text(s, 4), api->db_col_text(s, 5)};
    chat_write_fields(g, &m, for_user);
}

/* The newest `limit` messages older than `before`, oldest first. */
static int history_route(forum_req_t *req)
{
    int64_t me = api->req_user(req), other;
    pu_history_t h;

    if ((other = other_user(req)) == 0 || !pu_history_query(api, req, &h))
        return 0;
    /* the pair's order is decided here: two-argument MIN and MAX are SQLite's only */
    forum_stmt_t *s = api->db_stmt("SELECT id FROM messages WHERE user_lo = ? AND user_hi = ? AND id < ? ORDER BY id DESC LIMIT ?");
    api->db_bind_int(s, 1, me < other ? me : other);
    api->db_bind_int(s, 2, me < other ? other : me);
    api->db_bind_int(s, 3, h.before);
    api->db_bind_int(s, 4, h.limit + 1);
    int rc = pu_history_read(api, s, &h);
    if (rc != FORUM_DB_ROW && rc != FORUM_DB_DONE) {
        api->res_db_error(req, "the messages could not be read");
        return 0;
    }
    /* the page's messages in one query, not one each (on PostgreSQL each is a round trip) */
    s = api->db_stmt("SELECT id, sender_id, recipient_id, body, client_id, created_at FROM messages WHERE id IN (" PU_HISTORY_IDS
                     ") ORDER BY id");
    pu_history_bind_ids(api, s, &h);
    pu_history_answer_rows(api, req, &h, s, write_row, me);
    return 0;
}

static int read_route(forum_req_t *req)
{
    int64_t other, up_to;

    if ((other = other_user(req)) == 0 || (up_to = pu_body_up_to(api, req)) < 0)
        return 0;
    if (!chat_mark_read(api->req_user(req), other, up_to)) {
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
