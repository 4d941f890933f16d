/*
 * message.send: a frame is validated at once and queued; the sends of one loop turn are stored in one
 * transaction, then each message is delivered to its sender's and recipient's connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chat.h"

#define api chat_api

void chat_deliver(const chat_message_t *m)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen g;

    chat_typing_sent(m->from, m->to);
    g = chat_frame_of(m, m->from);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_user(m->from, (const char *)buf, len, FORUM_PUB_REPLAYABLE);
    yajl_gen_free(g);
    g = chat_frame_of(m, m->to);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_user(m->to, (const char *)buf, len, FORUM_PUB_REPLAYABLE);
    yajl_gen_free(g);
}

/*
 * --- sends of one loop turn, stored in one transaction ---
 *
 * message.send frames are validated at once and queued; a timer of 0 ms runs after every frame the
 * loop has read in this turn, stores the whole batch in one transaction, and only then delivers each
 * message, in order. A client_id its sender used before, in an earlier batch or earlier in this one,
 * stores nothing and is answered with the message it named.
 *
 * The loop never waits for the database. When another process holds its lock (or the disk is full),
 * nothing of the batch is stored, acknowledged or delivered: it stays queued, in order, and is tried
 * again on a backoff timer. A message still unstored UNAVAILABLE_AFTER_MS after it was sent is given
 * up with an `unavailable` error naming its client_id, so that its client sends it again (the
 * client_id makes that safe). When the batch fails for another reason, each message is stored on its
 * own, only to tell a bad message from the good ones; a lock met there stops it the same way.
 */

enum { SEND_BATCH_MAX = 256, RETRY_FIRST_MS = 10, RETRY_MAX_MS = 250, UNAVAILABLE_AFTER_MS = 5000 };

typedef struct queued_send {
    chat_message_t m; /* id is 0 until stored; body and client_id are owned copies */
    size_t body_len;
    forum_ws_t *ws;    /* the sender's connection, NULL once it closes */
    int repeat;        /* the client_id was used before: m.id is that message */
    int refused;       /* could not be stored for a reason of its own (not a lock): an internal error */
    int64_t queued_ms; /* monotonic */
    char created_at[32];
} queued_send_t;

typedef int64_t (*store_fn)(int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id,
                            const char *created_at, int *repeat);

static queued_send_t sends[SEND_BATCH_MAX];
static size_t num_sends;
static int flush_scheduled;
static unsigned retry_ms; /* the backoff while the database is unavailable; 0 when not retrying */

/* True when the last database failure will pass by itself (a lock, a full disk): try again later. */
static int unavailable(void)
{
    int f = api->db_failure();
    return f == FORUM_DB_BUSY || f == FORUM_DB_FULL;
}

static int64_t store_one(queued_send_t *q, store_fn store)
{
    return q->m.id = store(q->m.from, q->m.to, q->m.body, q->body_len, q->m.client_id, q->created_at, &q->repeat);
}

/* Stores every queued message in one transaction; 0 when done, else the failure (db_failure). */
static int store_batch(void)
{
    if (api->db_begin() != 0)
        return api->db_failure();
    for (size_t i = 0; i != num_sends; ++i)
        if (store_one(&sends[i], chat_store_row) == 0)
            goto Error;
    if (api->db_commit() == 0)
        return 0;
Error:;
    int failure = api->db_failure();
    api->db_rollback();
    for (size_t i = 0; i != num_sends; ++i)
        sends[i].m.id = 0;
    return failure;
}

