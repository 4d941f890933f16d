/*
 * Private messages as `/ws?after=ID` replays them: the core merges them with the other plugins' messages
 * (the rooms') by id and paces the replay; this source lists a user's messages from the per-user index
 * and renders each as the frame live delivery sends. It keeps no state: a replay outlives a swap of chat.
 */
#include "chat.h"

#define api chat_api

static int list(int64_t user, int64_t after, int64_t *ids, size_t max, int64_t *complete_to)
{
    int n = 0, rc;
    forum_stmt_t *s = api->db_stmt("SELECT message_id FROM message_index WHERE user_id = ? AND message_id > ? "
                                   "ORDER BY message_id LIMIT ?");
    if (s == NULL)
        return -1;
    api->db_bind_int(s, 1, user);
    api->db_bind_int(s, 2, after);
    api->db_bind_int(s, 3, (int64_t)max);
    while ((size_t)n < max && (rc = api->db_step(s)) == FORUM_DB_ROW)
        ids[n++] = api->db_col_int(s, 0);
    if ((size_t)n < max && rc != FORUM_DB_DONE)
        return -1;
    *complete_to = (size_t)n == max ? ids[n - 1] : INT64_MAX;
    return n;
}

static void send(forum_ws_t *ws, int64_t user, int64_t id)
{
    yajl_gen g = chat_message_frame(id, user);
    chat_send_gen(ws, g);
    yajl_gen_free(g);
}

const forum_replay_source_t chat_replay_source = {list, send, chat_last_message_id};
