/*
 * The comments plugin: GET /api/posts/:id/comments (oldest first, keyset pagination) and
 * POST /api/posts/:id/comments; `comment.created` to everyone.
 */
#include <string.h>
#include "../util/plugin_util.h"

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "1.0.0" /* a build may set another, as the swap tests do */
#endif

static const forum_api_t *api;

enum { BODY_MAX = 5000 };

#define COMMENT_COLUMNS "c.id, c.post_id, c.body, u.id AS \"author.id\", u.nickname AS \"author.nickname\", c.created_at"

static int post_exists(int64_t id)
{
    forum_stmt_t *s = api->db_stmt("SELECT 1 FROM posts WHERE id = ?");
    api->db_bind_int(s, 1, id);
    return api->db_step(s) == FORUM_DB_ROW;
}

/* Reads comment `id`: FORUM_DB_ROW with its row in `*s`, else FORUM_DB_DONE or the failure. */
static int read_comment(int64_t id, forum_stmt_t **s)
{
    *s = api->db_stmt("SELECT " COMMENT_COLUMNS " FROM comments c JOIN users u ON u.id = c.author_id WHERE c.id = ?");
    api->db_bind_int(*s, 1, id);
    return api->db_step(*s);
}

static void write_comment(yajl_gen g, forum_stmt_t *s)
{
    api->db_row_json(s, g);
}

static int list_route(forum_req_t *req)
{
    int64_t post = pu_parse_id(api->req_param(req, "id")), limit, after;
    forum_stmt_t *s;

    if (post == 0 || !post_exists(post)) {
        api->res_error(req, 404, "not_found", "no such post", NULL);
        return 0;
    }
    if ((limit = pu_query_int(api, req, "limit", 1, 100, 50)) < 0 || (after = pu_query_int(api, req, "after", 0, INT64_MAX, 0)) < 0)
        return 0;
    s = api->db_stmt("SELECT " COMMENT_COLUMNS " FROM comments c JOIN users u ON u.id = c.author_id "
                     "WHERE c.post_id = ? AND c.id > ? ORDER BY c.id LIMIT ?");
    api->db_bind_int(s, 1, post);
    api->db_bind_int(s, 2, after);
    api->db_bind_int(s, 3, limit + 1);

    yajl_gen g = api->res_json_begin(req, 200);
    yajl_gen_map_open(g);
    if (pu_write_page(api, g, s, "comments", limit, "next_after", write_comment) != 0) {
        api->res_db_error(req, "the comments could not be read");
        return 0;
    }
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
}

/* The comment `author` stored with `client_id`: its id, 0 when none, -1 when the lookup failed. */
static int64_t find_by_client_id(int64_t author, const char *client_id)
{
    forum_stmt_t *s = api->db_stmt("SELECT id FROM comments WHERE author_id = ? AND client_id = ?");
    api->db_bind_int(s, 1, author);
    api->db_bind_text(s, 2, client_id, strlen(client_id));
    switch (api->db_step(s)) {
    case FORUM_DB_ROW:
        return api->db_col_int(s, 0);
    case FORUM_DB_DONE:
        return 0;
    default:
        return -1;
    }
}

/*
 * 201 with comment `id`, read before the answer begins: never half a comment. `stored`: it was stored by this
 * request, so a failed read is still a 201, with its id alone; a retry's failed read is a 503.
 */
