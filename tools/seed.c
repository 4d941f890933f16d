/*
 * seed: fills a forumd database quickly, for the benchmarks.
 *
 *   seed --db PATH | --postgres CONNINFO [--users N] [--posts M] [--messages K] [--pairs P] [--sessions S --cookies FILE]
 *        [--prefix NAME] [--password-hash MCF | --copy-hash] [--body-size B] [--random-seed X]
 *
 * The schema must exist already (start forumd on the database once and stop it). Everything goes in
 * through one transaction (tools/seed_db.h: prepared statements into a SQLite file, COPY into a PostgreSQL
 * database; the same rows either way), and keeps the invariants the server keeps:
 *   - users: nickname PREFIX<k>, email PREFIX<k>@bench.invalid, one valid scrypt hash for everyone
 *     (by default the hash of "bench-password" with forumd's default cost, N=32768 r=8 p=1);
 *   - posts with one to three distinct categories, inserted through post_categories so that its
 *     trigger keeps categories.post_count; no comments, so posts.comment_count stays 0;
 *   - messages between pairs of the seeded users (user 2i with user 2i+1), two message_index rows
 *     each with what each side had sent so far, and the two conversations rows of each pair (last
 *     message, unread = received = messages received);
 *   - sessions exactly as core/session.c makes them: 32 random bytes, the table keeps their SHA-256,
 *     the cookie is the lower-case hex of the raw bytes. One `sid=HEX` line per session in FILE.
 * Prints one JSON line: what was inserted and how long it took.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "seed_db.h"

/* scrypt of "bench-password", N=32768 r=8 p=1 (forumd's default cost), made by libscrypt_hash as auth does */
static const char default_hash[] = "$s1$0f0801$r3eHS+MHV3BFusj+9VvejA==$v5tRhdmv31SjSffP2ypbioeffsXNOy3H4b4vTeFJRZb3SrVCie3wsNGVZ503mgXwoOxr+Zc5C+sPIHMrPQ4MNQ==";

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* forumd's time format: 2026-11-29T13:45:00.123Z */
static void format_time(int64_t ms, char *out, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03dZ", (int)(ms % 1000));
}

static const char *const words[] = {"forum", "thread", "reply", "server", "socket", "message", "latency", "coffee", "garden",
                                    "river", "music", "football", "theatre", "science", "history", "travel", "kitchen", "winter",
                                    "summer", "library", "window", "bridge", "market", "planet", "signal", "pocket", "ladder",
                                    "candle", "harbor", "meadow", "engine", "castle"};

/* `len` bytes of words and spaces (no quotes, no backslashes: the load tools scan frames by hand) */
static void make_text(char *out, size_t len)
{
    size_t n = 0;
    while (n < len) {
        const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
        size_t wl = strlen(w);
        if (n != 0)
            out[n++] = ' ';
        for (size_t i = 0; i != wl && n < len; ++i)
            out[n++] = w[i];
    }
    if (len != 0 && out[len - 1] == ' ')
        out[len - 1] = 'x';
    out[len] = '\0';
}

static void usage(void)
{
    fprintf(stderr, "usage: seed --db PATH | --postgres CONNINFO [--users N] [--posts M] [--messages K] [--pairs P] [--sessions S --cookies FILE]\n"
                    "            [--prefix NAME] [--password-hash MCF | --copy-hash] [--body-size B] [--random-seed X]\n");
    exit(2);
}

typedef struct pair_state {
    int64_t last_id;
    int64_t last_ms;
    int64_t received[2]; /* messages received by side 0 (the lower id) and side 1 */
} pair_state_t;


static const seed_db_t *db;

