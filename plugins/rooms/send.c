/*
 * room.send: a frame is validated and charged to its sender's bucket at once, then queued; the sends of
 * one loop turn are stored in one transaction, and only then is each message delivered, in order: the
 * sender's connections get it with its client_id (the acknowledgement), the other members without.
 *
 * As chat's message.send: a client_id its sender used before stores nothing and is answered with the
 * message it named; while another process holds the database's lock (or the disk is full) nothing of the
 * batch is stored or delivered, it stays queued and is tried again on a backoff, and a message still
 * unstored PU_SEND_UNAVAILABLE_AFTER_MS after it was sent is given back with `unavailable` (its client_id makes
 * sending it again safe). A batch that fails for another reason is stored message by message, so that
 * one bad message does not cost the others.
 */
#include <stdlib.h>
#include <string.h>
#include "rooms.h"
#include "../util/send_batch.h"

#define api rooms_api

typedef struct queued_send {
    pu_queued_t q;     /* first: the batch's part (util/send_batch.c) */
    rooms_message_t m; /* id is 0 until stored; body and client_id are owned copies */
    char *tokens;      /* the body's @nickname tokens (mentions.c) */
    int repeat;        /* the client_id was used before: m.id is that message */
    int forbidden;     /* the sender was no longer a member when the batch ran */
    /* who gets the message besides its sender (not for the lobby: everyone), read in its transaction: a read that
     * fails fails the store, so a stored message always has its members to be delivered to */
    int64_t *members;
    size_t num_members;
} queued_send_t;

static queued_send_t sends[PU_SEND_BATCH_MAX];
static pu_send_batch_t batch;

/* Delivers a stored message: to its sender's connections with the client_id, to the other members without. */
static void deliver(const rooms_message_t *m, const int64_t *members, size_t num_members)
{
    char nickname[64];
    yajl_gen to_sender, to_members;

    rooms_typing_sent(m->from, m->room);
    if (!rooms_nickname(m->from, nickname, sizeof(nickname)))
        nickname[0] = '\0';
    to_sender = rooms_frame_of(m, nickname, 1);
    to_members = rooms_frame_of(m, nickname, 0);
    rooms_publish_message(m, to_sender, to_members, members, num_members);
    yajl_gen_free(to_sender);
    yajl_gen_free(to_members);
}

/* Settled when stored, a repeat, or forbidden (nothing stored: its sender is told). */
static int store_one(void *item)
{
    queued_send_t *q = item;
    long n;
    if ((q->m.id = rooms_store_message(&q->m, q->tokens, &q->repeat, &q->forbidden)) == 0)
        return q->forbidden;
    if (q->repeat || q->m.room == ROOMS_LOBBY)
        return 1;
    if ((n = rooms_members_but(q->m.room, q->m.from, &q->members)) < 0) {
        q->members = NULL;
        return 0;
    }
    q->num_members = (size_t)n;
    return 1;
}

static void unstore_one(void *item)
{
    queued_send_t *q = item;
    q->m.id = q->repeat = q->forbidden = 0;
    free(q->members);
    q->members = NULL;
    q->num_members = 0;
}

static void answer_settled(void *item)
{
    queued_send_t *q = item;
    if (q->forbidden) {
        if (q->q.ws != NULL)
            api->ws_error(q->q.ws, "forbidden", "not a member of this room", q->m.client_id);
    } else if (!q->repeat) {
        deliver(&q->m, q->members, q->num_members);
    } else if (q->q.ws != NULL) {
        /*
         * A repeat: the sender gets the stored message again, but not while its connection is still catching up
         * and the replay has not reached the message: the replay sends it in its turn, with its client_id (sent
         * now, it would come before older messages the replay still has to send).
         */
        int64_t replay_at = api->ws_replay_get(q->q.ws);
        if (replay_at >= 0 && q->m.id > replay_at)
            return;
        yajl_gen g = rooms_message_frame(q->m.id, q->m.from);
        if (g != NULL) {
            pu_ws_send_gen(api, q->q.ws, g);
            yajl_gen_free(g);
        }
    }
}

