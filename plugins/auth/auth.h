/* The auth plugin's parts: accounts (register, log in, log out), validation, rate limits, hashing. */
#ifndef AUTH_H
#define AUTH_H

#include <stdint.h>
#include "../forum_plugin.h"

extern const forum_api_t *auth_api;
extern forum_plugin_t *auth_self;

/* validate.c: the rules of API.md "Accounts" */

typedef struct auth_error {
    int status; /* 400 for a wrong type, 422 for a value that fails validation */
    const char *field;
    const char *message;
    char message_buf[80]; /* where `message` points when the core's validator wrote it */
} auth_error_t;

typedef struct auth_registration {
    char nickname[33];
    char email[255]; /* lower-cased */
    char first_name[64 * 4 + 1];
    char last_name[64 * 4 + 1];
    char gender[8];
    int age;
    char password[128 * 4 + 1];
} auth_registration_t;

/** Fills `out` from a register body; 0, or -1 with `err` set. */
int auth_validate_registration(yajl_val body, auth_registration_t *out, auth_error_t *err);
/** A trimmed, lower-cased login (nickname or email) and the password from a login body; 0, or -1 with `err`. */
int auth_validate_login(yajl_val body, char *login, size_t login_size, char *password, size_t password_size, auth_error_t *err);

/* limiter.c: token buckets keyed by text ("addr:<peer>", "acct:<user id>"), in a fixed-size table */

typedef struct auth_limiter auth_limiter_t;
/** `burst` attempts, refilled evenly over `window_s` seconds; at most `max_keys` tracked at once (the least recently used goes). */
auth_limiter_t *auth_limiter_new(unsigned burst, unsigned window_s, size_t max_keys);
void auth_limiter_free(auth_limiter_t *l);
/**
 * Takes one attempt of `key` now: 0 when it had one, else the seconds until it will (nothing taken).
 * `now_ms` is on a clock that does not jump (api->mono_ms); a step back is clamped.
 */
unsigned auth_limiter_reserve(auth_limiter_t *l, const char *key, int64_t now_ms);
/** Gives back an attempt reserved earlier whose outcome does not count (a success, work never run). */
void auth_limiter_refund(auth_limiter_t *l, const char *key, int64_t now_ms);
/** The number of keys tracked (never more than `max_keys`). */
size_t auth_limiter_keys(const auth_limiter_t *l);

/* hasher.c: scrypt on the thread pool, a bounded number at once, the rest in a bounded queue */

typedef struct auth_hash_job auth_hash_job_t;
struct auth_hash_job {
    auth_hash_job_t *next;
    forum_req_t *req;
    int ran; /* set once `work` has run; false in `done` when the job could not be started */
    void (*work)(auth_hash_job_t *job);                   /* on a pool thread: no api calls */
    void (*done)(auth_hash_job_t *job, forum_req_t *req); /* on the loop; frees the job */
};

int auth_hasher_init(unsigned running, unsigned queued);
/** Runs the job now or queues it; -1 when the queue is full (answer 503). */
int auth_hasher_submit(auth_hash_job_t *job);

typedef struct auth_scrypt {
    uint32_t N;
    uint8_t r, p;
} auth_scrypt_t;
extern auth_scrypt_t auth_scrypt_params;

#endif
