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
    forum_ws_t *skip[64];
    const unsigned char *buf;
    size_t len, n;
    yajl_gen g;

    chat_typing_sent(m->from, m->to);
    g = chat_frame_of(m, m->from);
    yajl_gen_get_buf(g, &buf, &len);
    n = chat_catching_up(m->from, skip, 64);
    api->publish_user_except(m->from, (const char *)buf, len, 0, skip, n);
    yajl_gen_free(g);
    g = chat_frame_of(m, m->to);
    yajl_gen_get_buf(g, &buf, &len);
    n = chat_catching_up(m->to, skip, 64);
    api->publish_user_except(m->to, (const char *)buf, len, 0, skip, n);
    yajl_gen_free(g);
}

/*
 * --- sends of one loop turn, stored in one transaction ---
 *
 * message.send frames are validated at once and queued; a timer of 0 ms runs after every frame the
 * loop has read in this turn, stores the whole batch in one transaction, and only then delivers each
 * message, in order. A client_id its sender used before, in an earlier batch or earlier in this one,
 * stores nothing and is answered with the message it named.
 */

enum { SEND_BATCH_MAX = 256 };

typedef struct queued_send {
    chat_message_t m; /* id is 0 until stored; body and client_id are owned copies */
    size_t body_len;
    forum_ws_t *ws; /* the sender's connection, NULL once it closes */
    int repeat;     /* the client_id was used before: m.id is that message */
    char created_at[32];
} queued_send_t;

typedef int64_t (*store_fn)(int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id,
                            const char *created_at, int *repeat);

static queued_send_t sends[SEND_BATCH_MAX];
static size_t num_sends;
static int flush_scheduled;

static int64_t store_one(queued_send_t *q, store_fn store)
{
    return q->m.id = store(q->m.from, q->m.to, q->m.body, q->body_len, q->m.client_id, q->created_at, &q->repeat);
}

static int store_batch(void)
{
    if (api->db_begin() != 0)
        return 0;
    for (size_t i = 0; i != num_sends; ++i)
        if (store_one(&sends[i], chat_store_row) == 0)
            goto Error;
    if (api->db_commit() == 0)
        return 1;
Error:
    api->db_rollback();
    for (size_t i = 0; i != num_sends; ++i)
        sends[i].m.id = 0;
    return 0;
}

static void store_and_deliver(void)
{
    if (num_sends == 0)
        return;
    if (!store_batch()) {
        /* one bad message must not cost the others: store each on its own */
        for (size_t i = 0; i != num_sends; ++i)
            store_one(&sends[i], chat_store);
    }
    for (size_t i = 0; i != num_sends; ++i) {
        queued_send_t *q = &sends[i];
        if (q->m.id == 0) {
            if (q->ws != NULL)
                api->ws_error(q->ws, "internal", "the message could not be stored", q->m.client_id);
        } else if (!q->repeat) {
            chat_deliver(&q->m);
        } else if (q->ws != NULL) {
            /* a repeat: nothing new was stored; the sender gets the stored message again */
            yajl_gen g = chat_message_frame(q->m.id, q->m.from);
            chat_send_gen(q->ws, g);
            yajl_gen_free(g);
        }
    }
    for (size_t i = 0; i != num_sends; ++i) {
        free((char *)sends[i].m.body);
        free((char *)sends[i].m.client_id);
    }
    num_sends = 0;
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
    if (num_sends == SEND_BATCH_MAX)
        store_and_deliver(); /* a full batch is stored now; its timer finds the next one */
    q = &sends[num_sends++];
    memset(q, 0, sizeof(*q));
    q->m.from = from;
    q->m.to = to;
    q->m.body = strndup(body, body_len);
    q->m.client_id = strdup(client_id);
    q->m.created_at = q->created_at;
    q->body_len = body_len;
    q->ws = ws;
    api->format_time(api->now_ms(), q->created_at);
    if (!flush_scheduled && api->defer(chat_self, 0, flush_sends, NULL) == 0)
        flush_scheduled = 1;
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
    store_and_deliver(); /* nothing is left while the batch's timer pins this generation; kept for safety */
}
