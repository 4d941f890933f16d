/* Typing indicators' state, bounded per typist (see typists.h). */
#include <stdlib.h>
#include <string.h>
#include "typists.h"

void pu_typists_init(pu_typists_t *ts, const forum_api_t *api, size_t targets_max, size_t typist_size, pu_relay_fn relay)
{
    memset(ts, 0, sizeof(*ts));
    ts->api = api;
    ts->targets_max = targets_max;
    ts->typist_size = typist_size < sizeof(pu_typist_t) ? sizeof(pu_typist_t) : typist_size;
    ts->relay = relay;
}

static pu_typist_t **typist_slot(pu_typists_t *ts, int64_t from)
{
    return &ts->buckets[(((uint64_t)from * 0x9E3779B97F4A7C15ull) >> 40) % PU_TYPING_BUCKETS];
}

pu_typist_t *pu_typists_find(pu_typists_t *ts, int64_t from)
{
    pu_typist_t *t = *typist_slot(ts, from);
    while (t != NULL && t->from != from)
        t = t->next;
    return t;
}

pu_typist_t *pu_typists_add(pu_typists_t *ts, int64_t from)
{
    pu_typist_t **slot = typist_slot(ts, from), *t = calloc(1, ts->typist_size);
    if (t == NULL)
        return NULL;
    t->from = from;
    t->next = *slot;
    *slot = t;
    return t;
}

static void typist_free(pu_typist_t *t)
{
    free(t->targets);
    free(t);
}

/* The index of the state toward `target` among `t`'s, or t->num when there is none. */
static size_t target_index(const pu_typist_t *t, int64_t target)
{
    size_t i = 0;
    while (i != t->num && t->targets[i].target != target)
        ++i;
    return i;
}

/*
 * A copy of `t` for relays (caller frees), NULL when out of memory. A relay may suspend the callback that
 * makes it (a data call, on PostgreSQL) while the loop runs others, which may move or free `t` (its going
 * offline) or relay for it too: so the table is brought up to date before any relay, and relays read only a
 * copy made before the first. The copy has no targets: a relay reads only the typist's own fields.
 */
static pu_typist_t *typist_copy(const pu_typists_t *ts, const pu_typist_t *t)
{
    pu_typist_t *copy = malloc(ts->typist_size);
    if (copy == NULL)
        return NULL;
    memcpy(copy, t, ts->typist_size);
    copy->next = NULL;
    copy->targets = NULL;
    copy->num = copy->cap = 0;
    return copy;
}

/*
 * The state of `t` toward `target`, moved to the most recently used end, created when missing: the least
 * recently used goes when the typist already has targets_max (its target, if shown as typing, is to be told
 * it stopped, no later event would clear it: `*has_stopped` and `*stopped` say so). NULL only when out of memory.
 */
static pu_typing_t *target_use(pu_typists_t *ts, pu_typist_t *t, int64_t target, int *has_stopped, int64_t *stopped)
{
    size_t i = target_index(t, target);
    pu_typing_t found = {.target = target};
    *has_stopped = 0;
    if (i != t->num) {
        found = t->targets[i];
    } else if (t->num == ts->targets_max) {
        *has_stopped = t->targets[0].active;
        *stopped = t->targets[0].target;
        i = 0;
    } else {
        if (t->num == t->cap) {
            size_t cap = t->cap == 0 ? 4 : t->cap * 2 > ts->targets_max ? ts->targets_max : t->cap * 2;
            pu_typing_t *grown = realloc(t->targets, cap * sizeof(*grown));
            if (grown == NULL)
                return NULL;
            t->targets = grown;
            t->cap = cap;
        }
        i = t->num++;
    }
    memmove(t->targets + i, t->targets + i + 1, (t->num - 1 - i) * sizeof(*t->targets));
    t->targets[t->num - 1] = found;
    return &t->targets[t->num - 1];
}

void pu_typists_update(pu_typists_t *ts, pu_typist_t *t, int64_t target, int active, int force)
{
    int64_t now = ts->api->mono_ms(), stopped = 0; /* intervals never on the wall clock, which can step back */
    int has_stopped = 0;
    pu_typing_t *s = target_use(ts, t, target, &has_stopped, &stopped);
    pu_typist_t *copy;

    if (s != NULL) {
        if (!force && s->relayed_ms != 0 && s->active == active && now - s->relayed_ms < PU_TYPING_REFRESH_MS)
            return;
        /* recorded before relaying: a frame that a relay lets run is thinned against it (typist_copy) */
        s->active = active;
        s->relayed_ms = now;
    } /* else nothing can be kept: relayed, unthinned */
    if ((copy = typist_copy(ts, t)) == NULL)
        return; /* out of memory: a typing indicator is not worth more */
    if (has_stopped)
        ts->relay(copy, stopped, 0);
    /* gone offline meanwhile: it was told to have stopped everywhere, `target` too */
    if (!has_stopped || pu_typists_find(ts, copy->from) != NULL)
        ts->relay(copy, target, active);
    free(copy);
}

/* Only a typist is told to stop: most messages need no extra frame. */
void pu_typists_stop(pu_typists_t *ts, int64_t from, int64_t target)
{
    pu_typist_t *t = pu_typists_find(ts, from);
    size_t i = t != NULL ? target_index(t, target) : 0;
    if (t != NULL && i != t->num && t->targets[i].active)
        pu_typists_update(ts, t, target, 0, 1);
}

void pu_typists_offline(pu_typists_t *ts, int64_t from)
{
    pu_typist_t **p = typist_slot(ts, from), *t;
    while (*p != NULL && (*p)->from != from)
        p = &(*p)->next;
    if ((t = *p) == NULL)
        return;
    *p = t->next; /* out of the table first: while a relay below is suspended, nothing else reaches `t` */
    for (size_t i = 0; i != t->num; ++i)
        if (t->targets[i].active)
            ts->relay(t, t->targets[i].target, 0); /* their last connection closed: they stopped typing */
    typist_free(t);
}

void pu_typists_fini(pu_typists_t *ts)
{
    for (size_t i = 0; i != PU_TYPING_BUCKETS; ++i) {
        while (ts->buckets[i] != NULL) {
            pu_typist_t *t = ts->buckets[i];
            ts->buckets[i] = t->next;
            typist_free(t);
        }
    }
}