static int64_t query_int(const char *sql)
{
    int64_t v = 0;
    db->query_ints(sql, &v, 1);
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},         {"postgres", required_argument, NULL, 'g'},
        {"users", required_argument, NULL, 'u'},      {"posts", required_argument, NULL, 'p'},
        {"messages", required_argument, NULL, 'm'},   {"pairs", required_argument, NULL, 'P'},
        {"sessions", required_argument, NULL, 's'},   {"cookies", required_argument, NULL, 'c'},
        {"prefix", required_argument, NULL, 'x'},     {"password-hash", required_argument, NULL, 'H'},
        {"copy-hash", no_argument, NULL, 'C'},        {"body-size", required_argument, NULL, 'b'},
        {"random-seed", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *target = NULL, *cookies_path = NULL, *prefix = "bench", *hash = default_hash;
    long long num_users = 0, num_posts = 0, num_messages = 0, num_pairs = -1, num_sessions = 0, body_size = 300;
    int copy_hash = 0, c, targets = 0;
    char *copied = NULL;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': target = optarg; db = &seed_sqlite; ++targets; break;
        case 'g': target = optarg; db = &seed_pg; ++targets; break;
        case 'u': num_users = atoll(optarg); break;
        case 'p': num_posts = atoll(optarg); break;
        case 'm': num_messages = atoll(optarg); break;
        case 'P': num_pairs = atoll(optarg); break;
        case 's': num_sessions = atoll(optarg); break;
        case 'c': cookies_path = optarg; break;
        case 'x': prefix = optarg; break;
        case 'H': hash = optarg; break;
        case 'C': copy_hash = 1; break;
        case 'b': body_size = atoll(optarg); break;
        case 'r': rng_state = (uint64_t)atoll(optarg) * 0x9E3779B97F4A7C15ull | 1; break;
        default: usage();
        }
    }
    if (targets != 1 || optind != argc || num_users < 0 || num_posts < 0 || num_messages < 0 || num_sessions < 0 || body_size < 1 ||
        body_size > 20000 || strlen(prefix) > 16 || (num_sessions > 0 && cookies_path == NULL))
        usage();

    double t0 = now_s();
    db->open(target);
    if (!db->has_schema()) {
        fprintf(stderr, "seed: %s has no forumd schema: start forumd on it once first\n", db == &seed_pg ? "the database" : target);
        return 1;
    }
    if (copy_hash && (copied = db->query_text("SELECT password_hash FROM users ORDER BY id LIMIT 1")) != NULL)
        hash = copied;

    db->begin();
    int64_t now = wall_ms();
    char when[32];

    /* --- users: the pool that authors posts, exchanges messages and holds sessions --- */
    int64_t first_user = 0, pool_size;
    {
        static const char *const genders[] = {"female", "male", "other"};
        format_time(now - 86400000, when, sizeof(when));
        for (long long k = 1; k <= num_users; ++k) {
            char nick[48], email[80];
            snprintf(nick, sizeof(nick), "%s%lld", prefix, k);
            snprintf(email, sizeof(email), "%s%lld@bench.invalid", prefix, k);
            seed_val_t v[] = {SEED_T(nick),    SEED_T(email), SEED_T(hash), SEED_T("Bench"), SEED_T(nick), SEED_I(20 + k % 50),
                              SEED_T(genders[k % 3]), SEED_T(when)};
            int64_t id = db->insert(SEED_USERS, v);
            if (k == 1)
                first_user = id;
        }
        if (num_users > 0) {
            pool_size = num_users;
        } else {
            /* no new users: the existing ones (assumed numbered without gaps) */
            first_user = query_int("SELECT MIN(id) FROM users");
            pool_size = first_user == 0 ? 0 : query_int("SELECT MAX(id) FROM users") - first_user + 1;
        }
        if (pool_size == 0 && (num_posts > 0 || num_messages > 0 || num_sessions > 0)) {
            fprintf(stderr, "seed: there are no users: give --users\n");
            return 1;
        }
    }

    /* --- posts, their categories (the table's trigger counts them) --- */
    if (num_posts > 0) {
        int64_t cats[64];
        int num_cats = db->query_ints("SELECT id FROM categories ORDER BY position", cats, 64);
        if (num_cats == 0) {
            fprintf(stderr, "seed: no categories\n");
            return 1;
        }
        char *body = malloc((size_t)body_size + 1), title[96];
        for (long long i = 0; i != num_posts; ++i) {
            char t[64];
            make_text(t, 24 + (size_t)(rnd() % 30));
            snprintf(title, sizeof(title), "Post %lld: %s", i + 1, t);
            make_text(body, (size_t)body_size);
            format_time(now - (num_posts - i) * 1000, when, sizeof(when));
            seed_val_t pv[] = {SEED_I(first_user + (int64_t)(rnd() % (uint64_t)pool_size)), SEED_T(title), SEED_T(body), SEED_T(when)};
            int64_t id = db->insert(SEED_POSTS, pv);
            int n = 1 + (int)(rnd() % 3), chosen[3];
            if (n > num_cats)
                n = num_cats;
            for (int j = 0; j != n; ++j) {
                int pick, again;
                do {
                    pick = (int)(rnd() % (uint64_t)num_cats);
                    again = 0;
                    for (int q = 0; q != j; ++q)
                        again |= chosen[q] == pick;
                } while (again);
                chosen[j] = pick;
                seed_val_t cv[] = {SEED_I(cats[pick]), SEED_I(id)};
                db->insert(SEED_POST_CATEGORIES, cv);
            }
        }
        free(body);
    }

    /* --- messages between pairs, their index rows and the pairs' conversations --- */
    long long pairs_used = 0;
    if (num_messages > 0) {
        long long max_pairs = pool_size / 2;
        pairs_used = num_pairs < 0 || num_pairs > max_pairs ? max_pairs : num_pairs;
        if (pairs_used == 0) {
            fprintf(stderr, "seed: messages need at least two users\n");
            return 1;
        }
        pair_state_t *pairs = calloc((size_t)pairs_used, sizeof(*pairs));
        char body[128], cid[32];
        for (long long i = 0; i != num_messages; ++i) {
            long long p = i % pairs_used;
            int side = (int)((i / pairs_used) & 1); /* the pair takes turns */
            int64_t a = first_user + 2 * p, b = a + 1;
            int64_t from = side == 0 ? a : b, to = side == 0 ? b : a;
            int64_t ms = now - (num_messages - i);
            make_text(body, 20 + (size_t)(rnd() % 60));
            snprintf(cid, sizeof(cid), "seed-%lld", i);
            format_time(ms, when, sizeof(when));
            pairs[p].received[side == 0 ? 1 : 0]++;
            /* lo_sent and hi_sent: what each side of the pair had sent up to this message (the chat plugin's counters);
             * a (the lower id) sent what b received */
            seed_val_t mv[] = {SEED_I(from), SEED_I(to), SEED_T(body), SEED_T(cid), SEED_T(when), SEED_I(pairs[p].received[1]),
                               SEED_I(pairs[p].received[0])};
            int64_t id = db->insert(SEED_MESSAGES, mv);
            seed_val_t from_row[] = {SEED_I(from), SEED_I(id)}, to_row[] = {SEED_I(to), SEED_I(id)};
            db->insert(SEED_MESSAGE_INDEX, from_row);
            db->insert(SEED_MESSAGE_INDEX, to_row);
            pairs[p].last_id = id;
            pairs[p].last_ms = ms;
        }
        /* once per side of each pair, as the chat plugin's upsert per message would leave it */
        for (long long p = 0; p != pairs_used; ++p) {
            if (pairs[p].last_id == 0)
                continue;
            int64_t a = first_user + 2 * p, b = a + 1;
            format_time(pairs[p].last_ms, when, sizeof(when));
            for (int side = 0; side != 2; ++side) {
                seed_val_t v[] = {SEED_I(side == 0 ? a : b), SEED_I(side == 0 ? b : a), SEED_I(pairs[p].last_id), SEED_T(when),
                                  SEED_I(pairs[p].received[side]), SEED_I(pairs[p].received[side])};
                db->insert(SEED_CONVERSATIONS, v);
            }
        }
        free(pairs);
    }

    /* --- sessions, as core/session.c makes them --- */
    if (num_sessions > 0) {
        FILE *out = fopen(cookies_path, "w");
        if (out == NULL) {
            fprintf(stderr, "seed: %s: %s\n", cookies_path, strerror(errno));
            return 1;
        }
        static const char digits[] = "0123456789abcdef";
        for (long long i = 0; i != num_sessions; ++i) {
            uint8_t raw[32], digest[SHA256_DIGEST_LENGTH];
            char hex[65];
            if (RAND_bytes(raw, sizeof(raw)) != 1) {
                fprintf(stderr, "seed: RAND_bytes failed\n");
                return 1;
            }
            for (size_t j = 0; j != sizeof(raw); ++j) {
                hex[2 * j] = digits[raw[j] >> 4];
                hex[2 * j + 1] = digits[raw[j] & 15];
            }
            hex[64] = '\0';
            SHA256(raw, sizeof(raw), digest);
            seed_val_t v[] = {SEED_B(digest, sizeof(digest)), SEED_I(first_user + (int64_t)(i % pool_size)), SEED_I(now),
                              SEED_I(now + 30ll * 86400 * 1000)};
            db->insert(SEED_SESSIONS, v);
            fprintf(out, "sid=%s\n", hex);
        }
        if (fclose(out) != 0) {
            fprintf(stderr, "seed: %s: %s\n", cookies_path, strerror(errno));
            return 1;
        }
    }

    db->commit();
    db->close();
    free(copied);
    printf("{\"users\":%lld,\"first_user\":%lld,\"posts\":%lld,\"messages\":%lld,\"pairs\":%lld,\"sessions\":%lld,\"seconds\":%.3f}\n",
           num_users, (long long)first_user, num_posts, num_messages, pairs_used, num_sessions, now_s() - t0);
    return 0;
}
