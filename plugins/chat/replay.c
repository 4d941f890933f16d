/*
 * The replay of `/ws?after=ID`: a reconnecting client gets every message newer than ID, in order,
 * before anything live.
 *
 * Replay and live delivery never interleave: while a connection is catching up it is left out of live
 * delivery, and its replay reads on from the database, where every delivered message already is. The
 * replay ends, on the loop, at a read that finds nothing newer, so nothing can slip in between.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

enum {
    REPLAY_BATCH = 200,
    REPLAY_QUEUE_BYTES = 256 * 1024, /* pause a replay while this much is still queued to the client */
};

/* --- replays in progress --- */

typedef struct replay {
    struct replay *next;
    forum_ws_t *ws; /* NULL once the connection is gone (a timer may still hold the replay) */
    int64_t user;
    int64_t after;
    int timer_pending;
} replay_t;

static replay_t *replays;

static void unlink_replay(replay_t *r)
{
    replay_t **p = &replays;
    while (*p != NULL && *p != r)
        p = &(*p)->next;
    if (*p == r)
        *p = r->next;
}

/* The connections of `user` that are still catching up, for publish_user_except. */
size_t chat_catching_up(int64_t user, forum_ws_t **out, size_t max)
{
    size_t n = 0;
    for (replay_t *r = replays; r != NULL && n < max; r = r->next)
        if (r->user == user && r->ws != NULL)
            out[n++] = r->ws;
    return n;
}

static void replay_step(void *arg);

/* Sends batches until caught up (the replay ends) or the client's queue is full (it continues shortly). */
static void replay_run(replay_t *r)
{
    for (;;) {
        int64_t ids[REPLAY_BATCH];
        size_t n = 0;
        forum_stmt_t *s = api->db_stmt("SELECT message_id FROM message_index WHERE user_id = ? AND message_id > ? "
                                       "ORDER BY message_id LIMIT ?");
        api->db_bind_int(s, 1, r->user);
        api->db_bind_int(s, 2, r->after);
        api->db_bind_int(s, 3, REPLAY_BATCH);
        while (n < REPLAY_BATCH && api->db_step(s) == FORUM_DB_ROW)
            ids[n++] = api->db_col_int(s, 0);
        for (size_t i = 0; i != n; ++i) {
            yajl_gen g = chat_message_frame(ids[i], r->user);
            chat_send_gen(r->ws, g);
            yajl_gen_free(g);
            r->after = ids[i];
        }
        if (n < REPLAY_BATCH) {
            unlink_replay(r);
            free(r);
            return;
        }
        if (api->ws_queued(r->ws) > REPLAY_QUEUE_BYTES && api->defer(chat_self, 5, replay_step, r) == 0) {
            r->timer_pending = 1;
            return;
        }
    }
}

static void replay_step(void *arg)
{
    replay_t *r = arg;
    r->timer_pending = 0;
    if (r->ws == NULL) {
        free(r);
        return;
    }
    replay_run(r);
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
    replay_t *r = calloc(1, sizeof(*r));
    r->ws = ev->ws;
    r->user = ev->user_id;
    r->after = after;
    r->next = replays;
    replays = r;
    replay_run(r);
}

void chat_replay_forget(forum_ws_t *ws)
{
    for (replay_t *r = replays, *next; r != NULL; r = next) {
        next = r->next;
        if (r->ws == ws) {
            unlink_replay(r);
            r->ws = NULL;
            if (!r->timer_pending)
                free(r);
        }
    }
}

void chat_replay_fini(void)
{
    while (replays != NULL) {
        replay_t *r = replays;
        replays = r->next;
        free(r);
    }
}
