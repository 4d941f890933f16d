/*
 * The replay of `/ws?after=ID`: a reconnecting client gets every message newer than ID, in order,
 * before anything live.
 *
 * Replay and live delivery never interleave: while a connection is catching up it is left out of live
 * delivery (chat_deliver publishes with FORUM_PUB_REPLAYABLE), and its replay reads on from the database,
 * where every delivered message already is. The replay ends, on the loop, at a read that finds nothing
 * newer, so nothing can slip in between.
 *
 * The plugin keeps no state of its own: where a replay stands is kept by the connection (ws_replay_set),
 * and the replay goes on when the client has read what was sent (ws.drained). Both outlive a swap of
 * chat: the generation that is current when the client drains continues from the connection's resume
 * point, and a retired generation holds no timer and no list that could send a message again or let a
 * live one in early.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

enum { REPLAY_BATCH = 200 };

/*
 * Sends what `ws` still has to catch up on, from its resume point, until it has caught up (the replay
 * ends) or its send queue is over the low mark (ws.drained brings it back here).
 */
static void replay_run(forum_ws_t *ws)
{
    int64_t user = api->ws_user(ws), after = api->ws_replay_get(ws);
    if (after < 0)
        return;
    for (;;) {
        int64_t ids[REPLAY_BATCH];
        size_t n = 0;
        forum_stmt_t *s = api->db_stmt("SELECT message_id FROM message_index WHERE user_id = ? AND message_id > ? "
                                       "ORDER BY message_id LIMIT ?");
        api->db_bind_int(s, 1, user);
        api->db_bind_int(s, 2, after);
        api->db_bind_int(s, 3, REPLAY_BATCH);
        while (n < REPLAY_BATCH && api->db_step(s) == FORUM_DB_ROW)
            ids[n++] = api->db_col_int(s, 0);
        for (size_t i = 0; i != n; ++i) {
            if (api->ws_drain_wait(ws)) {
                api->ws_replay_set(ws, after);
                return;
            }
            yajl_gen g = chat_message_frame(ids[i], user);
            chat_send_gen(ws, g);
            yajl_gen_free(g);
            after = ids[i];
        }
        if (n < REPLAY_BATCH) {
            api->ws_replay_set(ws, -1); /* caught up: live delivery takes over from here */
            return;
        }
    }
}

/* The `after` parameter of the /ws query string, or -1 when absent or not a number. */
static int64_t query_after(const char *query)
{
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (len > 6 && memcmp(p, "after=", 6) == 0 && len - 6 < 20) {
            char digits[24];
            memcpy(digits, p + 6, len - 6);
            digits[len - 6] = '\0';
            if (strcmp(digits, "0") == 0)
                return 0;
            int64_t v = pu_parse_id(digits);
            return v > 0 ? v : -1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return -1;
}

void chat_replay_open(const forum_event_t *ev)
{
    int64_t after = query_after(ev->query);
    if (after < 0)
        return;
    api->ws_replay_set(ev->ws, after);
    replay_run(ev->ws);
}

void chat_replay_drained(const forum_event_t *ev)
{
    replay_run(ev->ws);
}
