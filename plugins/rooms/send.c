/*
 * room.send: a frame is validated and charged to its sender's bucket at once, then queued; the sends of
 * one loop turn are stored in one transaction, and only then is each message delivered, in order: the
 * sender's connections get it with its client_id (the acknowledgement), the other members without.
 *
 * As chat's message.send: a client_id its sender used before stores nothing and is answered with the
 * message it named; while another process holds the database's lock (or the disk is full) nothing of the
 * batch is stored or delivered, it stays queued and is tried again on a backoff, and a message still
 * unstored UNAVAILABLE_AFTER_MS after it was sent is given back with `unavailable` (its client_id makes
 * sending it again safe). A batch that fails for another reason is stored message by message, so that
 * one bad message does not cost the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rooms.h"

#define api rooms_api

enum { SEND_BATCH_MAX = 256, RETRY_FIRST_MS = 10, RETRY_MAX_MS = 250, UNAVAILABLE_AFTER_MS = 5000 };

typedef struct queued_send {
    rooms_message_t m; /* id is 0 until stored; body and client_id are owned copies */
    char *tokens;      /* the body's @nickname tokens (mentions.c) */
    forum_ws_t *ws;    /* the sender's connection, NULL once it closes */
    int repeat;        /* the client_id was used before: m.id is that message */
    int forbidden;     /* the sender was no longer a member when the batch ran */
    int refused;       /* could not be stored for a reason of its own (not a lock): an internal error */
    int64_t queued_ms; /* monotonic */
} queued_send_t;

static queued_send_t sends[SEND_BATCH_MAX];
static size_t num_sends;
static int flush_scheduled;
static unsigned retry_ms; /* the backoff while the database is unavailable; 0 when not retrying */

static int unavailable(void)
{
    int f = api->db_failure();
    return f == FORUM_DB_BUSY || f == FORUM_DB_FULL;
}

/* Delivers a stored message: to its sender's connections with the client_id, to the other members without. */
static void deliver(const rooms_message_t *m)
{
    char nickname[64];
    const unsigned char *buf;
    size_t len;
    yajl_gen g;

    rooms_typing_sent(m->from, m->room);
    if (!rooms_nickname(m->from, nickname, sizeof(nickname)))
        nickname[0] = '\0';
    g = rooms_frame_of(m, nickname, 1);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_user(m->from, (const char *)buf, len, FORUM_PUB_REPLAYABLE);
    yajl_gen_free(g);
    g = rooms_frame_of(m, nickname, 0);
    rooms_publish(m->room, g, FORUM_PUB_REPLAYABLE, m->from);
    yajl_gen_free(g);
}

static int64_t store_one(queued_send_t *q)
{
    return q->m.id = rooms_store_message(&q->m, q->tokens, &q->repeat, &q->forbidden);
}

/* Stores every queued message in one transaction; 0 when done, else the failure (db_failure). */
static int store_batch(void)
{
    if (api->db_begin() != 0)
        return api->db_failure();
    for (size_t i = 0; i != num_sends; ++i)
        if (store_one(&sends[i]) == 0 && !sends[i].forbidden)
            goto Error;
    if (api->db_commit() == 0)
        return 0;
Error:;
    int failure = api->db_failure();
    api->db_rollback();
    for (size_t i = 0; i != num_sends; ++i)
        sends[i].m.id = sends[i].repeat = sends[i].forbidden = 0;
    return failure;
}

/* One message in a transaction of its own. */
static int64_t store_alone(queued_send_t *q)
{
    if (api->db_begin() != 0)
        return 0;
    if ((store_one(q) == 0 && !q->forbidden) || api->db_commit() != 0) {
        api->db_rollback();
        q->forbidden = q->repeat = 0;
        return q->m.id = 0;
    }
    return q->forbidden ? -1 : q->m.id;
}

/* How many messages, from the head of the queue, are settled (stored, repeated, forbidden or refused). */
static size_t store_queued(void)
{
    size_t n;
    int failure = store_batch();
    if (failure == 0)
        return num_sends;
    if (failure == FORUM_DB_BUSY || failure == FORUM_DB_FULL)
        return 0;
    for (n = 0; n != num_sends; ++n) {
        if (store_alone(&sends[n]) != 0)
            continue;
        if (unavailable())
            break;
        sends[n].refused = 1;
    }
    return n;
}

static void answer_settled(queued_send_t *q)
{
    if (q->refused) {
        if (q->ws != NULL)
            api->ws_error(q->ws, "internal", "the message could not be stored", q->m.client_id);
    } else if (q->forbidden) {
        if (q->ws != NULL)
            api->ws_error(q->ws, "forbidden", "not a member of this room", q->m.client_id);
    } else if (!q->repeat) {
        deliver(&q->m);
    } else if (q->ws != NULL) {
        /*
         * A repeat: the sender gets the stored message again, but not while its connection is still catching up
         * and the replay has not reached the message: the replay sends it in its turn, with its client_id (sent
         * now, it would come before older messages the replay still has to send).
         */
        int64_t replay_at = api->ws_replay_get(q->ws);
        if (replay_at >= 0 && q->m.id > replay_at)
            return;
        yajl_gen g = rooms_message_frame(q->m.id, q->m.from);
        if (g != NULL) {
            rooms_send_gen(q->ws, g);
            yajl_gen_free(g);
        }
    }
}

