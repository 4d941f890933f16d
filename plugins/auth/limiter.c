/*
 * Token buckets keyed by text: each key may spend `burst` attempts, refilled evenly over `window_s`
 * seconds. The table is bounded: when it is full, keys whose buckets are full again are forgotten,
 * and a new key that still finds no room is not limited (the other key of the same attempt still is).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"

typedef struct bucket {
    struct bucket *next;
    double tokens;
    int64_t updated_ms;
    char key[];
} bucket_t;

struct auth_limiter {
    double burst;
    double per_ms; /* tokens regained per millisecond */
    size_t max_keys, num_keys, num_buckets;
    bucket_t **buckets;
};

auth_limiter_t *auth_limiter_new(unsigned burst, unsigned window_s, size_t max_keys)
{
    auth_limiter_t *l = calloc(1, sizeof(*l));
    l->burst = burst;
    l->per_ms = (double)burst / ((double)window_s * 1000);
    l->max_keys = max_keys;
    l->num_buckets = 4096;
    l->buckets = calloc(l->num_buckets, sizeof(*l->buckets));
    return l;
}

void auth_limiter_free(auth_limiter_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i != l->num_buckets; ++i) {
        while (l->buckets[i] != NULL) {
            bucket_t *b = l->buckets[i];
            l->buckets[i] = b->next;
            free(b);
        }
    }
    free(l->buckets);
    free(l);
}

static size_t slot_of(auth_limiter_t *l, const char *key)
{
    size_t h = 1469598103934665603ull;
    for (; *key != '\0'; ++key)
        h = (h ^ (unsigned char)*key) * 1099511628211ull;
    return h % l->num_buckets;
}

static void refill(auth_limiter_t *l, bucket_t *b, int64_t now_ms)
{
    if (now_ms > b->updated_ms) {
        b->tokens = fmin(l->burst, b->tokens + (double)(now_ms - b->updated_ms) * l->per_ms);
        b->updated_ms = now_ms;
    }
}

static bucket_t *find(auth_limiter_t *l, const char *key)
{
    for (bucket_t *b = l->buckets[slot_of(l, key)]; b != NULL; b = b->next)
        if (strcmp(b->key, key) == 0)
            return b;
    return NULL;
}

static void forget_full_buckets(auth_limiter_t *l, int64_t now_ms)
{
    for (size_t i = 0; i != l->num_buckets; ++i) {
        bucket_t **p = &l->buckets[i];
        while (*p != NULL) {
            refill(l, *p, now_ms);
            if ((*p)->tokens >= l->burst) {
                bucket_t *gone = *p;
                *p = gone->next;
                free(gone);
                --l->num_keys;
            } else {
                p = &(*p)->next;
            }
        }
    }
}

unsigned auth_limiter_wait(auth_limiter_t *l, const char *key, int64_t now_ms)
{
    bucket_t *b = find(l, key);
    if (b == NULL)
        return 0;
    refill(l, b, now_ms);
    if (b->tokens >= 1)
        return 0;
    return (unsigned)ceil((1 - b->tokens) / l->per_ms / 1000);
}

void auth_limiter_spend(auth_limiter_t *l, const char *key, int64_t now_ms)
{
    bucket_t *b = find(l, key);
    if (b == NULL) {
        if (l->num_keys >= l->max_keys)
            forget_full_buckets(l, now_ms);
        if (l->num_keys >= l->max_keys)
            return;
        size_t len = strlen(key);
        b = malloc(sizeof(*b) + len + 1);
        memcpy(b->key, key, len + 1);
        b->tokens = l->burst;
        b->updated_ms = now_ms;
        size_t slot = slot_of(l, key);
        b->next = l->buckets[slot];
        l->buckets[slot] = b;
        ++l->num_keys;
    }
    refill(l, b, now_ms);
    b->tokens = fmax(0, b->tokens - 1);
}
