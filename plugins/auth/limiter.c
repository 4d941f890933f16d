/*
 * Token buckets keyed by text: each key may spend `burst` attempts, refilled evenly over `window_s`
 * seconds. An attempt is reserved when it is decided, before its work is queued, so a burst in flight
 * cannot slip past the limit; what the work finds out later only gives a token back (auth_limiter_refund).
 *
 * Time is the caller's, in milliseconds on a clock that should not jump (the loop's monotonic clock);
 * a step backwards is clamped rather than trusted, so a bucket never waits for a clock to catch up.
 *
 * The table has a fixed number of entries, allocated once. Keys are kept as a salted digest (fixed
 * size, whatever the key's length; the per-process salt keeps anyone from aiming keys at one hash
 * chain). Every lookup moves its entry to the front of a recency list; a new key that finds the table
 * full takes over the least recently used entry, as nginx's limit_req does. Each call is O(1): no call
 * ever walks the whole table.
 */
#include <math.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "auth.h"

#define NIL UINT32_MAX
#define DIGEST_LEN 16

typedef struct entry {
    uint8_t digest[DIGEST_LEN];
    double tokens;
    int64_t updated_ms;
    uint32_t chain; /* next entry of the same hash slot */
    uint32_t newer, older; /* the recency list */
} entry_t;

struct auth_limiter {
    double burst;
    double per_ms; /* tokens regained per millisecond */
    uint32_t capacity, used;
    uint32_t mask;     /* slots - 1 (a power of two) */
    uint32_t *slots;   /* first entry of each hash chain */
    uint32_t newest, oldest;
    entry_t *entries;
    uint8_t salt[16];
};

auth_limiter_t *auth_limiter_new(unsigned burst, unsigned window_s, size_t max_keys)
{
    auth_limiter_t *l = calloc(1, sizeof(*l));
    uint32_t slots = 16;

    if (l == NULL)
        return NULL;
    if (max_keys < 1)
        max_keys = 1;
    if (max_keys > (size_t)1 << 24)
        max_keys = (size_t)1 << 24;
    while (slots < max_keys)
        slots *= 2;
    l->burst = burst;
    l->per_ms = (double)burst / ((double)window_s * 1000);
    l->capacity = (uint32_t)max_keys;
    l->mask = slots - 1;
    l->newest = l->oldest = NIL;
    l->slots = malloc(slots * sizeof(*l->slots));
    l->entries = calloc(l->capacity, sizeof(*l->entries));
    if (l->slots == NULL || l->entries == NULL) {
        auth_limiter_free(l);
        return NULL;
    }
    memset(l->slots, 0xff, slots * sizeof(*l->slots));
    /* without randomness the salt stays zero: the table still works, only chains become aimable */
    if (getrandom(l->salt, sizeof(l->salt), 0) != sizeof(l->salt))
        memset(l->salt, 0, sizeof(l->salt));
    return l;
}

void auth_limiter_free(auth_limiter_t *l)
{
    if (l == NULL)
        return;
    free(l->slots);
    free(l->entries);
    free(l);
}

size_t auth_limiter_keys(const auth_limiter_t *l)
{
    return l->used;
}

static void digest_of(const auth_limiter_t *l, const char *key, uint8_t out[DIGEST_LEN])
{
    uint8_t full[SHA256_DIGEST_LENGTH], local[sizeof(l->salt) + 512];
    size_t len = strlen(key), total = sizeof(l->salt) + len;
    uint8_t *buf = total <= sizeof(local) ? local : malloc(total);

    if (buf == NULL) {
        /* no memory for a long key: its first bytes stand for it */
        buf = local;
        total = sizeof(local);
    }
    memcpy(buf, l->salt, sizeof(l->salt));
    memcpy(buf + sizeof(l->salt), key, total - sizeof(l->salt));
    SHA256(buf, total, full);
    if (buf != local)
        free(buf);
    memcpy(out, full, DIGEST_LEN);
}

static uint32_t slot_of(const auth_limiter_t *l, const uint8_t digest[DIGEST_LEN])
{
    uint32_t h;
    memcpy(&h, digest, sizeof(h));
    return h & l->mask;
}

static void unlink_recency(auth_limiter_t *l, uint32_t i)
{
    entry_t *e = &l->entries[i];
    if (e->newer != NIL)
        l->entries[e->newer].older = e->older;
    else
        l->newest = e->older;
    if (e->older != NIL)
        l->entries[e->older].newer = e->newer;
    else
        l->oldest = e->newer;
}

static void push_newest(auth_limiter_t *l, uint32_t i)
{
    entry_t *e = &l->entries[i];
    e->newer = NIL;
    e->older = l->newest;
    if (l->newest != NIL)
        l->entries[l->newest].newer = i;
    l->newest = i;
    if (l->oldest == NIL)
        l->oldest = i;
}

static void unlink_chain(auth_limiter_t *l, uint32_t i)
{
    uint32_t *p = &l->slots[slot_of(l, l->entries[i].digest)];
    while (*p != i)
        p = &l->entries[*p].chain;
    *p = l->entries[i].chain;
}

/* The entry of `key`, made the most recent; NIL when it has none and `create` is false. */
static uint32_t lookup(auth_limiter_t *l, const char *key, int64_t now_ms, int create)
{
    uint8_t digest[DIGEST_LEN];
    uint32_t i;

    digest_of(l, key, digest);
    for (i = l->slots[slot_of(l, digest)]; i != NIL; i = l->entries[i].chain)
        if (memcmp(l->entries[i].digest, digest, DIGEST_LEN) == 0)
            break;
    if (i != NIL) {
        unlink_recency(l, i);
    } else {
        if (!create)
            return NIL;
        if (l->used < l->capacity) {
            i = l->used++;
        } else {
            /* full: the least recently used key is forgotten (an active key is never the oldest) */
            i = l->oldest;
            unlink_recency(l, i);
            unlink_chain(l, i);
        }
        entry_t *e = &l->entries[i];
        memcpy(e->digest, digest, DIGEST_LEN);
        e->tokens = l->burst;
        e->updated_ms = now_ms;
        uint32_t slot = slot_of(l, digest);
        e->chain = l->slots[slot];
        l->slots[slot] = i;
    }
    push_newest(l, i);
    return i;
}

static void refill(auth_limiter_t *l, entry_t *e, int64_t now_ms)
{
    /* a clock that went back restarts the interval from now: no refill, but no waiting for the old time either */
    if (now_ms > e->updated_ms)
        e->tokens = fmin(l->burst, e->tokens + (double)(now_ms - e->updated_ms) * l->per_ms);
    e->updated_ms = now_ms;
}

unsigned auth_limiter_reserve(auth_limiter_t *l, const char *key, int64_t now_ms)
{
    entry_t *e = &l->entries[lookup(l, key, now_ms, 1)];
    refill(l, e, now_ms);
    if (e->tokens >= 1) {
        e->tokens -= 1;
        return 0;
    }
    unsigned wait = (unsigned)ceil((1 - e->tokens) / l->per_ms / 1000);
    return wait != 0 ? wait : 1;
}

void auth_limiter_refund(auth_limiter_t *l, const char *key, int64_t now_ms)
{
    uint32_t i = lookup(l, key, now_ms, 0);
    if (i == NIL)
        return; /* forgotten meanwhile: it starts full when next seen */
    entry_t *e = &l->entries[i];
    refill(l, e, now_ms);
    e->tokens = fmin(l->burst, e->tokens + 1);
}