static void dequeue(size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        free((char *)sends[i].m.body);
        free((char *)sends[i].m.client_id);
        free(sends[i].tokens);
    }
    memmove(sends, sends + n, (num_sends - n) * sizeof(sends[0]));
    num_sends -= n;
}

static void flush_sends(void *arg);

static void schedule(unsigned ms)
{
    if (!flush_scheduled && api->defer(rooms_self, ms, flush_sends, NULL) == 0)
        flush_scheduled = 1;
}

static void store_and_deliver(void)
{
    size_t n;
    if (num_sends == 0)
        return;
    n = store_queued();
    for (size_t i = 0; i != n; ++i)
        answer_settled(&sends[i]);
    dequeue(n);
    if (num_sends == 0) {
        retry_ms = 0;
        return;
    }
    /* the database is unavailable: what waited too long is given back to its sender; the rest waits */
    int64_t now = api->mono_ms();
    for (n = 0; n != num_sends && now - sends[n].queued_ms >= UNAVAILABLE_AFTER_MS; ++n)
        if (sends[n].ws != NULL)
            api->ws_db_error(sends[n].ws, "the message could not be stored", sends[n].m.client_id);
    dequeue(n);
    if (num_sends == 0) {
        retry_ms = 0;
        return;
    }
    retry_ms = retry_ms == 0 ? RETRY_FIRST_MS : retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
    schedule(retry_ms);
}

static void flush_sends(void *arg)
{
    (void)arg;
    flush_scheduled = 0;
    store_and_deliver();
}

static void queue_send(forum_ws_t *ws, int64_t from, int64_t room, const char *body, size_t body_len, const char *client_id)
{
    queued_send_t *q;
    if (num_sends == SEND_BATCH_MAX && retry_ms == 0)
        store_and_deliver(); /* a full batch is stored now; its timer finds the next one */
    if (num_sends == SEND_BATCH_MAX) {
        api->ws_db_error(ws, "the message could not be stored", client_id);
        return;
    }
    q = &sends[num_sends];
    memset(q, 0, sizeof(*q));
    q->m.from = from;
    q->m.room = room;
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
    ++num_sends;
    q->ws = ws;
    q->queued_ms = api->mono_ms();
    api->format_time(api->now_ms(), q->m.created_at);
    schedule(0);
    if (!flush_scheduled)
        store_and_deliver(); /* no timer to be had: store at once */
}

void rooms_send_forget(forum_ws_t *ws)
{
    for (size_t i = 0; i != num_sends; ++i)
        if (sends[i].ws == ws)
            sends[i].ws = NULL;
}

static void field_error(forum_ws_t *ws, int status, const char *field, const forum_text_t *t, const char *ref)
{
    char msg[sizeof(t->message) + 32];
    snprintf(msg, sizeof(msg), "%s %s", field, t->message);
    api->ws_error(ws, status == 400 ? "bad_request" : "validation", msg, ref);
}

/* True when `from` already used `client_id`, stored or waiting in the queue: sending it again is not charged. */
static int known_client_id(int64_t from, const char *client_id)
{
    for (size_t i = 0; i != num_sends; ++i)
        if (sends[i].m.from == from && strcmp(sends[i].m.client_id, client_id) == 0)
            return 1;
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
    rooms_send_gen(ws, g);
    yajl_gen_free(g);
}

void rooms_send_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), room, wait_ms;
    forum_text_t cid, body;
    int status;

    /* client_id is opaque: taken as sent (the gate made it text), counted in characters */
    if ((status = api->text_field(frame, "client_id", 1, ROOMS_CLIENT_ID_MAX, FORUM_TEXT_VERBATIM, &cid)) != 0) {
        field_error(ws, status, "client_id", &cid, "room.send");
        return;
    }
    const char *ref = cid.text; /* verbatim: the whole NUL-terminated string of the frame */
    if ((room = rooms_frame_room(ws, frame, "room", me, ref)) == 0)
        return;
    if ((status = api->text_field(frame, "body", 1, ROOMS_BODY_MAX, FORUM_TEXT_MULTILINE, &body)) != 0) {
        field_error(ws, status, "body", &body, ref);
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
    /* nothing is left while the batch's timer pins this generation; kept for safety, with no timer to come */
    flush_scheduled = 1;
    store_and_deliver();
    for (size_t i = 0; i != num_sends; ++i)
        if (sends[i].ws != NULL)
            api->ws_db_error(sends[i].ws, "the message could not be stored", sends[i].m.client_id);
    dequeue(num_sends);
}
