/*
 * The flood control of room messages: a token bucket per user (settings rate-burst tokens, one more every
 * rate-refill-ms, on the monotonic clock), charged when a room.send is decided, before it is queued, so a
 * burst in flight cannot slip past. The table is bounded (limiter-entries): a full table forgets its least
 * recently used user, who starts again with a full bucket. Hash chains and a recency list: no scan.
 */
#include <stdio.h>
#include <stdlib.h>
#include "rooms.h"

#define api rooms_api

typedef struct bucket {
    struct bucket *next;              /* in its hash chain */
    struct bucket *older, *newer;     /* the recency list */
    int64_t user;
    int64_t credit_ms;                /* tokens times refill_ms: whole milliseconds, no rounding */
    int64_t at_ms;                    /* when credit_ms was last brought up to date */
} bucket_t;

static int enabled;
static int64_t refill_ms, capacity_ms;
static size_t max_entries, num_entries, num_chains;
static bucket_t **chains;
static bucket_t *oldest, *newest;

int rooms_limiter_init(forum_plugin_t *p)
{
    enabled = api->setting_bool(p, "rate-limit");
    refill_ms = (int64_t)api->setting_uint(p, "rate-refill-ms");
    capacity_ms = (int64_t)api->setting_uint(p, "rate-burst") * refill_ms;
    max_entries = (size_t)api->setting_uint(p, "limiter-entries");
    num_chains = 16;
    while (num_chains < max_entries)
        num_chains *= 2;
    num_entries = 0;
    oldest = newest = NULL;
    chains = calloc(num_chains, sizeof(*chains));
    return chains != NULL;
}

void rooms_limiter_fini(void)
{
    while (oldest != NULL) {
        bucket_t *b = oldest;
        oldest = b->newer;
        free(b);
    }
    newest = NULL;
    free(chains);
    chains = NULL;
}

static bucket_t **chain_of(int64_t user)
{
    return &chains[(((uint64_t)user * 0x9E3779B97F4A7C15ull) >> 20) & (num_chains - 1)];
}

static void unlink_recency(bucket_t *b)
{
    *(b->older != NULL ? &b->older->newer : &oldest) = b->newer;
    *(b->newer != NULL ? &b->newer->older : &newest) = b->older;
}

static void link_newest(bucket_t *b)
{
    b->older = newest;
    b->newer = NULL;
    *(newest != NULL ? &newest->newer : &oldest) = b;
    newest = b;
}

/* The bucket of `user`, the most recently used from now on; made (full) when missing. NULL when out of memory. */
static bucket_t *bucket_use(int64_t user, int64_t now)
{
    bucket_t **p = chain_of(user), *b;
    for (b = *p; b != NULL; b = b->next)
        if (b->user == user) {
            unlink_recency(b);
            link_newest(b);
            return b;
        }
    if (num_entries == max_entries) {
        /* the least recently used user is forgotten: its bucket is reused */
        b = oldest;
        unlink_recency(b);
        bucket_t **q = chain_of(b->user);
        while (*q != b)
            q = &(*q)->next;
        *q = b->next;
    } else if ((b = malloc(sizeof(*b))) != NULL) {
        ++num_entries;
    } else {
        return NULL;
    }
    b->user = user;
    b->credit_ms = capacity_ms;
    b->at_ms = now;
    b->next = *p;
    *p = b;
    link_newest(b);
    return b;
}

int64_t rooms_limiter_take(int64_t user)
{
    int64_t now = api->mono_ms(), shared;
    bucket_t *b;
    char key[24];
    if (!enabled)
        return 0;
    /* with several nodes (a bus) the user's bucket is one for all of them, in Redis; this table while it is away */
    snprintf(key, sizeof(key), "%lld", (long long)user);
    if (FORUM_API_HAS(api, shared_limit) && (shared = api->shared_limit("room-send", key, (unsigned)(capacity_ms / refill_ms), capacity_ms, 1)) >= 0)
        return shared;
    if ((b = bucket_use(user, now)) == NULL)
        return 0; /* off, or no memory to keep a bucket: nothing is refused for it */
    if (now > b->at_ms) {
        int64_t gained = now - b->at_ms;
        b->credit_ms = gained >= capacity_ms - b->credit_ms ? capacity_ms : b->credit_ms + gained;
        b->at_ms = now;
    }
    if (b->credit_ms >= refill_ms) {
        b->credit_ms -= refill_ms;
        return 0;
    }
    return refill_ms - b->credit_ms;
}
