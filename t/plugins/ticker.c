/*
 * A plugin for the tests only: a second source of replayed messages besides chat, so that the core's
 * merged replay is tested on its own. POST /api/ticker {"to": USER_ID} stores a note for that user,
 * numbered from the core's "messages" sequence like private and room messages, and publishes it as
 * {"type":"ticker","id":N} with FORUM_PUB_REPLAYABLE. Its replay source reads a window of only
 * TICKER_WINDOW ids per call (a bounded scan), so a replay takes many rounds and the core must not send
 * past what every source has read. POST /api/ticker/fail makes the next listing fail, as a database
 * failure would. Built into build/t-plugins; never loaded by the shipped configuration.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "forum_plugin.h"

enum { TICKER_WINDOW = 3 };

static const forum_api_t *api;
static int fail_next_list;

static void send_note(forum_ws_t *ws, int64_t user, int64_t id)
{
    char frame[64];
    int len = snprintf(frame, sizeof(frame), "{\"type\":\"ticker\",\"id\":%lld}", (long long)id);
    (void)user;
    api->ws_send(ws, frame, (size_t)len, 0);
}

static int list(int64_t user, int64_t after, int64_t *ids, size_t max, int64_t *complete_to)
{
    int n = 0;
    int64_t newest = 0;
    forum_stmt_t *s;

    if (fail_next_list) {
        fail_next_list = 0;
        return -1;
    }
    s = api->db_stmt("SELECT id FROM ticker_notes WHERE user_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?");
    api->db_bind_int(s, 1, user);
    api->db_bind_int(s, 2, after);
    api->db_bind_int(s, 3, after + TICKER_WINDOW);
    api->db_bind_int(s, 4, (int64_t)max);
    while ((size_t)n < max && api->db_step(s) == FORUM_DB_ROW)
        ids[n++] = api->db_col_int(s, 0);
    if ((size_t)n == max) {
        *complete_to = ids[n - 1];
        return n;
    }
    s = api->db_stmt("SELECT COALESCE(MAX(id), 0) FROM ticker_notes WHERE user_id = ?");
    api->db_bind_int(s, 1, user);
    if (api->db_step(s) != FORUM_DB_ROW)
        return -1;
    newest = api->db_col_int(s, 0);
    *complete_to = newest <= after + TICKER_WINDOW ? INT64_MAX : after + TICKER_WINDOW;
    return n;
}

static int64_t last_id(int64_t user)
{
    forum_stmt_t *s = api->db_stmt("SELECT COALESCE(MAX(id), 0) FROM ticker_notes WHERE user_id = ?");
    api->db_bind_int(s, 1, user);
    return api->db_step(s) == FORUM_DB_ROW ? api->db_col_int(s, 0) : 0;
}

static const forum_replay_source_t source = {list, send_note, last_id};

static int post_note(forum_req_t *req)
{
    const char *path[] = {"to", NULL};
    yajl_val to = yajl_tree_get(api->req_body(req), path, yajl_t_number);
    int64_t id;
    char frame[64];
    forum_stmt_t *s;

    if (to == NULL || !YAJL_IS_INTEGER(to)) {
        api->res_error(req, 400, "bad_request", "to must be a user id", "to");
        return 0;
    }
    if (api->db_begin() != 0)
        goto Error;
    if ((id = api->db_next_id("messages")) == 0)
        goto Rollback;
    s = api->db_stmt("INSERT INTO ticker_notes (id, user_id) VALUES (?, ?)");
    api->db_bind_int(s, 1, id);
    api->db_bind_int(s, 2, YAJL_GET_INTEGER(to));
    if (api->db_step(s) != FORUM_DB_DONE || api->db_commit() != 0)
        goto Rollback;
    int len = snprintf(frame, sizeof(frame), "{\"type\":\"ticker\",\"id\":%lld}", (long long)id);
    api->publish_user(YAJL_GET_INTEGER(to), frame, (size_t)len, FORUM_PUB_REPLAYABLE);
    yajl_gen g = api->res_json_begin(req, 201);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"id", 2);
    yajl_gen_integer(g, id);
    yajl_gen_map_close(g);
    api->res_json_end(req);
    return 0;
Rollback:
    api->db_rollback();
Error:
    api->res_db_error(req, "the note could not be stored");
    return 0;
}

static int post_fail(forum_req_t *req)
{
    fail_next_list = 1;
    api->res_empty(req, 204);
    return 0;
}

static int init(forum_plugin_t *p, const forum_api_t *a)
{
    api = a;
    if (!FORUM_API_HAS(a, db_next_id) || !FORUM_API_HAS(a, migration_for))
        return -1;
    /* the id is the core's message sequence (db_next_id), never the table's own */
    return a->migration_for(p, FORUM_DB_SQLITE, 1, "CREATE TABLE ticker_notes (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL);"
                                                   "CREATE INDEX ticker_notes_user ON ticker_notes (user_id, id);") ||
           a->migration_for(p, FORUM_DB_POSTGRES, 1, "CREATE TABLE ticker_notes (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL);"
                                                     "CREATE INDEX ticker_notes_user ON ticker_notes (user_id, id);") ||
           a->route(p, "POST", "/api/ticker", 0, post_note) || a->route(p, "POST", "/api/ticker/fail", 0, post_fail) ||
           a->replay_source(p, &source);
}

FORUM_EXPORT const forum_plugin_desc_t forum_plugin = {
    .abi = FORUM_PLUGIN_ABI,
    .name = "ticker",
    .version = "1.0.0",
    .init = init,
};
