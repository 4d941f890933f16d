/* The sends of one loop turn, stored in one transaction (see send_batch.h). */
#include <string.h>
#include "send_batch.h"

static pu_queued_t *queued(const pu_send_batch_t *b, size_t i)
{
    return (pu_queued_t *)(b->items + i * b->item_size);
}

void pu_send_batch_init(pu_send_batch_t *b, const forum_api_t *api, forum_plugin_t *self, const pu_send_ops_t *ops, void *items,
                        size_t item_size)
{
    memset(b, 0, sizeof(*b));
    b->api = api;
    b->self = self;
    b->ops = ops;
    b->items = items;
    b->item_size = item_size;
}

size_t pu_send_batch_count(const pu_send_batch_t *b)
{
    return b->num;
}

void *pu_send_batch_item(const pu_send_batch_t *b, size_t i)
{
    return queued(b, i);
}

/* True when the last database failure will pass by itself (a lock, a full disk, a database server coming back): try again later. */
static int unavailable(int failure)
{
    return failure == FORUM_DB_BUSY || failure == FORUM_DB_FULL || failure == FORUM_DB_UNAVAILABLE;
}

/* Stores the first `num` queued sends in one transaction; 0 when done, else the failure (db_failure). */
static int store_batch(pu_send_batch_t *b, size_t num)
{
    const forum_api_t *api = b->api;
    int whole = -1;
    if (api->db_begin() != 0)
        return api->db_failure();
    if (b->ops->store_all != NULL && (whole = b->ops->store_all(b, num)) < 0) {
        /* not as a whole: each in turn, in a transaction that holds nothing of the attempt */
        api->db_rollback();
        for (size_t i = 0; i != num; ++i)
            b->ops->unstore(queued(b, i));
        if (api->db_begin() != 0)
            return api->db_failure();
    }
    if (whole == 0)
        goto Error;
    for (size_t i = 0; whole < 0 && i != num; ++i)
        if (!b->ops->store(queued(b, i)))
            goto Error;
    if (api->db_commit() == 0)
        return 0;
Error:;
    int failure = api->db_failure();
    api->db_rollback();
    for (size_t i = 0; i != num; ++i)
        b->ops->unstore(queued(b, i));
    return failure;
}

/* One send in a transaction of its own: true when settled. */
static int store_alone(pu_send_batch_t *b, void *item)
{
    const forum_api_t *api = b->api;
    if (api->db_begin() != 0)
        return 0;
    if (!b->ops->store(item) || api->db_commit() != 0) {
        api->db_rollback();
        b->ops->unstore(item);
        return 0;
    }
    return 1;
}

/* How many of the first `num` sends are settled (stored, repeated, refused by a rule, or refused). */
static size_t store_queued(pu_send_batch_t *b, size_t num)
{
    size_t n;
    int failure = store_batch(b, num);
    if (failure == 0)
        return num;
    if (unavailable(failure))
        return 0;
    /* one bad send must not cost the others: store each on its own, in order, until a lock stops it */
    for (n = 0; n != num; ++n) {
        if (store_alone(b, queued(b, n)))
            continue;
        if (unavailable(b->api->db_failure()))
            break;
        queued(b, n)->refused = 1;
    }
    return n;
}

static void answer_settled(pu_send_batch_t *b, pu_queued_t *q)
{
    if (!q->refused)
        b->ops->answer(q);
    else if (q->ws != NULL)
        b->api->ws_error(q->ws, "internal", "the message could not be stored", q->client_id);
}

/* Drops the first `n` queued sends. */
static void dequeue(pu_send_batch_t *b, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        b->ops->free(queued(b, i));
    memmove(b->items, b->items + n * b->item_size, (b->num - n) * b->item_size);
    b->num -= n;
}

static void flush_sends(void *arg);

static void schedule(pu_send_batch_t *b, unsigned ms)
{
    if (!b->flush_scheduled && b->api->defer(b->self, ms, flush_sends, b) == 0)
        b->flush_scheduled = 1;
}

/*
 * Every data call in here may suspend it (PostgreSQL), and the loop runs other callbacks meanwhile: frames
 * queue more sends behind the batch, and the batch's own timer may fire. So one pass at a time (a second
 * would store and answer the same items, and move them under the first one's feet), and a pass takes only
 * the sends queued when it began: those queued later are stored by the next pass, which it schedules.
 */
