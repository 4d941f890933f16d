/*
 * The sends of one loop turn, stored in one transaction (chat's message.send, rooms' room.send).
 *
 * A plugin validates a send frame at once and queues it here; a timer of 0 ms runs after every frame the
 * loop has read in this turn, stores the whole batch in one transaction, and only then answers each send,
 * in order (delivers it, or whatever the plugin's rules say). The loop never waits for the database: when
 * another process holds its lock (or the disk is full), nothing of the batch is stored or answered; it stays
 * queued, in order, and is tried again on a backoff timer. A send still unstored PU_SEND_UNAVAILABLE_AFTER_MS
 * after it was queued is given back with an `unavailable` error naming its client_id, so that its client
 * sends it again (the client_id makes that safe). When the batch fails for another reason, each send is
 * stored in a transaction of its own, only to tell a bad one (answered `internal`) from the good ones; a
 * lock met there stops it the same way.
 *
 * What a send is, how it is stored and answered, is the plugin's: its queue holds items of the plugin's
 * own type, each beginning with a pu_queued_t, handled through pu_send_ops_t.
 */
#ifndef PU_SEND_BATCH_H
#define PU_SEND_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "../forum_plugin.h"

enum {
    PU_SEND_BATCH_MAX = 256,            /* sends queued at the most */
    PU_SEND_RETRY_FIRST_MS = 10,        /* the backoff while the database is unavailable: doubles from this */
    PU_SEND_RETRY_MAX_MS = 250,         /* up to this */
    PU_SEND_UNAVAILABLE_AFTER_MS = 5000 /* then a send is given back */
};

/* The batch's part of a queued item: every item type begins with one. */
typedef struct pu_queued {
    forum_ws_t *ws;        /* the sender's connection, NULL once it closes */
    const char *client_id; /* names the send in an error; owned by the item */
    int64_t queued_ms;     /* monotonic */
    int refused;           /* could not be stored for a reason of its own (not a lock): an internal error */
} pu_queued_t;

struct pu_send_batch;

typedef struct pu_send_ops {
    /**
     * Stores the item inside the caller's transaction: true when it is settled (stored, a repeat of an earlier
     * send, or refused by a rule of the plugin: the item records which, for `answer`), false when the store
     * failed (api->db_failure tells why).
     */
    int (*store)(void *item);
    /** Forgets what `store` recorded in the item: its transaction was rolled back. */
    void (*unstore)(void *item);
    /** Answers a settled item that was not refused (its pu_queued_t's ws is NULL when the sender left). */
    void (*answer)(void *item);
    /** Frees what the item owns. */
    void (*free)(void *item);
    /**
     * May be NULL. Stores the first `num` queued items at once inside the caller's transaction (a few statements
     * of many rows each, where `store` would make several per item: on PostgreSQL each is a round trip): 1 when
     * every one is settled, 0 when the store failed (api->db_failure tells why), -1 when these items cannot be
     * stored as a whole (a repeat among them, say): the transaction is rolled back, `unstore` is called for each,
     * and they are stored one by one with `store` in a new one.
     */
    int (*store_all)(const struct pu_send_batch *b, size_t num);
} pu_send_ops_t;

typedef struct pu_send_batch {
    const forum_api_t *api;
    forum_plugin_t *self; /* the timers' owner */
    const pu_send_ops_t *ops;
    char *items;      /* PU_SEND_BATCH_MAX items of item_size bytes */
    size_t item_size; /* of the plugin's item type */
    size_t num;       /* queued */
    int flush_scheduled;
    int storing;       /* a pass of store_and_answer is under way (suspended in a data call, on PostgreSQL) */
    unsigned retry_ms; /* the backoff while the database is unavailable; 0 when not retrying */
} pu_send_batch_t;

/** Sets up an empty batch whose items are `items`, an array of PU_SEND_BATCH_MAX items of `item_size` bytes. */
void pu_send_batch_init(pu_send_batch_t *b, const forum_api_t *api, forum_plugin_t *self, const pu_send_ops_t *ops, void *items,
                        size_t item_size);
/**
 * The zeroed item a new send of `ws` is to fill, or NULL after answering `unavailable` (naming `client_id`):
 * the database has been unavailable for a full queue. Nothing is queued until pu_send_batch_queue. When the
 * queue is full behind a pass under way (PostgreSQL), the caller waits for that pass (api->wait): its
 * connection is not read meanwhile, so a flood is slowed by TCP, not refused.
 */
void *pu_send_batch_slot(pu_send_batch_t *b, forum_ws_t *ws, const char *client_id);
/** Queues the item pu_send_batch_slot gave, now filled; `client_id` is the item's own copy. */
void pu_send_batch_queue(pu_send_batch_t *b, forum_ws_t *ws, const char *client_id);
/** How many sends are queued, and the `i`th of them (oldest first): for a plugin's look into the queue. */
size_t pu_send_batch_count(const pu_send_batch_t *b);
void *pu_send_batch_item(const pu_send_batch_t *b, size_t i);
/** Forgets a closing connection: its queued sends are still stored, but no answer goes to it. */
void pu_send_batch_forget(pu_send_batch_t *b, forum_ws_t *ws);
/** Stores what is queued, if it can, and gives the rest back `unavailable`; the batch is then empty. */
void pu_send_batch_fini(pu_send_batch_t *b);

#endif
