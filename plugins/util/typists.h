/*
 * Typing indicators' state (chat's typing toward a user, rooms' typing in a room): who types toward which
 * target, relayed by the plugin, thinned when repeated, stopped when the typist sends a message or goes
 * offline.
 *
 * What is kept is bounded per connected user: each typist holds its states toward the last `targets_max`
 * targets it typed to (a client that types to every target pushes out its oldest, whose target is told it
 * stopped: no later event would clear it), and a typist's going offline walks only its own.
 */
#ifndef PU_TYPISTS_H
#define PU_TYPISTS_H

#include <stddef.h>
#include <stdint.h>
#include "../forum_plugin.h"

enum {
    PU_TYPING_REFRESH_MS = 1000, /* an unchanged typing state is relayed at most this often */
    PU_TYPING_BUCKETS = 1024,
};

typedef struct pu_typing {
    int64_t target;
    int64_t relayed_ms;
    int active;
} pu_typing_t;

/* A typist: a plugin's typist type may begin with one and carry more (typist_size). */
typedef struct pu_typist {
    struct pu_typist *next;
    int64_t from;
    size_t num, cap;
    pu_typing_t *targets; /* least recently used first */
} pu_typist_t;

/** Tells the target's users that typist `t` is typing there (`active`) or stopped. */
typedef void (*pu_relay_fn)(const pu_typist_t *t, int64_t target, int active);

typedef struct pu_typists {
    const forum_api_t *api;
    size_t targets_max; /* states kept per typist */
    size_t typist_size; /* of the plugin's typist type */
    pu_relay_fn relay;
    pu_typist_t *buckets[PU_TYPING_BUCKETS];
} pu_typists_t;

/** Sets up an empty table. */
void pu_typists_init(pu_typists_t *ts, const forum_api_t *api, size_t targets_max, size_t typist_size, pu_relay_fn relay);
/** The typist `from`, or NULL. */
pu_typist_t *pu_typists_find(pu_typists_t *ts, int64_t from);
/** A new typist `from` (zeroed past its pu_typist_t), in the table; NULL when out of memory. */
pu_typist_t *pu_typists_add(pu_typists_t *ts, int64_t from);
/**
 * Relays `t`'s state toward `target` unless it repeats the state relayed less than PU_TYPING_REFRESH_MS
 * ago: a client that floods typing frames is thinned, not disconnected. `force` relays regardless (a
 * message was sent).
 */
void pu_typists_update(pu_typists_t *ts, pu_typist_t *t, int64_t target, int active, int force);
/** `from` sent a message to `target` (or left it): if it was typing there, it is told to have stopped. */
void pu_typists_stop(pu_typists_t *ts, int64_t from, int64_t target);
/** `from` went offline (or is dropped): where it was typing, it stopped; it is forgotten. */
void pu_typists_offline(pu_typists_t *ts, int64_t from);
/** Forgets every typist, relaying nothing. */
void pu_typists_fini(pu_typists_t *ts);

#endif