static void store_and_answer(pu_send_batch_t *b)
{
    size_t n, num = b->num;
    if (num == 0 || b->storing)
        return;
    b->storing = 1;
    n = store_queued(b, num);
    for (size_t i = 0; i != n; ++i)
        answer_settled(b, queued(b, i));
    dequeue(b, n);
    b->storing = 0;
    if (FORUM_API_HAS(b->api, wake))
        b->api->wake(b, PU_SEND_BATCH_MAX - b->num); /* as many senders that waited for room as there is room for */
    if (n == num && b->num != 0) {
        /* all of this pass's are settled: the ones queued during it go in the next turn (now, with no timer) */
        b->retry_ms = 0;
        schedule(b, 0);
        if (!b->flush_scheduled)
            store_and_answer(b);
        return;
    }
    if (b->num == 0) {
        b->retry_ms = 0;
        return;
    }
    /* the database is unavailable: what waited too long is given back to its sender; the rest waits */
    int64_t now = b->api->mono_ms();
    for (n = 0; n != b->num && now - queued(b, n)->queued_ms >= PU_SEND_UNAVAILABLE_AFTER_MS; ++n)
        if (queued(b, n)->ws != NULL)
            b->api->ws_db_error(queued(b, n)->ws, "the message could not be stored", queued(b, n)->client_id);
    dequeue(b, n);
    if (b->num == 0) {
        b->retry_ms = 0;
    } else {
        b->retry_ms = b->retry_ms == 0                           ? PU_SEND_RETRY_FIRST_MS
                      : b->retry_ms * 2 > PU_SEND_RETRY_MAX_MS ? PU_SEND_RETRY_MAX_MS
                                                               : b->retry_ms * 2;
        schedule(b, b->retry_ms);
    }
    /* every sender still waiting for room: each queues behind the retry now that there is room, or is told the
     * database is unavailable (pu_send_batch_slot); none is left waiting for a pass that may not come */
    if (FORUM_API_HAS(b->api, wake))
        b->api->wake(b, SIZE_MAX);
}

static void flush_sends(void *arg)
{
    pu_send_batch_t *b = arg;
    b->flush_scheduled = 0;
    store_and_answer(b);
}

void *pu_send_batch_slot(pu_send_batch_t *b, forum_ws_t *ws, const char *client_id)
{
    while (b->num == PU_SEND_BATCH_MAX && b->retry_ms == 0) {
        if (!b->storing)
            store_and_answer(b); /* a full batch is stored now; its timer finds the next one */
        else if (!FORUM_API_HAS(b->api, wait) || b->api->wait(b) != 0)
            break;
        /* else a pass was under way (suspended on PostgreSQL) with the queue behind it full, and this sender
         * waited for it with its connection unread: a flood is slowed by TCP, not refused */
    }
    if (b->num == PU_SEND_BATCH_MAX) {
        if (b->storing) {
            /* a pass is under way (suspended on PostgreSQL) and the queue behind it is full: the sender tries
             * again (its client_id keeps the retry from storing twice); never "internal", nothing failed */
            b->api->ws_error(ws, "unavailable", "too many messages at once; send it again", client_id);
            return NULL;
        }
        /* the database has been unavailable for a full queue: nothing more is taken until it is back */
        b->api->ws_db_error(ws, "the message could not be stored", client_id);
        return NULL;
    }
    memset(queued(b, b->num), 0, b->item_size);
    return queued(b, b->num);
}

void pu_send_batch_queue(pu_send_batch_t *b, forum_ws_t *ws, const char *client_id)
{
    pu_queued_t *q = queued(b, b->num++);
    q->ws = ws;
    q->client_id = client_id;
    q->queued_ms = b->api->mono_ms();
    schedule(b, 0);
    if (!b->flush_scheduled)
        store_and_answer(b); /* no timer to be had: store at once (or by the pass under way, which looks again) */
}

void pu_send_batch_forget(pu_send_batch_t *b, forum_ws_t *ws)
{
    for (size_t i = 0; i != b->num; ++i)
        if (queued(b, i)->ws == ws)
            queued(b, i)->ws = NULL;
}

void pu_send_batch_fini(pu_send_batch_t *b)
{
    if (b->ops == NULL)
        return; /* never set up: nothing was queued */
    /* nothing is left while the batch's timer pins this generation; kept for safety, with no timer to come */
    b->flush_scheduled = 1;
    store_and_answer(b);
    for (size_t i = 0; i != b->num; ++i)
        if (queued(b, i)->ws != NULL)
            b->api->ws_db_error(queued(b, i)->ws, "the message could not be stored", queued(b, i)->client_id);
    dequeue(b, b->num);
}