static void free_one(void *item)
{
    queued_send_t *q = item;
    free((char *)q->m.body);
    free((char *)q->m.client_id);
    free(q->tokens);
    free(q->members);
}

static const pu_send_ops_t send_ops = {store_one, unstore_one, answer_settled, free_one, NULL};

void rooms_send_init(forum_plugin_t *p)
{
    pu_send_batch_init(&batch, api, p, &send_ops, sends, sizeof(sends[0]));
}

static void queue_send(forum_ws_t *ws, int64_t from, int64_t room, const char *body, size_t body_len, const char *client_id)
{
    queued_send_t *q = pu_send_batch_slot(&batch, ws, client_id);
    if (q == NULL)
        return;
    q->m.from = from;
    q->m.room = room;
    q->members = NULL;
    q->num_members = 0;
    q->m.body = strndup(body, body_len);
    q->m.body_len = body_len;
    q->m.client_id = strdup(client_id);
    q->tokens = rooms_mention_tokens(body, body_len);
    if (q->m.body == NULL || q->m.client_id == NULL || q->tokens == NULL) {
        free((char *)q->m.body);
        free((char *)q->m.client_id);
        free(q->tokens);
        api->ws_error(ws, "internal", "the message could not be stored", client_id);
        return;
    }
    api->format_time(api->now_ms(), q->m.created_at);
    pu_send_batch_queue(&batch, ws, q->m.client_id);
}

void rooms_send_forget(forum_ws_t *ws)
{
    pu_send_batch_forget(&batch, ws);
}

/* True when `from` already used `client_id`, stored or waiting in the queue: sending it again is not charged. */
static int known_client_id(int64_t from, const char *client_id)
{
    for (size_t i = 0; i != pu_send_batch_count(&batch); ++i) {
        const queued_send_t *q = pu_send_batch_item(&batch, i);
        if (q->m.from == from && strcmp(q->m.client_id, client_id) == 0)
            return 1;
    }
    return rooms_find_by_client_id(from, client_id) != 0;
}

static void rate_limited(forum_ws_t *ws, const char *client_id, int64_t retry_after_ms)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    pu_key_str(g, "type", "error");
    pu_key_str(g, "code", "rate_limited");
    pu_key_str(g, "message", "too many messages: wait before sending more");
    pu_key_str(g, "ref", client_id);
    pu_key_int(g, "retry_after_ms", retry_after_ms);
    yajl_gen_map_close(g);
    pu_ws_send_gen(api, ws, g);
    yajl_gen_free(g);
}

void rooms_send_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), room, wait_ms;
    forum_text_t cid, body;
    int status;

    /* client_id is opaque: taken as sent (the gate made it text), counted in characters */
    if ((status = api->text_field(frame, "client_id", 1, ROOMS_CLIENT_ID_MAX, FORUM_TEXT_VERBATIM, &cid)) != 0) {
        pu_ws_field_error(api, ws, status, "client_id", &cid, "room.send");
        return;
    }
    const char *ref = cid.text; /* verbatim: the whole NUL-terminated string of the frame */
    if ((room = rooms_frame_room(ws, frame, "room", me, ref)) == 0)
        return;
    if ((status = api->text_field(frame, "body", 1, ROOMS_BODY_MAX, FORUM_TEXT_MULTILINE, &body)) != 0) {
        pu_ws_field_error(api, ws, status, "body", &body, ref);
        return;
    }
    /* charged when decided, not when stored; a retry of a message already taken is not charged again */
    if (!known_client_id(me, ref) && (wait_ms = rooms_limiter_take(me)) != 0) {
        rate_limited(ws, ref, wait_ms);
        return;
    }
    queue_send(ws, me, room, body.text, body.len, ref);
}

void rooms_send_fini(void)
{
    pu_send_batch_fini(&batch);
}