static void answer_comment(forum_req_t *req, int64_t id, int stored)
{
    forum_stmt_t *s;
    int found = read_comment(id, &s) == FORUM_DB_ROW;
    if (!found && !stored) {
        api->res_db_error(req, "the comment could not be read");
        return;
    }
    yajl_gen g = api->res_json_begin(req, 201);
    yajl_gen_map_open(g);
    pu_str(g, "comment");
    if (found) {
        api->db_row_json(s, g);
    } else {
        api->log(FORUM_LOG_WARN, "comments: comment %lld was stored but could not be read back", (long long)id);
        yajl_gen_map_open(g);
        pu_key_int(g, "id", id);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    api->res_json_end(req);
}

static int create_route(forum_req_t *req)
{
    int64_t post = pu_parse_id(api->req_param(req, "id")), me = api->req_user(req), id;
    const char *text, *client_id;
    size_t len;
    char now[32];
    forum_stmt_t *s;
    int ret;

    if (post == 0 || !post_exists(post)) {
        api->res_error(req, 404, "not_found", "no such post", NULL);
        return 0;
    }
    if ((text = pu_text_member(api, req, api->req_body(req), "body", BODY_MAX, FORUM_TEXT_MULTILINE, &len)) == NULL ||
        !pu_client_id(api, req, api->req_body(req), &client_id))
        return 0;
    /* a retry: the comment its client_id names is the answer, whatever this body says; nothing is stored or published */
    if (client_id != NULL && (id = find_by_client_id(me, client_id)) != 0) {
        if (id < 0)
            api->res_db_error(req, "the comment could not be stored");
        else
            answer_comment(req, id, 0);
        return 0;
    }
    api->format_time(api->now_ms(), now);
    /* one statement: the comment and, through the trigger, the post's count commit together */
    s = api->db_stmt("INSERT INTO comments (post_id, author_id, body, created_at, client_id) VALUES (?, ?, ?, ?, ?) RETURNING id");
    api->db_bind_int(s, 1, post);
    api->db_bind_int(s, 2, me);
    api->db_bind_text(s, 3, text, len);
    api->db_bind_text(s, 4, now, strlen(now));
    if (client_id != NULL)
        api->db_bind_text(s, 5, client_id, strlen(client_id));
    else
        api->db_bind_null(s, 5);
    if ((ret = api->db_step(s)) == FORUM_DB_CONSTRAINT && client_id != NULL && (id = find_by_client_id(me, client_id)) > 0) {
        answer_comment(req, id, 0); /* stored meanwhile by another connection */
        return 0;
    }
    id = ret == FORUM_DB_ROW ? api->db_col_int(s, 0) : 0;
    if (id == 0 || api->db_step(s) != FORUM_DB_DONE) {
        api->res_db_error(req, "the comment could not be stored");
        return 0;
    }

    /* stored: everyone hears of it (when it can be read back: nobody gets a broken frame), then the answer */
    if (read_comment(id, &s) == FORUM_DB_ROW) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_map_open(g);
        pu_key_str(g, "type", "comment.created");
        pu_str(g, "comment");
        api->db_row_json(s, g);
        yajl_gen_map_close(g);
        pu_publish_all(api, g);
        yajl_gen_free(g);
    }
    answer_comment(req, id, 1);
    return 0;
}

static const char schema_v1[] = "CREATE TABLE comments ("
                                "  id INTEGER PRIMARY KEY,"
                                "  post_id INTEGER NOT NULL REFERENCES posts (id),"
                                "  author_id INTEGER NOT NULL REFERENCES users (id),"
                                "  body TEXT NOT NULL,"
                                "  created_at TEXT NOT NULL"
                                ");"
                                "CREATE INDEX comments_post ON comments (post_id, id);"
                                "CREATE INDEX comments_author ON comments (author_id);"
                                "CREATE TRIGGER comments_count AFTER INSERT ON comments BEGIN"
                                "  UPDATE posts SET comment_count = comment_count + 1 WHERE id = NEW.post_id;"
                                "END;";

/* client_id: a client's retry of POST /api/posts/:id/comments finds the comment it stored the first time */
static const char schema_v2[] = "ALTER TABLE comments ADD COLUMN client_id TEXT;"
                                "CREATE UNIQUE INDEX comments_client_id ON comments (author_id, client_id) WHERE client_id IS NOT NULL;";

/* PostgreSQL: the same table, numbered alike; the count is kept by a plpgsql trigger */
static const char pg_schema_v1[] = "CREATE TABLE comments ("
                                   "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                                   "  post_id BIGINT NOT NULL REFERENCES posts (id),"
                                   "  author_id BIGINT NOT NULL REFERENCES users (id),"
                                   "  body TEXT NOT NULL,"
                                   "  created_at TEXT NOT NULL"
                                   ");"
                                   "CREATE INDEX comments_post ON comments (post_id, id);"
                                   "CREATE INDEX comments_author ON comments (author_id);"
                                   "CREATE FUNCTION comments_count() RETURNS trigger LANGUAGE plpgsql AS $$"
                                   "BEGIN"
                                   "  UPDATE posts SET comment_count = comment_count + 1 WHERE id = NEW.post_id;"
                                   "  RETURN NULL;"
                                   "END $$;"
                                   "CREATE TRIGGER comments_count AFTER INSERT ON comments FOR EACH ROW EXECUTE FUNCTION comments_count();";

static const char pg_schema_v2[] = "ALTER TABLE comments ADD COLUMN client_id TEXT;"
                                   "CREATE UNIQUE INDEX comments_client_id ON comments (author_id, client_id) WHERE client_id IS NOT NULL;";

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    api = a;
    if (a->version < FORUM_API_VERSION || !FORUM_API_HAS(a, mono_ms))
        return -1;
    return api->migration_for(p, FORUM_DB_SQLITE, 1, schema_v1) || api->migration_for(p, FORUM_DB_SQLITE, 2, schema_v2) ||
           api->migration_for(p, FORUM_DB_POSTGRES, 1, pg_schema_v1) || api->migration_for(p, FORUM_DB_POSTGRES, 2, pg_schema_v2) ||
           api->route(p, "GET", "/api/posts/:id/comments", 0, list_route) ||
           api->route(p, "POST", "/api/posts/:id/comments", 0, create_route);
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "comments",
    .version = PLUGIN_VERSION,
    .init = init,
};