/* How many messages, from the head of the queue, are settled (stored, repeated or refused). */
static size_t store_queued(void)
{
    size_t n;
    int failure = store_batch();
    if (failure == 0)
        return num_sends;
    if (failure == FORUM_DB_BUSY || failure == FORUM_DB_FULL)
        return 0;
    /* one bad message must not cost the others: store each on its own, in order, until a lock stops it */
    for (n = 0; n != num_sends; ++n) {
        if (store_one(&sends[n], chat_store) != 0)
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
    } else if (!q->repeat) {
        chat_deliver(&q->m);
    } else if (q->ws != NULL) {
        /*
         * A repeat: nothing new was stored; the sender gets the stored message again. Not now, though, when
         * its connection is still catching up and the replay has not reached the message: sent now it would
         * come before the messages the replay still has to send, and a client that moves its resume point to
         * it would skip them on its next reconnect. The replay sends it in its turn, with its client_id.
         */
        int64_t replay_at = api->ws_replay_get(q->ws);
        if (replay_at >= 0 && q->m.id > replay_at)
            return;
        yajl_gen g = chat_message_frame(q->m.id, q->m.from);
        chat_send_gen(q->ws, g);
        yajl_gen_free(g);
    }
}

/* Drops the first `n` queued messages. */
static void dequeue(size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        free((char *)sends[i].m.body);
        free((char *)sends[i].m.client_id);
    }
    memmove(sends, sends + n, (num_sends - n) * sizeof(sends[0]));
    num_sends -= n;
}

static void flush_sends(void *arg);

static void schedule(unsigned ms)
{
    if (!flush_scheduled && api->defer(chat_self, ms, flush_sends, NULL) == 0)
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

static void queue_send(forum_ws_t *ws, int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id)
{
    queued_send_t *q;
    if (num_sends == SEND_BATCH_MAX && retry_ms == 0)
        store_and_deliver(); /* a full batch is stored now; its timer finds the next one */
    if (num_sends == SEND_BATCH_MAX) {
        /* the database has been unavailable for a full queue: nothing more is taken until it is back */
        api->ws_db_error(ws, "the message could not be stored", client_id);
        return;
    }
    q = &sends[num_sends++];
    memset(q, 0, sizeof(*q));
    q->m.from = from;
    q->m.to = to;
    q->m.body = strndup(body, body_len);
    q->m.client_id = strdup(client_id);
    q->m.created_at = q->created_at;
    q->body_len = body_len;
    q->ws = ws;
    q->queued_ms = api->mono_ms();
    api->format_time(api->now_ms(), q->created_at);
    schedule(0);
    if (!flush_scheduled)
        store_and_deliver(); /* no timer to be had: store at once */
}

void chat_send_forget(forum_ws_t *ws)
{
    for (size_t i = 0; i != num_sends; ++i)
        if (sends[i].ws == ws)
            sends[i].ws = NULL;
}

/* Sends the error frame for a field the core's validator refused (`status` 400 or 422). */
static void field_error(forum_ws_t *ws, int status, const char *field, const forum_text_t *t, const char *ref)
{
    char msg[sizeof(t->message) + 32];
    snprintf(msg, sizeof(msg), "%s %s", field, t->message);
    api->ws_error(ws, status == 400 ? "bad_request" : "validation", msg, ref);
}

void chat_send_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    forum_text_t cid, body;
    int status;

    /* client_id is opaque: taken as sent (the gate made it text), counted in characters */
    if ((status = api->text_field(frame, "client_id", 1, CHAT_CLIENT_ID_MAX, FORUM_TEXT_VERBATIM, &cid)) != 0) {
        field_error(ws, status, "client_id", &cid, "message.send");
        return;
    }
    const char *ref = cid.text; /* verbatim: the whole NUL-terminated string of the frame */
    if ((to = chat_frame_user(ws, frame, "to", me, ref)) == 0)
        return;
    /* the body follows the rule every text of the forum follows, as posts and comments do */
    if ((status = api->text_field(frame, "body", 1, CHAT_BODY_MAX, FORUM_TEXT_MULTILINE, &body)) != 0) {
        field_error(ws, status, "body", &body, ref);
        return;
    }
    queue_send(ws, me, to, body.text, body.len, ref);
}

void chat_send_fini(void)
{
    /* nothing is left while the batch's timer pins this generation; kept for safety, with no timer to come */
    flush_scheduled = 1;
    store_and_deliver();
    for (size_t i = 0; i != num_sends; ++i)
        if (sends[i].ws != NULL)
            api->ws_db_error(sends[i].ws, "the message could not be stored", sends[i].m.client_id);
    dequeue(num_sends);
}
