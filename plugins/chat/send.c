/*
 * message.send: a frame is validated at once and queued; the sends of one loop turn are stored in one
 * transaction, then each message is delivered to its sender's and recipient's connections.
 */
#include <stdlib.h>
#include <string.h>
#include "chat.h"
#include "../util/send_batch.h"

#define api chat_api

void chat_deliver(const chat_message_t *m)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen g;

    chat_typing_sent(m->from, m->to);
    g = chat_frame_of(m, m->from);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_message(m->id, &m->from, 1, (const char *)buf, len);
    yajl_gen_free(g);
    g = chat_frame_of(m, m->to);
    yajl_gen_get_buf(g, &buf, &len);
    api->publish_message(m->id, &m->to, 1, (const char *)buf, len);
    yajl_gen_free(g);
}

/*
 * --- sends of one loop turn, stored in one transaction (util/send_batch.c) ---
 *
 * A client_id its sender used before, in an earlier batch or earlier in this one, stores nothing and is
 * answered with the message it named.
 */

typedef struct queued_send {
    pu_queued_t q;     /* first: the batch's part */
    chat_message_t m;  /* id is 0 until stored; body and client_id are owned copies */
    size_t body_len;
    int repeat;        /* the client_id was used before: m.id is that message */
    char created_at[32];
} queued_send_t;

static queued_send_t sends[PU_SEND_BATCH_MAX];
static pu_send_batch_t batch;

static int store_one(void *item)
{
    queued_send_t *q = item;
    return (q->m.id = chat_store_row(q->m.from, q->m.to, q->m.body, q->body_len, q->m.client_id, q->created_at, &q->repeat)) != 0;
}

static void unstore_one(void *item)
{
    ((queued_send_t *)item)->m.id = 0;
}

static void answer_settled(void *item)
{
    queued_send_t *q = item;
    if (!q->repeat) {
        q->m.created_at = q->created_at; /* only now: the queue moves its items (memmove) as it gives some back */
        chat_deliver(&q->m);
    } else if (q->q.ws != NULL) {
        /*
         * A repeat: nothing new was stored; the sender gets the stored message again. Not now, though, when
         * its connection is still catching up and the replay has not reached the message: sent now it would
         * come before the messages the replay still has to send, and a client that moves its resume point to
         * it would skip them on its next reconnect. The replay sends it in its turn, with its client_id.
         */
        int64_t replay_at = api->ws_replay_get(q->q.ws);
        if (replay_at >= 0 && q->m.id > replay_at)
            return;
        yajl_gen g = chat_message_frame(q->m.id, q->m.from);
        pu_ws_send_gen(api, q->q.ws, g);
        yajl_gen_free(g);
    }
}

/* The whole batch in a few statements (store_rows.c); what came back set into the queued sends. */
static int store_all(const pu_send_batch_t *b, size_t num)
{
    chat_message_t *m = calloc(num, sizeof(*m));
    size_t *body_len = calloc(num, sizeof(*body_len));
    int result = 0;
    if (m != NULL && body_len != NULL) {
        for (size_t i = 0; i != num; ++i) {
            queued_send_t *q = pu_send_batch_item(b, i);
            m[i] = q->m;
            m[i].created_at = q->created_at; /* no send moves while a pass is under way */
            body_len[i] = q->body_len;
        }
        if ((result = chat_store_rows(m, body_len, num)) == 1)
            for (size_t i = 0; i != num; ++i) {
                queued_send_t *q = pu_send_batch_item(b, i);
                q->m.id = m[i].id;
                q->repeat = 0;
            }
    }
    free(m);
    free(body_len);
    return result;
}

static void free_one(void *item)
{
    queued_send_t *q = item;
    free((char *)q->m.body);
    free((char *)q->m.client_id);
}

static const pu_send_ops_t send_ops = {store_one, unstore_one, answer_settled, free_one, store_all};

void chat_send_init(forum_plugin_t *p)
{
    pu_send_batch_init(&batch, api, p, &send_ops, sends, sizeof(sends[0]));
}

static void queue_send(forum_ws_t *ws, int64_t from, int64_t to, const char *body, size_t body_len, const char *client_id)
{
    queued_send_t *q = pu_send_batch_slot(&batch, ws, client_id);
    if (q == NULL)
        return;
    q->m.from = from;
    q->m.to = to;
    q->m.body = strndup(body, body_len);
    q->m.client_id = strdup(client_id);
    q->body_len = body_len;
    api->format_time(api->now_ms(), q->created_at);
    pu_send_batch_queue(&batch, ws, q->m.client_id);
}

void chat_send_forget(forum_ws_t *ws)
{
    pu_send_batch_forget(&batch, ws);
}

void chat_send_frame(forum_ws_t *ws, yajl_val frame)
{
    int64_t me = api->ws_user(ws), to;
    forum_text_t cid, body;
    int status;

    /* client_id is opaque: taken as sent (the gate made it text), counted in characters */
    if ((status = api->text_field(frame, "client_id", 1, CHAT_CLIENT_ID_MAX, FORUM_TEXT_VERBATIM, &cid)) != 0) {
        pu_ws_field_error(api, ws, status, "client_id", &cid, "message.send");
        return;
    }
    const char *ref = cid.text; /* verbatim: the whole NUL-terminated string of the frame */
    if ((to = chat_frame_user(ws, frame, "to", me, ref)) == 0)
        return;
    /* the body follows the rule every text of the forum follows, as posts and comments do */
    if ((status = api->text_field(frame, "body", 1, CHAT_BODY_MAX, FORUM_TEXT_MULTILINE, &body)) != 0) {
        pu_ws_field_error(api, ws, status, "body", &body, ref);
        return;
    }
    queue_send(ws, me, to, body.text, body.len, ref);
}

void chat_send_fini(void)
{
    pu_send_batch_fini(&batch);
    chat_store_rows_fini();
}
